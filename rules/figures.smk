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
            f"{paths.FIGURES}/{{figure}}.pdf",
            caption="../report/fig1.rst",
            category="2. Fig. 1",
        ),
        png=f"{paths.FIGURES}/{{figure}}.png",
        csv=f"{paths.FIGURES}/{{figure}}.csv",
    log:
        paths.log(paths.FIGURES, "{figure}"),
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
        csv=[f"{paths.FIGURES}/{f}.csv" for f in FIGURE_PANEL],
    output:
        table=f"{paths.TABLES}/fig1.csv",
    log:
        paths.log(paths.TABLES, "fig1"),
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/concat_tables.py"


rule landscape_figure:
    input:
        table=landscape_map("csv"),
        meta=landscape_map("json"),
    output:
        pdf=report(
            f"{paths.LANDSCAPE_FIGURES_DIR}/{{lfig}}.pdf",
            caption="../report/landscape.rst",
            category="4. Landscape of every panel and method",
        ),
        png=f"{paths.LANDSCAPE_FIGURES_DIR}/{{lfig}}.png",
        csv=f"{paths.LANDSCAPE_FIGURES_DIR}/{{lfig}}.csv",
    log:
        paths.log(paths.LANDSCAPE_FIGURES_DIR, "{lfig}"),
    wildcard_constraints:
        lfig=_alternatives(MAP_FIGURES),
    conda:
        "../envs/sharpminima.yaml"
    script:
        "../workflow_scripts/landscape_figure.py"


# the paper's Fig. 2a, 3, 4a, 4b: the first landscape (landscape.panel, landscape.methods[0])
use rule landscape_figure as paper_landscape_figure with:
    input:
        table=lambda wc: f"{LANDSCAPE_DIR}/{MAP_FIGURES[wc.lfig].map_kind}.csv",
        meta=lambda wc: f"{LANDSCAPE_DIR}/{MAP_FIGURES[wc.lfig].map_kind}.json",
    output:
        pdf=report(
            f"{paths.FIGURES}/{{lfig}}.pdf",
            caption="../report/landscape.rst",
            category="3. Landscape",
        ),
        png=f"{paths.FIGURES}/{{lfig}}.png",
        csv=f"{paths.FIGURES}/{{lfig}}.csv",
    log:
        paths.log(paths.FIGURES, "{lfig}"),


rule fig2b:
    input:
        points=f"{paths.LANDSCAPE}/hessian.csv",
        meta=f"{paths.LANDSCAPE}/hessian.json",
        map=f"{paths.LANDSCAPE}/hessian_map.csv",
    output:
        pdf=report(
            f"{paths.LANDSCAPE_FIGURES_DIR}/fig2b.pdf",
            caption="../report/fig2b.rst",
            category="4. Landscape of every panel and method",
        ),
        png=f"{paths.LANDSCAPE_FIGURES_DIR}/fig2b.png",
        csv=f"{paths.LANDSCAPE_FIGURES_DIR}/fig2b.csv",
    log:
        paths.log(paths.LANDSCAPE_FIGURES_DIR, "fig2b"),
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
            f"{paths.FIGURES}/fig2b.pdf",
            caption="../report/fig2b.rst",
            category="3. Landscape",
        ),
        png=f"{paths.FIGURES}/fig2b.png",
        csv=f"{paths.FIGURES}/fig2b.csv",
    log:
        paths.log(paths.FIGURES, "fig2b"),
