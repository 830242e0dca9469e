# Figures and the tables behind them (cheap: run on the head node).


localrules:
    fig1,
    fig1_table,
    landscape_figure,
    paper_landscape_figure,
    fig2b,
    paper_fig2b,


rule fig1:
    input:
        unpack(fig1_inputs),
    output:
        pdf=report(
            "results/figures/{figure}.pdf",
            caption="../report/fig1.rst",
            category="2. Fig. 1",
        ),
        png="results/figures/{figure}.png",
        csv="results/figures/{figure}.csv",
    log:
        "logs/figures/{figure}.log",
    conda:
        "../envs/sharpminima.yaml"
    params:
        panel=lambda wc: FIGURE_PANEL[wc.figure],
        settings=lambda wc: PANELS[FIGURE_PANEL[wc.figure]],
        seeds=lambda wc: _settings.seeds_of(config, FIGURE_PANEL[wc.figure]),
        retrain_seeds=lambda wc: _settings.retrain_seeds(
            config, FIGURE_PANEL[wc.figure]
        ),
        preset=config["preset"],
        selection=config["selection"],
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


rule landscape_figure:
    input:
        table=lambda wc: f"{landscape_dir(wc.panel, wc.pruner)}/{LANDSCAPE_MAP_KIND[wc.lfig]}.csv",
        meta=lambda wc: f"{landscape_dir(wc.panel, wc.pruner)}/{LANDSCAPE_MAP_KIND[wc.lfig]}.json",
    output:
        pdf=report(
            "results/figures/landscape/{panel}/{pruner}/{lfig}.pdf",
            caption="../report/landscape.rst",
            category="4. Landscape of every panel and method",
        ),
        png="results/figures/landscape/{panel}/{pruner}/{lfig}.png",
        csv="results/figures/landscape/{panel}/{pruner}/{lfig}.csv",
    log:
        "logs/figures/landscape/{panel}/{pruner}/{lfig}.log",
    wildcard_constraints:
        lfig=_alternatives(MAP_FIGURES),
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/landscape_figure.py"


# the paper's Fig. 2a, 3, 4a, 4b: the first landscape (landscape.panel, landscape.methods[0])
use rule landscape_figure as paper_landscape_figure with:
    input:
        table=lambda wc: f"{LANDSCAPE_DIR}/{LANDSCAPE_MAP_KIND[wc.lfig]}.csv",
        meta=lambda wc: f"{LANDSCAPE_DIR}/{LANDSCAPE_MAP_KIND[wc.lfig]}.json",
    output:
        pdf=report(
            "results/figures/{lfig}.pdf",
            caption="../report/landscape.rst",
            category="3. Landscape",
        ),
        png="results/figures/{lfig}.png",
        csv="results/figures/{lfig}.csv",
    log:
        "logs/figures/{lfig}.log",


rule fig2b:
    input:
        points=lambda wc: f"{landscape_dir(wc.panel, wc.pruner)}/hessian.csv",
        meta=lambda wc: f"{landscape_dir(wc.panel, wc.pruner)}/hessian.json",
        map=lambda wc: f"{landscape_dir(wc.panel, wc.pruner)}/hessian_map.csv",
    output:
        pdf=report(
            "results/figures/landscape/{panel}/{pruner}/fig2b.pdf",
            caption="../report/fig2b.rst",
            category="4. Landscape of every panel and method",
        ),
        png="results/figures/landscape/{panel}/{pruner}/fig2b.png",
        csv="results/figures/landscape/{panel}/{pruner}/fig2b.csv",
    log:
        "logs/figures/landscape/{panel}/{pruner}/fig2b.log",
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/fig2b.py"


use rule fig2b as paper_fig2b with:
    input:
        points=f"{LANDSCAPE_DIR}/hessian.csv",
        meta=f"{LANDSCAPE_DIR}/hessian.json",
        map=f"{LANDSCAPE_DIR}/hessian_map.csv",
    output:
        pdf=report(
            "results/figures/fig2b.pdf",
            caption="../report/fig2b.rst",
            category="3. Landscape",
        ),
        png="results/figures/fig2b.png",
        csv="results/figures/fig2b.csv",
    log:
        "logs/figures/fig2b.log",
