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
        table=f"{paths.TABLES}/dense.csv",
    log:
        paths.log(paths.TABLES, "dense"),
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/dense_table.py"


rule landscape_solutions:
    input:
        unpack(landscape_solutions_inputs),
    output:
        solutions=f"{paths.LANDSCAPE}/solutions.csv",
    log:
        paths.log(paths.LANDSCAPE, "solutions"),
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/landscape_table.py"


# every landscape's G and 1-S, one table (the first landscape is the paper's)
rule landscape_table:
    input:
        csv=landscape_tables("solutions"),
    output:
        table=f"{paths.TABLES}/landscape.csv",
    log:
        paths.log(paths.TABLES, "landscape"),
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/concat_tables.py"


# every landscape's G and 1-S at every seed, one table (the verdicts' numbers)
rule landscape_points_table:
    input:
        csv=landscape_tables("points"),
    output:
        table=f"{paths.TABLES}/landscape_points.csv",
    log:
        paths.log(paths.TABLES, "landscape_points"),
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/concat_tables.py"


rule claims:
    input:
        unpack(claims_inputs),
    output:
        table=report(
            f"{paths.TABLES}/claims.csv",
            caption="../report/claims.rst",
            category="1. The paper's claims",
        ),
        meta=f"{paths.TABLES}/claims.json",
    log:
        paths.log(paths.TABLES, "claims"),
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
