# Tables gathered from the metrics files of many runs.

localrules:
    dense_table,


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
