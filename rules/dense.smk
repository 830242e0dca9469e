# Dense training of every panel (the 0 % point of Fig. 1 and the start of one-shot pruning).


rule train_dense:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
    output:
        model=f"{paths.DENSE}/model.pt",
        init=f"{paths.DENSE}/init.pt",
        metrics=f"{paths.DENSE}/metrics.json",
    log:
        paths.log(paths.DENSE),
    benchmark:
        paths.BENCHMARKS["train_dense"]
    # one-shot pruning waits for it
    priority: 20
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_resource("threads")
    resources:
        mem_mb=panel_resource("mem_mb"),
        runtime=panel_resource("runtime"),
        gpu=GPUS,
    params:
        panel=settings_for("dense"),
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
        selection=config["selection"],
        # resumable state of an interrupted run (not an output, so a failed job keeps it)
        checkpoint=lambda wc: paths.file_in(paths.DENSE, "train_state.ckpt", wc),
    script:
        "../workflow_scripts/train_dense.py"
