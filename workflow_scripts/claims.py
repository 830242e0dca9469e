"""The paper's claims against this run's numbers: results/tables/claims.csv."""

from _adapter import start

log = start(snakemake)

import json
from pathlib import Path

import pandas as pd

from sharpminima.claims import (Words, claims_table, fig1_claims, gaps_from_probe,
                                gradual_claims, landscape_claims, transfer_claims)
from sharpminima.gradual import GRADUAL_METHODS
from sharpminima.provenance import Timer, atomic_write_json, provenance
from sharpminima.tables import read_metrics, write_csv

timer = Timer()

p = snakemake.params
words = Words.from_dict(p.words)
labels = {name: m.label for name, m in GRADUAL_METHODS.items()}
rows = []
for panel_name in p.fig1_panels:
    points = pd.read_csv(getattr(snakemake.input, f"points_{panel_name}"))
    trajectories = [read_metrics(f) for f in getattr(snakemake.input, f"trajectories_{panel_name}")]
    rows += fig1_claims(panel_name, p.panels[panel_name], points, trajectories, words, p.preset,
                        selection=p.selection)
    rows += gradual_claims(panel_name, points, words, p.preset, labels=labels, selection=p.selection)
for key in [k for k in snakemake.input.keys() if k.startswith("transfer_")]:
    rows += transfer_claims(key[len("transfer_"):], pd.read_csv(snakemake.input[key]), words,
                            p.preset, labels=labels)
points = pd.read_csv(snakemake.input.landscape_points)
probe = pd.read_csv(snakemake.input.probe)
lp = p.landscape
for k, (panel_name, method) in enumerate(p.landscapes):
    files = {name: snakemake.input[f"map_{panel_name}_{method}_{name}"]
             for name in ("plane", "loss", "psp", "hessian_map")}
    plane = json.loads(Path(files["plane"]).read_text())
    maps = {name: pd.read_csv(files[name]) for name in ("loss", "psp", "hessian_map")}
    maps["at"] = {"G": plane["g_index"], "1-S": plane["s_index"]}
    # the paper's landscape: how its magnitudes move with training length (the probe)
    gaps = gaps_from_probe(probe, lp["psp_norm"], lp["hessian"]["space"]) if k == 0 else None
    rows += landscape_claims(panel_name, p.panels[panel_name], points, words, p.preset, method=method,
                             label=labels.get(method), maps=maps, gaps=gaps)
table = claims_table(rows)
write_csv(table, snakemake.output.table)
atomic_write_json(snakemake.output.meta, {
    "verdicts": table["verdict"].value_counts().to_dict(),
    "inputs": [str(f) for f in snakemake.input],
    "provenance": provenance(settings={"claims": vars(words), "preset": p.preset, "selection": p.selection,
                                       "landscape": lp, "landscapes": p.landscapes}, seed=None, wall_time_s=timer.elapsed),
})
log.info(table[["id", "paper", "ours", "verdict"]].to_string())
