"""The plane through G and 1-S, saved once for every map."""

from _adapter import start

start(snakemake)

from sharpminima.experiments.landscape import build_plane

build_plane(
    panel_name=snakemake.wildcards.panel,
    panel=snakemake.params.panel,
    g=snakemake.input.g,
    trajectory=snakemake.input.trajectory,
    snapshots=snakemake.input.snapshots,
    rewind_metrics=snakemake.input.rewind_metrics,
    rewind_models=snakemake.input.rewind_models,
    retrain_seed=snakemake.params.retrain_seed,
    settings=snakemake.params.settings,
    plane_out=snakemake.output.plane,
    meta_out=snakemake.output.meta,
)
