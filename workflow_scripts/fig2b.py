"""Fig. 2b: the top-k Hessian eigenvalues at G and 1-S, and their mean on a coarse grid."""

from _adapter import start

log = start(snakemake)

import json

import pandas as pd

from sharpminima.figures import hessian_figure
from sharpminima.provenance import atomic_savefig
from sharpminima.tables import write_csv

points = pd.read_csv(snakemake.input.points)
grid = pd.read_csv(snakemake.input.map)
meta = json.loads(open(snakemake.input.meta).read())
plane, h = meta["plane"], meta["settings"]
write_csv(pd.concat([points.assign(kind="solution"), grid.assign(kind="grid")], ignore_index=True),
          snakemake.output.csv)
title = (f"fig2b: top-{h['k']} Hessian eigenvalues, {plane['panel']} (G: "
         f"{plane.get('method', 'lobster')}) at "
         f"{plane['pruned_params_pct']:.2f} % pruned\n{meta['n_samples']} training samples, "
         f"solver {h['solver']}, "
         f"{'sparse subspace (mask)' if meta.get('space', 'mask') == 'mask' else 'full parameter space'}")
fig = hessian_figure(points, grid, title)
atomic_savefig(fig, snakemake.output.pdf)
atomic_savefig(fig, snakemake.output.png, dpi=150)
log.info(points.to_string())
