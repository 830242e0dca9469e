"""One-shot magnitude pruning of a dense model to one target sparsity, then fine-tuning."""

from _adapter import start

start(snakemake)

from sharpminima.experiments.train import run_oneshot

run_oneshot(
    panel_name=snakemake.wildcards.panel,
    panel=snakemake.params.panel,
    data_dir=snakemake.params.data_dir,
    split_path=snakemake.input.split,
    dense_model=snakemake.input.dense,
    target=snakemake.params.target,
    seed=int(snakemake.wildcards.seed),
    device_spec=snakemake.params.device,
    selection=snakemake.params.selection,
    threads=snakemake.threads,
    metrics_out=snakemake.output.metrics,
    model_out=snakemake.output.model,
    checkpoint=snakemake.params.checkpoint,
)
