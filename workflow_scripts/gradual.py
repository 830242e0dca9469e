"""One gradual pruning run of a panel (LOBSTER, IMP or GMP): its trajectory and snapshots."""

from _adapter import start

start(snakemake)

from sharpminima.experiments.train import run_gradual

run_gradual(
    gradual=snakemake.wildcards.gradual,
    panel_name=snakemake.wildcards.panel,
    panel=snakemake.params.panel,
    data_dir=snakemake.params.data_dir,
    split_path=snakemake.input.split,
    seed=int(snakemake.wildcards.seed),
    targets=snakemake.params.targets,
    device_spec=snakemake.params.device,
    threads=snakemake.threads,
    trajectory_out=snakemake.output.trajectory,
    snapshots_out=snakemake.output.snapshots,
    init_out=snakemake.output.init,
    state_dir=snakemake.params.state_dir,
    selection=snakemake.params.selection,
)
