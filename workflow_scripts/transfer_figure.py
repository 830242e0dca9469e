"""The transfer probe against sparsity per method, and second-order PSP entropy against it."""

from _adapter import start

log = start(snakemake)

import pandas as pd

from sharpminima.figures import entropy_transfer_figure, transfer_figure
from sharpminima.provenance import atomic_savefig
from sharpminima.tables import transfer_points, write_csv

runs = pd.read_csv(snakemake.input.table)
points = transfer_points(runs)
write_csv(points, snakemake.output.csv)
w = snakemake.wildcards
title = f"Linear probe of frozen features: {w.panel} on {w.dataset}, preset {snakemake.params.preset}"
fig = transfer_figure(points, title)
atomic_savefig(fig, snakemake.output.pdf)
atomic_savefig(fig, snakemake.output.png, dpi=150)
target = runs[~runs.control]
write_csv(target[["method", "masks_of", "target", "seed", "pruned_params_pct", "entropy2", "probe_error"]],
          snakemake.output.entropy_csv)
fig = entropy_transfer_figure(target, f"Second-order PSP entropy against transfer: {w.panel} on {w.dataset}")
atomic_savefig(fig, snakemake.output.entropy_pdf)
atomic_savefig(fig, snakemake.output.entropy_png, dpi=150)
log.info(points.to_string())
