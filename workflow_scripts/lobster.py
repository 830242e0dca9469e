"""One LOBSTER run of a panel: its pruning trajectory and snapshots."""

from _adapter import start

start(snakemake)

from sharpminima.experiments import run_lobster_trajectory

run_lobster_trajectory(
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
)
