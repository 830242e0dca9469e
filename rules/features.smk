# Beyond the paper: what the sparse features are. Every solution of a panel compared layer by
# layer with the dense model (SVCCA, linear CKA), and probed linearly on a second data set.


rule similarity:
    input:
        unpack(solution_inputs),
        manifest=manifest_for_panel,
        split=split_for_panel,
    output:
        table=f"{paths.FEATURES}/similarity.csv",
        meta=f"{paths.FEATURES}/similarity.json",
    log:
        paths.log(paths.FEATURES, "similarity"),
    benchmark:
        paths.BENCHMARKS["similarity"]
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_resource("threads")
    resources:
        mem_mb=panel_resource("mem_mb"),
        runtime=panel_resource("runtime"),
        gpu=GPUS,
    params:
        panel=settings_for("landscape"),
        settings={k: FEATURES[k] for k in ("samples", "keep", "max_rows", "seed")},
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
    script:
        "../workflow_scripts/similarity.py"


rule transfer:
    input:
        unpack(solution_inputs),
        unpack(transfer_target_inputs),
        manifest=manifest_for_panel,
        split=split_for_panel,
    output:
        table=f"{paths.FEATURES}/transfer_{{dataset}}.csv",
        meta=f"{paths.FEATURES}/transfer_{{dataset}}.json",
    log:
        paths.log(paths.FEATURES, "transfer_{dataset}"),
    benchmark:
        paths.BENCHMARKS["transfer"]
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_resource("threads")
    resources:
        mem_mb=panel_resource("mem_mb"),
        runtime=panel_resource("runtime"),
        gpu=GPUS,
    params:
        panel=settings_for("landscape"),
        # what the probe computes with (not which pairs are probed)
        settings={
            "samples": FEATURES["samples"],
            "transfer": {
                k: v for k, v in FEATURES["transfer"].items() if k != "pairs"
            },
        },
        entropy2=LANDSCAPE["entropy2"],
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
    script:
        "../workflow_scripts/transfer.py"


localrules:
    similarity_figure,
    transfer_figure,


rule similarity_figure:
    input:
        table=f"{paths.FEATURES}/similarity.csv",
    output:
        pdf=report(
            f"{paths.FIGURES}/similarity/{{panel}}.pdf",
            caption="../report/similarity.rst",
            category="5. Features beyond the paper",
        ),
        png=f"{paths.FIGURES}/similarity/{{panel}}.png",
        csv=f"{paths.FIGURES}/similarity/{{panel}}.csv",
    log:
        paths.log(paths.FIGURES, "similarity/{panel}"),
    conda:
        "../envs/sharpminima.yaml"
    params:
        preset=config["preset"],
    script:
        "../workflow_scripts/similarity_figure.py"


rule transfer_figure:
    input:
        table=f"{paths.FEATURES}/transfer_{{dataset}}.csv",
    output:
        pdf=report(
            f"{paths.FIGURES}/transfer/{{panel}}_to_{{dataset}}.pdf",
            caption="../report/transfer.rst",
            category="5. Features beyond the paper",
        ),
        png=f"{paths.FIGURES}/transfer/{{panel}}_to_{{dataset}}.png",
        csv=f"{paths.FIGURES}/transfer/{{panel}}_to_{{dataset}}.csv",
        entropy_pdf=report(
            f"{paths.FIGURES}/entropy_transfer/{{panel}}_to_{{dataset}}.pdf",
            caption="../report/transfer.rst",
            category="5. Features beyond the paper",
        ),
        entropy_png=f"{paths.FIGURES}/entropy_transfer/{{panel}}_to_{{dataset}}.png",
        entropy_csv=f"{paths.FIGURES}/entropy_transfer/{{panel}}_to_{{dataset}}.csv",
    log:
        paths.log(paths.FIGURES, "transfer/{panel}_to_{dataset}"),
    conda:
        "../envs/sharpminima.yaml"
    params:
        preset=config["preset"],
    script:
        "../workflow_scripts/transfer_figure.py"
