# Beyond the paper: what the sparse features are. Every solution of a panel compared layer by
# layer with the dense model (SVCCA, linear CKA), and probed linearly on a second data set.


rule similarity:
    input:
        unpack(solution_inputs),
        manifest=manifest_for_panel,
        split=split_for_panel,
    output:
        table="results/{panel}/features/similarity.csv",
        meta="results/{panel}/features/similarity.json",
    log:
        "logs/{panel}/features/similarity.log",
    benchmark:
        "results/benchmarks/{panel}/features/similarity.tsv"
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_threads
    resources:
        mem_mb=panel_mem_mb,
        runtime=panel_runtime,
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
        table="results/{panel}/features/transfer_{dataset}.csv",
        meta="results/{panel}/features/transfer_{dataset}.json",
    log:
        "logs/{panel}/features/transfer_{dataset}.log",
    benchmark:
        "results/benchmarks/{panel}/features/transfer_{dataset}.tsv"
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_threads
    resources:
        mem_mb=panel_mem_mb,
        runtime=panel_runtime,
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
        table="results/{panel}/features/similarity.csv",
    output:
        pdf=report(
            "results/figures/similarity/{panel}.pdf",
            caption="../report/similarity.rst",
            category="5. Features beyond the paper",
        ),
        png="results/figures/similarity/{panel}.png",
        csv="results/figures/similarity/{panel}.csv",
    log:
        "logs/figures/similarity/{panel}.log",
    conda:
        "../envs/sharpminima.yaml"
    params:
        preset=config["preset"],
    script:
        "../workflow_scripts/similarity_figure.py"


rule transfer_figure:
    input:
        table="results/{panel}/features/transfer_{dataset}.csv",
    output:
        pdf=report(
            "results/figures/transfer/{panel}_to_{dataset}.pdf",
            caption="../report/transfer.rst",
            category="5. Features beyond the paper",
        ),
        png="results/figures/transfer/{panel}_to_{dataset}.png",
        csv="results/figures/transfer/{panel}_to_{dataset}.csv",
        entropy_pdf=report(
            "results/figures/entropy_transfer/{panel}_to_{dataset}.pdf",
            caption="../report/transfer.rst",
            category="5. Features beyond the paper",
        ),
        entropy_png="results/figures/entropy_transfer/{panel}_to_{dataset}.png",
        entropy_csv="results/figures/entropy_transfer/{panel}_to_{dataset}.csv",
    log:
        "logs/figures/transfer/{panel}_to_{dataset}.log",
    conda:
        "../envs/sharpminima.yaml"
    params:
        preset=config["preset"],
    script:
        "../workflow_scripts/transfer_figure.py"
