"""Train one panel's dense model."""

from _adapter import start

start(snakemake)

from sharpminima.experiments.train import run_dense

run_dense(
    panel_name=snakemake.wildcards.panel,
    panel=snakemake.params.panel,
    data_dir=snakemake.params.data_dir,
    split_path=snakemake.input.split,
    seed=int(snakemake.wildcards.seed),
    device_spec=snakemake.params.device,
    selection=snakemake.params.selection,
    threads=snakemake.threads,
    model_out=snakemake.output.model,
    init_out=snakemake.output.init,
    metrics_out=snakemake.output.metrics,
    checkpoint=snakemake.params.checkpoint,
)
