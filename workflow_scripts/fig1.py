"""One panel of Fig. 1: the plotted numbers (CSV) and the figure (PDF, PNG)."""

from _adapter import start

log = start(snakemake)

from sharpminima.figures import fig1
from sharpminima.provenance import atomic_savefig
from sharpminima.tables import fig1_points, write_csv

p = snakemake.params
points = fig1_points(p.panel, snakemake.input.dense, snakemake.input.trajectories,
                     snakemake.input.methods)
write_csv(points, snakemake.output.csv)
s = p.settings
title = (f"{snakemake.wildcards.figure}: {s['model']} on {s['dataset']}, preset {p.preset} "
         f"(n_train={s['train_samples'] or 'all'}; gradual seeds {list(p.seeds)}, "
         f"retraining seeds {list(p.retrain_seeds)}; selection {p.selection})")
fig = fig1(points, title, note=s.get("note", ""))
atomic_savefig(fig, snakemake.output.pdf)
atomic_savefig(fig, snakemake.output.png, dpi=150)
log.info(points.to_string())
