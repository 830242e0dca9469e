# The landscape around the sparsest solutions (Fig. 2a, 2b, 3, 4a, 4b): per panel and
# gradual method one plane, shared by every map, through G (the method's snapshot) and 1-S
# (the rewind retraining of the same mask with the lowest validation loss); and the point
# quantities of G and 1-S at every seed, behind the landscape's verdicts.


rule plane:
    input:
        unpack(plane_inputs),
    output:
        plane="results/landscape/{panel}/{pruner}/plane.pt",
        meta="results/landscape/{panel}/{pruner}/plane.json",
    log:
        "logs/landscape/{panel}/{pruner}/plane.log",
    # the run's last chain: as soon as its inputs exist
    priority: 40
    conda:
        "../envs/sharpminima.yaml"
    params:
        panel=settings_for("landscape"),
        target=lambda wc: landscape_target(wc.panel),
        retrain_seed=lambda wc: landscape_retrain_seed(wc.panel),
        settings=LANDSCAPE_SETTINGS,
    script:
        "../workflow_scripts/plane.py"


rule plane_map:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
        plane="results/landscape/{panel}/{pruner}/plane.pt",
    output:
        table="results/landscape/{panel}/{pruner}/{kind}.csv",
        meta="results/landscape/{panel}/{pruner}/{kind}.json",
    log:
        "logs/landscape/{panel}/{pruner}/{kind}.log",
    benchmark:
        "results/benchmarks/landscape/{panel}/{pruner}/{kind}.tsv"
    wildcard_constraints:
        kind=_alternatives(MAP_KINDS),
    # the run's last chain: as soon as its inputs exist
    priority: 40
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_threads
    resources:
        mem_mb=panel_mem_mb,
        runtime=panel_runtime,
        gpu=GPUS,
    params:
        panel=settings_for("landscape"),
        settings=LANDSCAPE_SETTINGS,
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
    script:
        "../workflow_scripts/plane_map.py"


rule hessian:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
        plane="results/landscape/{panel}/{pruner}/plane.pt",
    output:
        points="results/landscape/{panel}/{pruner}/hessian.csv",
        meta="results/landscape/{panel}/{pruner}/hessian.json",
        map="results/landscape/{panel}/{pruner}/hessian_map.csv",
        readings="results/landscape/{panel}/{pruner}/hessian_readings.csv",
    log:
        "logs/landscape/{panel}/{pruner}/hessian.log",
    benchmark:
        "results/benchmarks/landscape/{panel}/{pruner}/hessian.tsv"
    # the run's last chain: as soon as its inputs exist
    priority: 40
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_threads
    resources:
        mem_mb=panel_mem_mb,
        runtime=panel_runtime,
        gpu=GPUS,
    params:
        panel=settings_for("landscape"),
        settings=LANDSCAPE_SETTINGS,
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
    script:
        "../workflow_scripts/hessian.py"


rule landscape_probe:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
        plane="results/landscape/{panel}/{pruner}/plane.pt",
    output:
        table="results/landscape/{panel}/{pruner}/probe.csv",
        meta="results/landscape/{panel}/{pruner}/probe.json",
    log:
        "logs/landscape/{panel}/{pruner}/probe.log",
    benchmark:
        "results/benchmarks/landscape/{panel}/{pruner}/probe.tsv"
    # the run's last chain: as soon as its inputs exist
    priority: 40
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_threads
    resources:
        mem_mb=panel_mem_mb,
        runtime=panel_runtime,
        gpu=GPUS,
    params:
        panel=settings_for("oneshot"),
        settings=LANDSCAPE_SETTINGS,
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
    script:
        "../workflow_scripts/landscape_probe.py"


rule landscape_points:
    input:
        unpack(landscape_points_inputs),
        manifest=manifest_for_panel,
        split=split_for_panel,
    output:
        table="results/landscape/{panel}/{pruner}/points.csv",
        meta="results/landscape/{panel}/{pruner}/points.json",
    log:
        "logs/landscape/{panel}/{pruner}/points.log",
    benchmark:
        "results/benchmarks/landscape/{panel}/{pruner}/points.tsv"
    # the run's last chain: as soon as its inputs exist
    priority: 40
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_threads
    resources:
        mem_mb=panel_mem_mb,
        runtime=panel_runtime,
        gpu=GPUS,
    params:
        panel=settings_for("landscape"),
        target=lambda wc: landscape_target(wc.panel),
        settings=LANDSCAPE_SETTINGS,
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
    script:
        "../workflow_scripts/landscape_points.py"
