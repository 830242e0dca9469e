"""Every solution of a panel, read back from the files the runs wrote.

A *solution* is one trained network of Fig. 1: the dense model, a gradual method's snapshot
at a target (LOBSTER's G among them), a retraining of a snapshot's mask (rewind: the
landscape's 1-S; re-init; random) per seed, a one-shot pruned model. The analyses of the
features (``similarity.py``, ``transfer.py``) run on all of them alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

__all__ = ["FILE_KEYS", "load_solutions"]

#: the file lists :func:`load_solutions` takes (the rules' input names, paired by position)
FILE_KEYS = ("dense_models", "dense_metrics", "trajectories", "snapshots", "retrain_metrics",
             "retrain_models", "oneshot_metrics", "oneshot_models")


def _json(path) -> dict:
    return json.loads(Path(path).read_text())


def load_solutions(*, dense_models=(), dense_metrics=(), trajectories=(), snapshots=(),
                   retrain_metrics=(), retrain_models=(), oneshot_metrics=(),
                   oneshot_models=()) -> list[dict]:
    """One dict per solution: ``method`` (dense, a gradual method, rewind / reinit / random,
    oneshot), ``masks_of`` (the gradual method whose mask a retraining retrained, else
    None), ``target`` (0 for dense), ``seed`` (the run's: the retraining seed for a
    retraining), ``origin_seed`` (the seed of the dense and gradual runs it comes from),
    ``pruned_params_pct``, ``test_error`` and ``state_dict``. The file lists
    pair up by position (``dense_models[i]`` with ``dense_metrics[i]``, ...); targets a run
    did not reach are skipped."""
    out = []
    for model, metrics in zip(dense_models, dense_metrics):
        m = _json(metrics)
        out.append({"method": "dense", "masks_of": None, "target": 0.0, "seed": m["seed"], "origin_seed": m["seed"],
                    "pruned_params_pct": m["pruned_params_pct"], "test_error": m["test_error"],
                    "state_dict": torch.load(model, map_location="cpu", weights_only=True)})
    for traj_path, snap_path in zip(trajectories, snapshots):
        traj = _json(traj_path)
        snaps = torch.load(snap_path, map_location="cpu", weights_only=False)
        for s in traj["snapshots"]:
            if s["reached"]:
                out.append({"method": traj["method"], "masks_of": None, "target": float(s["target"]),
                            "seed": traj["seed"], "origin_seed": traj["seed"], "pruned_params_pct": s["pruned_params_pct"],
                            "test_error": s["test_error"], "state_dict": snaps[s["event"]]["state_dict"]})
    for metrics, models in zip(retrain_metrics, retrain_models):
        m = _json(metrics)
        if not m["reached"]:
            continue
        weights = torch.load(models, map_location="cpu", weights_only=False)
        for r in m["runs"]:
            out.append({"method": m["method"], "masks_of": m.get("masks_of"), "target": float(m["target"]),
                        "seed": r["seed"], "origin_seed": m["gradual_seed"], "pruned_params_pct": r["pruned_params_pct"],
                        "test_error": r["test_error"], "state_dict": weights[int(r["seed"])]["state_dict"]})
    for metrics, model in zip(oneshot_metrics, oneshot_models):
        m = _json(metrics)
        out.append({"method": "oneshot", "masks_of": None, "target": float(m["target"]), "seed": m["seed"],
                    "origin_seed": m["seed"],
                    "pruned_params_pct": m["pruned_params_pct"], "test_error": m["test_error_mean"],
                    "state_dict": torch.load(model, map_location="cpu", weights_only=False)["state_dict"]})
    return out
