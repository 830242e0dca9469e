# Figures and the tables behind them (cheap: run on the head node).


localrules:
    fig1,
    fig1_table,
    landscape_figure,
    paper_landscape_figure,
    fig2b,


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


rule fig2b:
    input:
        points=f"{paths.LANDSCAPE}/hessian.csv",
        meta=f"{paths.LANDSCAPE}/hessian.json",
        map=f"{paths.LANDSCAPE}/hessian_map.csv",
    output:
        pdf=report(
            f"{paths.LANDSCAPE_FIGURES_DIR}/fig2b.pdf",
            caption="../report/landscape.rst",
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


# the paper's Fig. 2a, 2b, 3, 4a, 4b are the first landscape's (landscape.panel,
# landscape.methods[0]), drawn by the rules above like every other, under the paper's names
rule paper_landscape_figure:
    input:
        pdf=f"{PAPER_LANDSCAPE_FIGURES}/{{lfig}}.pdf",
        png=f"{PAPER_LANDSCAPE_FIGURES}/{{lfig}}.png",
        csv=f"{PAPER_LANDSCAPE_FIGURES}/{{lfig}}.csv",
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
    wildcard_constraints:
        lfig=_alternatives(LANDSCAPE_FIGURES),
    conda:
        "../envs/sharpminima.yaml"
    shell:
        "(cp {input.pdf} {output.pdf} && cp {input.png} {output.png} && cp {input.csv} {output.csv}) > {log} 2>&1"
