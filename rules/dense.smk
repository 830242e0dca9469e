# Dense training of every panel (the 0 % point of Fig. 1 and the start of one-shot pruning).


rule train_dense:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
    output:
        model="results/{panel}/dense/s{seed}/model.pt",
        init="results/{panel}/dense/s{seed}/init.pt",
        metrics="results/{panel}/dense/s{seed}/metrics.json",
    log:
        "logs/{panel}/dense/s{seed}.log",
    benchmark:
        "results/benchmarks/{panel}/dense/s{seed}.tsv"
    # one-shot pruning waits for it
    priority: 20
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_threads
    resources:
        mem_mb=panel_mem_mb,
        runtime=panel_runtime,
        gpu=GPUS,
    params:
        panel=settings_for("dense"),
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
        selection=config["selection"],
        # resumable state of an interrupted run (not an output, so a failed job keeps it)
        checkpoint=lambda wc: f"results/{wc.panel}/dense/s{wc.seed}/train_state.ckpt",
    script:
        "../workflow_scripts/train_dense.py"
