# Tables gathered from the metrics files of many runs.


localrules:
    dense_table,
    landscape_solutions,
    landscape_table,
    landscape_points_table,
    claims,


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


rule landscape_solutions:
    input:
        unpack(landscape_solutions_inputs),
    output:
        solutions="results/landscape/{panel}/{pruner}/solutions.csv",
    log:
        "logs/landscape/{panel}/{pruner}/solutions.log",
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/landscape_table.py"


# every landscape's G and 1-S, one table (the first landscape is the paper's)
rule landscape_table:
    input:
        csv=landscape_solutions(),
    output:
        table="results/tables/landscape.csv",
    log:
        "logs/tables/landscape.log",
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/concat_tables.py"


# every landscape's G and 1-S at every seed, one table (the verdicts' numbers)
rule landscape_points_table:
    input:
        csv=landscape_points(),
    output:
        table="results/tables/landscape_points.csv",
    log:
        "logs/tables/landscape_points.log",
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/concat_tables.py"


rule claims:
    input:
        unpack(claims_inputs),
    output:
        table=report(
            "results/tables/claims.csv",
            caption="../report/claims.rst",
            category="1. The paper's claims",
        ),
        meta="results/tables/claims.json",
    log:
        "logs/tables/claims.log",
    conda:
        "../envs/sharpminima.yaml"
    params:
        fig1_panels=list(FIGURE_PANEL.values()),
        panels=PANELS,
        landscape=LANDSCAPE,
        landscapes=LANDSCAPES,
        words=config["claims"],
        selection=config["selection"],
        preset=config["preset"],
    script:
        "../workflow_scripts/claims.py"
