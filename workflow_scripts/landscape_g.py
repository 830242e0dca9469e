"""G of a landscape, chosen once: the target every seed is measured at, each seed's snapshot."""

from _adapter import start

start(snakemake)

from sharpminima.experiments.landscape import choose_g

choose_g(snakemake.input.trajectories, snakemake.params.target, g_out=snakemake.output.g)
