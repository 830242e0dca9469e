"""One map figure of the landscape (Fig. 2a, 3, 4a or 4b) and its plotted numbers."""

from _adapter import start

log = start(snakemake)

import json

import pandas as pd

from sharpminima.figures import LANDSCAPE_MAPS, plane_map
from sharpminima.provenance import atomic_savefig
from sharpminima.tables import write_csv

name = snakemake.wildcards.lfig
_, column, label, log_scale = LANDSCAPE_MAPS[name]
df = pd.read_csv(snakemake.input.table)
meta = json.loads(open(snakemake.input.meta).read())
plane = meta["plane"]
write_csv(df[["a", "b", column]], snakemake.output.csv)
title = (f"{name}: {label}\n{plane['panel']}, G: {plane.get('method', 'lobster')}, at "
         f"{plane['pruned_params_pct']:.2f} % pruned "
         f"(target {plane['target']:g}); {meta['n_samples']} training samples")
if column in meta.get("readings", {}):  # drawn in its configured reading
    title += f"; reading: {meta['readings'][column]}"
fig = plane_map(df, column, title, label, log=log_scale)
atomic_savefig(fig, snakemake.output.pdf)
atomic_savefig(fig, snakemake.output.png, dpi=150)
at = df.set_index(["a", "b"])[column]
log.info(f"{column}: G={at.get((0.0, 0.0))} 1-S={at.get((1.0, 0.0))}")
