"""Tables gathered from the metrics JSON files of many runs (one row per run)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .gradual import PAPER_GRADUAL
from .paper_figures import MAP_KINDS, READINGS
from .provenance import atomic_write_text
from .retraining import role_of

def read_metrics(path) -> dict:
    with open(path) as fh:
        return json.load(fh)


def provenance_columns(m: dict) -> dict:
    """The provenance columns every table row carries beside its numbers."""
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


#: the selection rules (``training.SELECTIONS``; repeated here, since tables stay torch-free)
SELECTIONS = ("best_val", "best_val_error", "last")
FIG1_COLUMNS = ["panel", "method", "role", "masks_of", "target", "reached", "pruned_params_pct",
                "pruned_neurons_pct", "n_seeds", "test_error_mean", "test_error_std", "max_reached",
                "test_errors", *(f"test_errors_{r}" for r in SELECTIONS),
                "selected_epochs", "early_selections"]


def join_values(values) -> str:
    """Per-seed values in one CSV cell (``;``-separated, full precision): what a verdict reads."""
    return ";".join(f"{float(v):.8g}" for v in values)


def split_values(cell) -> list[float]:
    if cell is None or (isinstance(cell, float) and cell != cell) or cell == "":
        return []
    return [float(v) for v in str(cell).split(";")]


def _point(panel, method, target, errors, params_pct, neurons_pct, max_reached=None,
           masks_of=None, by_rule=None, selected=None) -> dict:
    """One Fig. 1 point. ``by_rule``: per selection rule, the per-seed errors it reports
    (absent: the same as ``errors``: a gradual snapshot is not re-selected); ``selected``:
    per seed, (the epoch the run's rule chose, the epochs it ran)."""
    errors = [e for e in errors if e is not None]
    s = pd.Series(errors, dtype=float)
    by_rule = by_rule or {}
    selected = selected or []
    return {
        "panel": panel, "method": method, "masks_of": masks_of, "target": float(target),
        "reached": bool(errors),
        "pruned_params_pct": float(pd.Series(params_pct, dtype=float).mean()) if errors else None,
        "pruned_neurons_pct": float(pd.Series(neurons_pct, dtype=float).mean()) if errors else None,
        "n_seeds": len(errors),
        "test_error_mean": float(s.mean()) if errors else None,
        "test_error_std": float(s.std(ddof=1)) if len(errors) > 1 else (0.0 if errors else None),
        "max_reached": max_reached,
        "test_errors": join_values(errors),
        **{f"test_errors_{r}": join_values(by_rule.get(r, errors)) for r in SELECTIONS},
        "selected_epochs": ";".join(f"{e}/{n}" for e, n in selected),
        # a selection in the first tenth of the budget: the run barely trained (flagged)
        "early_selections": sum(1 for e, n in selected if e is not None and e <= max(1, n // 10)),
    }


def _runs_by_rule(runs) -> tuple[dict, list]:
    """Per selection rule, the test errors of ``runs`` (metrics' run records), and each
    run's (selected epoch, epochs); runs written before every rule was kept give none."""
    by_rule = {r: [run["selections"][r]["test_error"] for run in runs] for r in SELECTIONS
               if all(r in run.get("selections", {}) for run in runs)}
    return by_rule, [(run.get("selected_epoch"), run.get("epochs")) for run in runs]


def fig1_points(panel: str, dense_paths, trajectory_paths, method_paths) -> pd.DataFrame:
    """The numbers of one Fig. 1 panel: one row per (method, target sparsity), mean and std
    of the test error over every seed (gradual seeds x retraining seeds), the sparsity the
    method reached there (mean), and rows with ``reached = False`` for targets a gradual
    method never reached. Gradual methods (LOBSTER, IMP, GMP) are rows of their own name;
    a retraining's ``masks_of`` names the gradual method whose masks it retrained (empty for
    the others). A ``dense`` row (target 0) carries the dense models' error."""
    rows = []
    dense = [read_metrics(p) for p in dense_paths]
    by_rule, selected = _runs_by_rule(dense)
    rows.append(_point(panel, "dense", 0.0, [m["test_error"] for m in dense],
                       [m["pruned_params_pct"] for m in dense], [m["pruned_neurons_pct"] for m in dense],
                       by_rule=by_rule, selected=selected))
    by_method: dict = {}
    for p in trajectory_paths:
        t = read_metrics(p)
        by_method.setdefault(t.get("method", PAPER_GRADUAL), []).append(t)
    for method, trajs in by_method.items():
        targets = sorted({s["target"] for t in trajs for s in t["snapshots"]})
        for target in targets:
            snaps = [s for t in trajs for s in t["snapshots"] if s["target"] == target]
            hit = [s for s in snaps if s["reached"]]
            rows.append(_point(panel, method, target, [s["test_error"] for s in hit],
                               [s["pruned_params_pct"] for s in hit],
                               [s["pruned_neurons_pct"] for s in hit],
                               max((s.get("max_reached") or 0.0 for s in snaps if not s["reached"]), default=None)))
    by_key: dict = {}
    for p in method_paths:
        m = read_metrics(p)
        by_key.setdefault((m["method"], m.get("masks_of") or "", m["target"]), []).append(m)
    for (method, masks, target), ms in sorted(by_key.items()):
        runs = [r for m in ms for r in m["runs"]]
        by_rule, selected = _runs_by_rule(runs)
        rows.append(_point(panel, method, target, [r["test_error"] for r in runs],
                           [r["pruned_params_pct"] for r in runs],
                           [r["pruned_neurons_pct"] for r in runs], masks_of=masks or None,
                           by_rule=by_rule, selected=selected))
    df = pd.DataFrame(rows, columns=FIG1_COLUMNS)
    df["role"] = [role_of(m) for m in df["method"]]  # dense, gradual, retraining or oneshot
    return df


# -- the landscape: G and 1-S side by side (claims.py judges the paper's statements) ------

SOLUTIONS = ("G", "1-S")
#: the PSP map's columns carried to the table: every quantity it measures, each configured
#: reading under its alias too
PSP_COLUMNS = tuple(dict.fromkeys([*MAP_KINDS["psp"], *READINGS]))


def _at(table: pd.DataFrame, index) -> pd.Series:
    i, j = index
    row = table[(table["i"] == i) & (table["j"] == j)]
    if len(row) != 1:
        raise ValueError(f"the map has no single point at grid index {tuple(index)}")
    return row.iloc[0]


def landscape_summary(plane_meta: dict, loss_csv, psp_csv, hessian_csv, trajectory: dict,
                      rewind_metrics: dict) -> pd.DataFrame:
    """The numbers of the landscape at its two solutions, G (grid point ``g_index``) and 1-S
    (``s_index``), read from the maps of the same plane, the Hessian points, the gradual
    run's trajectory (G's test error) and the rewind retraining (1-S's test error, the seed the
    plane used): one row per solution. Errors are in %, as everywhere."""
    loss, psp, hess = pd.read_csv(loss_csv), pd.read_csv(psp_csv), pd.read_csv(hessian_csv)
    event = next(e for e in trajectory["events"] if e["event"] == plane_meta["event"])
    run = next(r for r in rewind_metrics["runs"] if r["seed"] == plane_meta["retrain_seed"])
    test_error = {"G": event["test_error"], "1-S": run["test_error"]}
    index = {"G": plane_meta["g_index"], "1-S": plane_meta["s_index"]}
    eig_cols = [c for c in hess.columns if c.startswith("eig") and c[3:].isdigit()]
    rows = []
    for sol in SOLUTIONS:
        lo, ps = _at(loss, index[sol]), _at(psp, index[sol])
        h = hess[hess["solution"] == sol].iloc[0]
        rows.append({
            "panel": plane_meta["panel"], "method": plane_meta.get("method", PAPER_GRADUAL),
            "solution": sol, "target": plane_meta["target"],
            "pruned_params_pct": plane_meta["pruned_params_pct"],
            "pruned_neurons_pct": plane_meta["pruned_neurons_pct"],
            "test_error": test_error[sol], "loss": lo["loss"], "train_error": lo["error"],
            **{c: ps[c] for c in PSP_COLUMNS if c in ps.index},
            **{c: h[c] for c in eig_cols}, "eig_mean": h["eig_mean"],
        })
    return pd.DataFrame(rows)


# -- the features of every solution (similarity.py, transfer.py) -----------------------------


def _grouped(df: pd.DataFrame, keys: list[str], values: list[str]) -> pd.DataFrame:
    """Mean (and std, n) over seeds of ``values`` per ``keys``; ``masks_of`` may be empty."""
    df = df.copy()
    df["masks_of"] = df["masks_of"].fillna("")
    g = df.groupby(keys, sort=True, dropna=False)
    out = g[values + ["pruned_params_pct"]].mean()
    for v in values:
        out[f"{v}_std"] = g[v].std(ddof=1).fillna(0.0)
    out["n_seeds"] = g.size()
    out = out.reset_index()
    out["masks_of"] = out["masks_of"].replace("", None)
    return out


def similarity_points(df: pd.DataFrame) -> pd.DataFrame:
    """Per (method, masks_of, target, layer): SVCCA and CKA with the dense model, mean and
    std over seeds, and the mean sparsity; the dense model itself (similarity 1) left out."""
    df = df[df["method"] != "dense"]
    return _grouped(df, ["method", "masks_of", "target", "depth", "layer"], ["svcca", "cka"])


def transfer_points(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (probe data set, method, masks_of, target): the probe error (%), mean and std over
    seeds, the mean sparsity and the mean PSP entropies; ``control`` marks the solution's own
    data set."""
    return _grouped(runs, ["probe_data", "control", "method", "masks_of", "target"],
                    ["probe_error", "entropy1", "entropy2"])
