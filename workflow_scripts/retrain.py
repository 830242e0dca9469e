"""Retrain one gradual snapshot's mask (rewind / reinit / random), every seed in one job."""

from _adapter import start

start(snakemake)

from sharpminima.experiments.train import run_retrain

run_retrain(
    retraining=snakemake.wildcards.retraining,
    panel_name=snakemake.wildcards.panel,
    panel=snakemake.params.panel,
    data_dir=snakemake.params.data_dir,
    split_path=snakemake.input.split,
    trajectory=snakemake.input.trajectory,
    snapshots=snakemake.input.snapshots,
    init=snakemake.input.init,
    target=snakemake.params.target,
    seeds=snakemake.params.seeds,
    device_spec=snakemake.params.device,
    selection=snakemake.params.selection,
    threads=snakemake.threads,
    metrics_out=snakemake.output.metrics,
    models_out=snakemake.output.models,
    state_dir=snakemake.params.state_dir,
)
