"""Tables gathered from the metrics JSON files of many runs (one row per run)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .provenance import atomic_write_text

# The provenance columns every table row carries beside its numbers.
PROVENANCE_COLUMNS = ("device", "code_version", "torch", "wall_time_s")


def read_metrics(path) -> dict:
    with open(path) as fh:
        return json.load(fh)


def provenance_columns(m: dict) -> dict:
    p = m.get("provenance", {})
    return {
        "device": p.get("device_description") or p.get("device"),
        "code_version": p.get("code_version"),
        "torch": p.get("libraries", {}).get("torch"),
        "wall_time_s": p.get("wall_time_s"),
    }


def dense_table(metrics_paths) -> pd.DataFrame:
    """One row per dense run: its final errors, data sizes and provenance."""
    rows = []
    for path in metrics_paths:
        m = read_metrics(path)
        rows.append({
            "panel": m["panel"], "model": m["model"], "dataset": m["dataset"], "seed": m["seed"],
            "test_error": m["test_error"], "val_error": m.get("val_error"),
            "train_error": m.get("train_error"), "test_loss": m["test_loss"],
            "epochs": m["epochs"], "n_train": m["data"]["n_train"], "n_val": m["data"]["n_val"],
            "n_test": m["data"]["n_test"], **provenance_columns(m), "metrics_file": str(path),
        })
    return pd.DataFrame(rows)


def write_csv(df: pd.DataFrame, path) -> None:
    atomic_write_text(Path(path), df.to_csv(index=False, float_format="%.6g"))
