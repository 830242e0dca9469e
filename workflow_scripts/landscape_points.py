"""The landscape's point quantities at every seed of G and 1-S (the verdicts' seeds)."""

from _adapter import start

start(snakemake)

from sharpminima.experiments.landscape import run_landscape_points

run_landscape_points(
    panel_name=snakemake.wildcards.panel,
    panel=snakemake.params.panel,
    g=snakemake.input.g,
    trajectories=snakemake.input.trajectory,
    snapshots=snakemake.input.snapshots,
    rewind_metrics=snakemake.input.rewind_metrics,
    rewind_models=snakemake.input.rewind_models,
    data_dir=snakemake.params.data_dir,
    split_path=snakemake.input.split,
    settings=snakemake.params.settings,
    device_spec=snakemake.params.device,
    threads=snakemake.threads,
    table_out=snakemake.output.table,
)
