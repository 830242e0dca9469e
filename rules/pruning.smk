# Pruning: gradual trajectories (LOBSTER, IMP, GMP: sharpminima/gradual.py), retraining of
# their masks (rewind / re-init / random), and one-shot magnitude pruning of the dense models.


rule gradual:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
    output:
        trajectory=f"{paths.GRADUAL}/trajectory.json",
        snapshots=f"{paths.GRADUAL}/snapshots.pt",
        init=f"{paths.GRADUAL}/init.pt",
    log:
        paths.log(paths.GRADUAL),
    benchmark:
        paths.BENCHMARKS["gradual"]
    # the longest jobs, which every retraining and the landscape wait for, start first
    priority: 30
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_resource("threads")
    resources:
        mem_mb=panel_resource("mem_mb"),
        runtime=panel_resource("runtime"),
        gpu=GPUS,
    params:
        panel=settings_for("gradual"),
        targets=panel_targets,
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
        # only where the method's snapshots depend on it (not LOBSTER's: its own rule)
        selection=lambda wc: (
            config["selection"] if GRADUAL_METHODS[wc.gradual].uses_selection else None
        ),
        # resumable state of an interrupted run (not an output, so a failed job keeps it)
        state_dir=lambda wc: paths.file_in(paths.GRADUAL, "resume", wc),
    script:
        "../workflow_scripts/gradual.py"


rule retrain:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
        trajectory=f"{paths.GRADUAL}/trajectory.json",
        snapshots=f"{paths.GRADUAL}/snapshots.pt",
        init=f"{paths.GRADUAL}/init.pt",
    output:
        metrics=f"{paths.RETRAINING}/metrics.json",
        models=f"{paths.RETRAINING}/models.pt",
    log:
        paths.log(paths.RETRAINING),
    benchmark:
        paths.BENCHMARKS["retrain"]
    wildcard_constraints:
        retraining=_alternatives(RETRAIN_METHODS),
    # before one-shot: the landscape waits for a retraining
    priority: 10
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_resource("threads")
    resources:
        mem_mb=panel_resource("mem_mb"),
        runtime=panel_resource("runtime"),
        gpu=GPUS,
    params:
        panel=settings_for("retraining"),
        target=lambda wc: float(wc.target),
        seeds=lambda wc: _settings.retrain_seeds(config, wc.panel),
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
        selection=config["selection"],
        state_dir=lambda wc: paths.file_in(paths.RETRAINING, "resume", wc),
    script:
        "../workflow_scripts/retrain.py"


rule oneshot:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
        dense=f"{paths.DENSE}/model.pt",
    output:
        metrics=f"{paths.ONESHOT}/metrics.json",
        model=f"{paths.ONESHOT}/model.pt",
    log:
        paths.log(paths.ONESHOT),
    benchmark:
        paths.BENCHMARKS["oneshot"]
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_resource("threads")
    resources:
        mem_mb=panel_resource("mem_mb"),
        runtime=panel_resource("runtime"),
        gpu=GPUS,
    params:
        panel=settings_for("oneshot"),
        target=lambda wc: float(wc.target),
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
        selection=config["selection"],
        checkpoint=lambda wc: paths.file_in(paths.ONESHOT, "train_state.ckpt", wc),
    script:
        "../workflow_scripts/oneshot.py"
