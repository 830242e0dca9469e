"""A panel's layer similarity to the dense model against sparsity, one line per method."""

from _adapter import start

log = start(snakemake)

import pandas as pd

from sharpminima.figures import similarity_figure
from sharpminima.provenance import atomic_savefig
from sharpminima.tables import similarity_points, write_csv

points = similarity_points(pd.read_csv(snakemake.input.table))
write_csv(points, snakemake.output.csv)
panel = snakemake.wildcards.panel
fig = similarity_figure(points, f"Layer similarity to the dense model: {panel}, preset {snakemake.params.preset}")
atomic_savefig(fig, snakemake.output.pdf)
atomic_savefig(fig, snakemake.output.png, dpi=150)
log.info(points.to_string())
