# Tables gathered from the metrics files of many runs.

localrules:
    dense_table,
    landscape_table,


rule dense_table:
    input:
        metrics=dense_metrics(),
    output:
        table="results/tables/dense.csv",
    log:
        "logs/tables/dense.log",
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/dense_table.py"


rule landscape_table:
    input:
        unpack(landscape_table_inputs),
    output:
        solutions="results/tables/landscape.csv",
        statements=report("results/tables/landscape_statements.csv",
                          caption="../report/landscape_statements.rst", category="Landscape"),
    log:
        "logs/tables/landscape.log",
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/landscape_table.py"
