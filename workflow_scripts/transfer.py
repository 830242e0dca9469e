"""The transfer probe of every solution of a panel on a second data set (and its own, the control)."""

from _adapter import start

start(snakemake)

from sharpminima.experiments.features import run_transfer
from sharpminima.solutions import FILE_KEYS

run_transfer(
    panel_name=snakemake.wildcards.panel,
    panel=snakemake.params.panel,
    data_dir=snakemake.params.data_dir,
    split_path=snakemake.input.split,
    target_dataset=snakemake.wildcards.dataset,
    target_split_path=snakemake.input.target_split,
    solution_files={k: list(getattr(snakemake.input, k)) for k in FILE_KEYS},
    settings=snakemake.params.settings,
    entropy2=snakemake.params.entropy2,
    device_spec=snakemake.params.device,
    threads=snakemake.threads,
    table_out=snakemake.output.table,
)
