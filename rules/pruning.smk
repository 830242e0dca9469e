# Pruning: gradual trajectories (LOBSTER, IMP, GMP: sharpminima/gradual.py), retraining of
# their masks (rewind / re-init / random), and one-shot magnitude pruning of the dense models.


rule gradual:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
    output:
        trajectory="results/{panel}/{pruner}/s{seed}/trajectory.json",
        snapshots="results/{panel}/{pruner}/s{seed}/snapshots.pt",
        init="results/{panel}/{pruner}/s{seed}/init.pt",
    log:
        "logs/{panel}/{pruner}/s{seed}.log",
    benchmark:
        "results/benchmarks/{panel}/{pruner}/s{seed}.tsv"
    # the longest jobs, which every retraining and the landscape wait for, start first
    priority: 30
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_threads
    resources:
        mem_mb=panel_mem_mb,
        runtime=panel_runtime,
        gpu=GPUS,
    params:
        panel=settings_for("gradual"),
        targets=panel_targets,
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
        # only where the method's snapshots depend on it (not LOBSTER's: its own rule)
        selection=lambda wc: (
            config["selection"] if GRADUAL_METHODS[wc.pruner].uses_selection else None
        ),
        # resumable state of an interrupted run (not an output, so a failed job keeps it)
        state_dir=lambda wc: f"results/{wc.panel}/{wc.pruner}/s{wc.seed}/resume",
    script:
        "../workflow_scripts/gradual.py"


rule retrain:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
        trajectory="results/{panel}/{pruner}/s{seed}/trajectory.json",
        snapshots="results/{panel}/{pruner}/s{seed}/snapshots.pt",
        init="results/{panel}/{pruner}/s{seed}/init.pt",
    output:
        metrics="results/{panel}/{pruner}/{method}/s{seed}/t{target}/metrics.json",
        models="results/{panel}/{pruner}/{method}/s{seed}/t{target}/models.pt",
    log:
        "logs/{panel}/{pruner}/{method}/s{seed}/t{target}.log",
    benchmark:
        "results/benchmarks/{panel}/{pruner}/{method}/s{seed}/t{target}.tsv"
    wildcard_constraints:
        method=_alternatives(RETRAIN_METHODS),
    # before one-shot: the landscape waits for a retraining
    priority: 10
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_threads
    resources:
        mem_mb=panel_mem_mb,
        runtime=panel_runtime,
        gpu=GPUS,
    params:
        panel=settings_for("retrain"),
        target=lambda wc: float(wc.target),
        seeds=lambda wc: _settings.retrain_seeds(config, wc.panel),
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
        selection=config["selection"],
        state_dir=lambda wc: f"results/{wc.panel}/{wc.pruner}/{wc.method}/s{wc.seed}/t{wc.target}/resume",
    script:
        "../workflow_scripts/retrain.py"


rule oneshot:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
        dense="results/{panel}/dense/s{seed}/model.pt",
    output:
        metrics="results/{panel}/oneshot/s{seed}/t{target}/metrics.json",
        model="results/{panel}/oneshot/s{seed}/t{target}/model.pt",
    log:
        "logs/{panel}/oneshot/s{seed}/t{target}.log",
    benchmark:
        "results/benchmarks/{panel}/oneshot/s{seed}/t{target}.tsv"
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_threads
    resources:
        mem_mb=panel_mem_mb,
        runtime=panel_runtime,
        gpu=GPUS,
    params:
        panel=settings_for("oneshot"),
        target=lambda wc: float(wc.target),
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
        selection=config["selection"],
        checkpoint=lambda wc: f"results/{wc.panel}/oneshot/s{wc.seed}/t{wc.target}/train_state.ckpt",
    script:
        "../workflow_scripts/oneshot.py"
