"""G trained further with its mask fixed: how the landscape's magnitudes move with training."""

from _adapter import start

start(snakemake)

from sharpminima.experiments.landscape import run_landscape_probe

run_landscape_probe(
    panel=snakemake.params.panel,
    plane=snakemake.input.plane,
    data_dir=snakemake.params.data_dir,
    split_path=snakemake.input.split,
    settings=snakemake.params.settings,
    device_spec=snakemake.params.device,
    threads=snakemake.threads,
    table_out=snakemake.output.table,
)
