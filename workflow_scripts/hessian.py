"""Top-k Hessian eigenvalues at G and 1-S, and their mean on a coarser grid of the plane."""

from _adapter import start

start(snakemake)

from sharpminima.experiments.landscape import run_hessian

run_hessian(
    panel=snakemake.params.panel,
    plane=snakemake.input.plane,
    data_dir=snakemake.params.data_dir,
    split_path=snakemake.input.split,
    settings=snakemake.params.settings,
    device_spec=snakemake.params.device,
    threads=snakemake.threads,
    points_out=snakemake.output.points,
    map_out=snakemake.output.map,
    readings_out=snakemake.output.readings,
)
