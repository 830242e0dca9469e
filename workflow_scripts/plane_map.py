"""One map on the plane (loss, or the PSP norm and entropies)."""

from _adapter import start

start(snakemake)

from sharpminima.experiments.landscape import run_plane_map

run_plane_map(
    map_kind=snakemake.wildcards.map_kind,
    panel=snakemake.params.panel,
    plane=snakemake.input.plane,
    data_dir=snakemake.params.data_dir,
    split_path=snakemake.input.split,
    settings=snakemake.params.settings,
    device_spec=snakemake.params.device,
    threads=snakemake.threads,
    table_out=snakemake.output.table,
)
