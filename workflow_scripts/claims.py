"""The paper's claims against this run's numbers: results/tables/claims.csv."""

from _adapter import start

log = start(snakemake)

import pandas as pd

from sharpminima.claims import (Words, claims_table, fig1_claims, gaps_from_probe,
                                landscape_claims, readings_from)
from sharpminima.provenance import Timer, atomic_write_json, provenance
from sharpminima.tables import read_metrics, write_csv

timer = Timer()

p = snakemake.params
words = Words.from_dict(p.words)
rows = []
for panel_name in p.fig1_panels:
    points = pd.read_csv(getattr(snakemake.input, f"points_{panel_name}"))
    trajectories = [read_metrics(f) for f in getattr(snakemake.input, f"trajectories_{panel_name}")]
    rows += fig1_claims(panel_name, p.panels[panel_name], points, trajectories, words, p.preset)
solutions = pd.read_csv(snakemake.input.landscape)
hessian = pd.read_csv(snakemake.input.hessian_readings)
probe = pd.read_csv(snakemake.input.probe)
lp = p.landscape
readings = readings_from(solutions, hessian, lp["psp_norm"], lp["hessian"]["space"])
gaps = gaps_from_probe(probe, lp["psp_norm"], lp["hessian"]["space"])
rows += landscape_claims(lp["panel"], p.panels[lp["panel"]], solutions, words, p.preset,
                         readings=readings, gaps=gaps)
table = claims_table(rows)
write_csv(table, snakemake.output.table)
atomic_write_json(snakemake.output.meta, {
    "verdicts": table["verdict"].value_counts().to_dict(),
    "inputs": [str(f) for f in snakemake.input],
    "provenance": provenance(settings={"claims": vars(words), "preset": p.preset,
                                       "landscape": lp}, seed=None, wall_time_s=timer.elapsed),
})
log.info(table[["id", "paper", "ours", "verdict"]].to_string())
