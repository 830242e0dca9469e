# The landscape around the sparsest solutions (Fig. 2a, 2b, 3, 4a, 4b): per panel and
# gradual method G chosen once (g.json: the target, each seed's snapshot), one plane, shared
# by every map, through G (the first seed's snapshot) and 1-S
# (the rewind retraining of the same mask with the lowest validation loss); and the point
# quantities of G and 1-S at every seed, behind the landscape's verdicts.


localrules:
    landscape_g,


rule landscape_g:
    input:
        trajectories=g_inputs,
    output:
        g=f"{paths.LANDSCAPE}/g.json",
    log:
        paths.log(paths.LANDSCAPE, "g"),
    conda:
        "../envs/sharpminima.yaml"
    params:
        target=lambda wc: _settings.landscape_target(config, wc.panel),
    script:
        "../workflow_scripts/landscape_g.py"


rule plane:
    input:
        unpack(plane_inputs),
        g=f"{paths.LANDSCAPE}/g.json",
    output:
        plane=f"{paths.LANDSCAPE}/plane.pt",
        meta=f"{paths.LANDSCAPE}/plane.json",
    log:
        paths.log(paths.LANDSCAPE, "plane"),
    # the run's last chain: as soon as its inputs exist
    priority: 40
    conda:
        "../envs/sharpminima.yaml"
    params:
        panel=settings_for("landscape"),
        retrain_seed=LANDSCAPE["retrain_seed"],
        settings=LANDSCAPE_SETTINGS,
    script:
        "../workflow_scripts/plane.py"


rule plane_map:
    input:
        manifest=manifest_for_panel,
        split=split_for_panel,
        plane=f"{paths.LANDSCAPE}/plane.pt",
    output:
        table=f"{paths.LANDSCAPE}/{{map_kind}}.csv",
        meta=f"{paths.LANDSCAPE}/{{map_kind}}.json",
    log:
        paths.log(paths.LANDSCAPE, "{map_kind}"),
    benchmark:
        paths.BENCHMARKS["plane_map"]
    wildcard_constraints:
        map_kind=_alternatives(MAP_KINDS),
    # the run's last chain: as soon as its inputs exist
    priority: 40
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_resource("threads")
    resources:
        mem_mb=panel_resource("mem_mb"),
        runtime=panel_resource("runtime"),
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
        plane=f"{paths.LANDSCAPE}/plane.pt",
    output:
        points=f"{paths.LANDSCAPE}/hessian.csv",
        meta=f"{paths.LANDSCAPE}/hessian.json",
        map=f"{paths.LANDSCAPE}/hessian_map.csv",
        readings=f"{paths.LANDSCAPE}/hessian_readings.csv",
    log:
        paths.log(paths.LANDSCAPE, "hessian"),
    benchmark:
        paths.BENCHMARKS["hessian"]
    # the run's last chain: as soon as its inputs exist
    priority: 40
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_resource("threads")
    resources:
        mem_mb=panel_resource("mem_mb"),
        runtime=panel_resource("runtime"),
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
        plane=f"{paths.LANDSCAPE}/plane.pt",
    output:
        table=f"{paths.LANDSCAPE}/probe.csv",
        meta=f"{paths.LANDSCAPE}/probe.json",
    log:
        paths.log(paths.LANDSCAPE, "probe"),
    benchmark:
        paths.BENCHMARKS["landscape_probe"]
    # the run's last chain: as soon as its inputs exist
    priority: 40
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_resource("threads")
    resources:
        mem_mb=panel_resource("mem_mb"),
        runtime=panel_resource("runtime"),
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
        g=f"{paths.LANDSCAPE}/g.json",
        manifest=manifest_for_panel,
        split=split_for_panel,
    output:
        table=f"{paths.LANDSCAPE}/points.csv",
        meta=f"{paths.LANDSCAPE}/points.json",
    log:
        paths.log(paths.LANDSCAPE, "points"),
    benchmark:
        paths.BENCHMARKS["landscape_points"]
    # the run's last chain: as soon as its inputs exist
    priority: 40
    conda:
        "../envs/sharpminima.yaml"
    threads: panel_resource("threads")
    resources:
        mem_mb=panel_resource("mem_mb"),
        runtime=panel_resource("runtime"),
        gpu=GPUS,
    params:
        panel=settings_for("landscape"),
        settings=LANDSCAPE_SETTINGS,
        data_dir=lambda wc, input: Path(input.manifest).parent,
        device=config["device"],
    script:
        "../workflow_scripts/landscape_points.py"
