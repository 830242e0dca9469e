# Figures and the tables behind them (cheap: run on the head node).

localrules:
    fig1,
    fig1_table,


rule fig1:
    input:
        unpack(fig1_inputs),
    output:
        pdf=report("results/figures/{figure}.pdf", caption="../report/fig1.rst", category="Fig. 1"),
        png="results/figures/{figure}.png",
        csv="results/figures/{figure}.csv",
    params:
        panel=lambda wc: FIGURE_PANEL[wc.figure],
        settings=lambda wc: PANELS[FIGURE_PANEL[wc.figure]],
        seeds=SEEDS,
        retrain_seeds=config["retrain_seeds"],
    log:
        "logs/figures/{figure}.log",
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/fig1.py"


rule fig1_table:
    input:
        csv=[f"results/figures/{f}.csv" for f in FIGURE_PANEL],
    output:
        table="results/tables/fig1.csv",
    log:
        "logs/tables/fig1.log",
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/concat_tables.py"
