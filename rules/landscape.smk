# The landscape around the sparsest solutions (Fig. 2a, 2b, 3, 4a, 4b): one plane, shared
# by every map, through G (LOBSTER) and 1-S (the rewind retraining of the same mask).


rule plane:
    input:
        unpack(plane_inputs),
    output:
        plane="results/landscape/{panel}/plane.pt",
        meta="results/landscape/{panel}/plane.json",
    log:
        "logs/landscape/{panel}/plane.log",
    # the run's last chain: as soon as its inputs exist
    priority: 40
    conda:
        "../envs/sharpminima.yaml"
    params:
        panel=settings_for("landscape"),
        target=LANDSCAPE["target"],
        retrain_seed=LANDSCAPE_RETRAIN_SEED,
        settings=LANDSCAPE,
    script:
        "../workflow_scripts/plane.py"


rule plane_map:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
        plane="results/landscape/{panel}/plane.pt",
    output:
        table="results/landscape/{panel}/{kind}.csv",
        meta="results/landscape/{panel}/{kind}.json",
    log:
        "logs/landscape/{panel}/{kind}.log",
    benchmark:
        "results/benchmarks/landscape/{panel}/{kind}.tsv"
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
        settings=LANDSCAPE,
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
    script:
        "../workflow_scripts/plane_map.py"


rule hessian:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
        plane="results/landscape/{panel}/plane.pt",
    output:
        points="results/landscape/{panel}/hessian.csv",
        meta="results/landscape/{panel}/hessian.json",
        map="results/landscape/{panel}/hessian_map.csv",
        readings="results/landscape/{panel}/hessian_readings.csv",
    log:
        "logs/landscape/{panel}/hessian.log",
    benchmark:
        "results/benchmarks/landscape/{panel}/hessian.tsv"
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
        settings=LANDSCAPE,
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
    script:
        "../workflow_scripts/hessian.py"


rule landscape_probe:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
        plane="results/landscape/{panel}/plane.pt",
    output:
        table="results/landscape/{panel}/probe.csv",
        meta="results/landscape/{panel}/probe.json",
    log:
        "logs/landscape/{panel}/probe.log",
    benchmark:
        "results/benchmarks/landscape/{panel}/probe.tsv"
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
        settings=LANDSCAPE,
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
    script:
        "../workflow_scripts/landscape_probe.py"
