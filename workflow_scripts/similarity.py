"""SVCCA and linear CKA of every hidden layer of every solution of a panel with the dense model's."""

from _adapter import start

start(snakemake)

from sharpminima.experiments.features import run_similarity
from sharpminima.solutions import FILE_KEYS

run_similarity(
    panel_name=snakemake.wildcards.panel,
    panel=snakemake.params.panel,
    data_dir=snakemake.params.data_dir,
    split_path=snakemake.input.split,
    solution_files={k: list(getattr(snakemake.input, k)) for k in FILE_KEYS},
    settings=snakemake.params.settings,
    device_spec=snakemake.params.device,
    threads=snakemake.threads,
    table_out=snakemake.output.table,
)
