"""The runs the workflow performs, each from settings to files.

Each function here takes plain settings (a panel's dict from config.yaml, paths, a seed)
and writes its outputs atomically, with provenance. The workflow scripts only unpack
``snakemake`` objects and call these; a user can call them from Python just as well.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

from . import data as data_mod
from .masks import sparsity_report
from .models import build_model
from .provenance import Timer, atomic_torch_save, atomic_write_json, provenance
from .training import Recipe, evaluate, resolve_device, seed_everything, train


def load_panel_data(panel: dict, data_dir, split_path, device) -> data_mod.PanelData:
    return data_mod.panel_data(
        panel["dataset"], data_dir, split_path, device=device,
        train_samples=panel.get("train_samples"), val_samples=panel.get("val_samples"),
        test_samples=panel.get("test_samples"),
    )


def setup(panel: dict, device_spec: str, threads: int | None, log: Callable[[str], None]):
    """Threads and device of a job, said in its log."""
    if threads:
        torch.set_num_threads(int(threads))
    device = resolve_device(device_spec)
    log(f"device={device} (asked: {device_spec}) torch_threads={torch.get_num_threads()} "
        f"cuda_visible={torch.cuda.device_count() if torch.cuda.is_available() else 0}")
    return device


def final_metrics(model, data, recipe: Recipe) -> dict:
    """Test, validation and training-set loss/error of the final weights (one eval pass each)."""
    out = {}
    for split in ("train", "val", "test"):
        x, y = getattr(data, split)
        if len(x):
            r = evaluate(model, x, y, recipe.eval_batch_size)
            out[f"{split}_loss"], out[f"{split}_error"] = r["loss"], r["error"]
    return out


def run_dense(*, panel_name: str, panel: dict, data_dir, split_path, seed: int,
              device_spec: str = "auto", threads: int | None = None,
              model_out, init_out, metrics_out, checkpoint, log=print) -> dict:
    """Train a panel's dense model with its recipe; write the final weights, the initial
    weights (the rewind point of later methods) and a metrics JSON with provenance."""
    timer = Timer()
    device = setup(panel, device_spec, threads, log)
    recipe = Recipe.from_dict(panel["dense"], where=f"panels.{panel_name}.dense")
    data = load_panel_data(panel, data_dir, split_path, device)
    log(f"data: {data.describe()}")
    seed_everything(seed)
    model = build_model(panel["model"], num_classes=data.num_classes)
    # The seeded init is the rewind point of later methods; a resumed job rebuilds the same.
    atomic_torch_save(model.state_dict(), init_out)
    trainer = train(model, data, recipe, seed=seed, device=device, checkpoint=checkpoint,
                    augment=data.augment_batch if data.augment else None, log=log,
                    name=f"{panel_name}/dense/s{seed}")
    metrics = {
        "panel": panel_name,
        "method": "dense",
        "model": panel["model"],
        "dataset": panel["dataset"],
        "seed": seed,
        **final_metrics(trainer.model, data, recipe),
        **sparsity_report(trainer.model),
        "epochs": trainer.epoch,
        "history": trainer.history,
        "data": data.describe(),
        "provenance": provenance(settings={"panel": panel, "recipe": recipe.to_dict()},
                                 seed=seed, device=device, wall_time_s=timer.elapsed),
    }
    atomic_torch_save(trainer.model.state_dict(), model_out)
    atomic_write_json(metrics_out, metrics)
    Path(checkpoint).unlink(missing_ok=True)
    log(f"done: test_error={metrics['test_error']:.3f}% in {timer.elapsed:.1f}s")
    return metrics


# ---------------------------------------------------------------------------------------
# Pruning: LOBSTER trajectories, retraining of their masks, one-shot magnitude pruning
# ---------------------------------------------------------------------------------------


def _summary(trainer, data, recipe) -> dict:
    """Final numbers of a trained (possibly masked) model."""
    return {**final_metrics(trainer.model, data, recipe), **sparsity_report(trainer.model),
            "epochs": trainer.epoch}


def run_lobster_trajectory(*, panel_name: str, panel: dict, data_dir, split_path, seed: int,
                           targets, device_spec="auto", threads=None, trajectory_out,
                           snapshots_out, init_out, state_dir, log=print) -> dict:
    """One LOBSTER run of a panel: every pruning event's best-validation weights and mask
    (``snapshots_out``: {event: {state_dict, mask}}), the run's initial weights (the rewind
    point, ``init_out``) and ``trajectory_out``: every event's sparsity, neurons, validation
    and test error, the snapshot chosen for each target, and provenance.

    ``state_dir`` holds what an interrupted run needs to resume (the engine's checkpoint and
    the events emitted so far); it is removed once the outputs are written."""
    from .lobster import LobsterSettings, run_lobster
    from .masks import Mask
    from .pruning import select_snapshots

    timer = Timer()
    device = setup(panel, device_spec, threads, log)
    cfg = dict(panel["lobster"])
    recipe = Recipe.from_dict(cfg.pop("recipe"), where=f"panels.{panel_name}.lobster.recipe")
    settings = LobsterSettings.from_dict(cfg, where=f"panels.{panel_name}.lobster")
    data = load_panel_data(panel, data_dir, split_path, device)
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)

    def on_snapshot(snap: dict) -> None:
        model = build_model(panel["model"], num_classes=data.num_classes).to(device)
        model.load_state_dict(snap["state_dict"])
        test = evaluate(model, *data.test, recipe.eval_batch_size)
        meta = {k: v for k, v in snap.items() if k not in ("state_dict", "mask")}
        meta.update(test_loss=test["loss"], test_error=test["error"])
        atomic_torch_save({"state_dict": snap["state_dict"], "mask": snap["mask"].state_dict(),
                           "meta": meta}, state_dir / f"event{snap['event']:04d}.pt")
        log(f"[lobster] snapshot {snap['event']}: {meta['pruned_params_pct']:.3f} % params, "
            f"{meta['pruned_neurons_pct']:.3f} % neurons, test_error {test['error']:.3f} %")

    seed_everything(seed)
    model = build_model(panel["model"], num_classes=data.num_classes)
    trainer = run_lobster(model, data, recipe, settings, seed=seed, device=device,
                          checkpoint=state_dir / "train_state.ckpt", on_snapshot=on_snapshot,
                          on_init=lambda s: atomic_torch_save(s, state_dir / "init.pt"),
                          augment=data.augment_batch if data.augment else None, log=log)
    event_files = sorted(state_dir.glob("event*.pt"))
    snapshots, events = {}, []
    for f in event_files:
        e = torch.load(f, map_location="cpu", weights_only=False)
        snapshots[e["meta"]["event"]] = {"state_dict": e["state_dict"], "mask": e["mask"]}
        events.append(e["meta"])
    emitted = [e["event"] for e in trainer.lobster.events]
    if sorted(snapshots) != sorted(emitted):
        raise RuntimeError(f"{state_dir}: event files {sorted(snapshots)} do not match the run's "
                           f"events {emitted}; delete the folder and rerun")
    targets = [float(t) for t in targets]
    trajectory = {
        "panel": panel_name, "method": "lobster", "model": panel["model"],
        "dataset": panel["dataset"], "seed": seed, "events": events,
        "snapshots": [{k: s.get(k) for k in ("target", "reached", "event", "max_reached",
                                             "pruned_params_pct", "pruned_neurons_pct",
                                             "test_error", "val_error")}
                      for s in select_snapshots(events, targets)],
        "epochs": trainer.epoch, "history": trainer.history, "data": data.describe(),
        "provenance": provenance(settings={"panel": panel, "recipe": recipe.to_dict(),
                                           "lobster": settings.to_dict(), "targets": targets},
                                 seed=seed, device=device, wall_time_s=timer.elapsed),
    }
    atomic_torch_save(torch.load(state_dir / "init.pt", weights_only=True), init_out)
    atomic_torch_save(snapshots, snapshots_out)
    atomic_write_json(trajectory_out, trajectory)
    for f in state_dir.iterdir():
        f.unlink()
    state_dir.rmdir()
    reached = [f"{s['target']:g}%->{s['pruned_params_pct']:.2f}%" if s["reached"] else f"{s['target']:g}%: not reached"
               for s in trajectory["snapshots"]]
    log(f"done: {len(events)} events, snapshots {', '.join(reached)} in {timer.elapsed:.1f}s")
    return trajectory


def retrain_recipe(panel: dict, panel_name: str) -> Recipe:
    """The retraining budget: the panel's ``retrain`` recipe, else its dense recipe (Liu et
    al.'s Scratch-E, our default)."""
    cfg = panel.get("retrain") or panel["dense"]
    return Recipe.from_dict(cfg, where=f"panels.{panel_name}.retrain")


def run_retrain(*, kind: str, panel_name: str, panel: dict, data_dir, split_path,
                trajectory, snapshots, init, target: float, seeds, device_spec="auto",
                threads=None, metrics_out, models_out, state_dir, log=print) -> dict:
    """Retrain the mask of the LOBSTER snapshot chosen for ``target`` with ``kind``
    (rewind | reinit | random), once per seed, in one job. A target the LOBSTER run never
    reached is written as such (``reached: false``), with no training."""
    from .masks import Mask
    from .pruning import retrain

    timer = Timer()
    device = setup(panel, device_spec, threads, log)
    traj = json.loads(Path(trajectory).read_text())
    snap = next(s for s in traj["snapshots"] if abs(s["target"] - float(target)) < 1e-9)
    recipe = retrain_recipe(panel, panel_name)
    base = {"panel": panel_name, "method": kind, "model": panel["model"],
            "dataset": panel["dataset"], "lobster_seed": traj["seed"], "target": float(target),
            "reached": bool(snap["reached"]), "snapshot": snap}
    runs, models = [], {}
    if snap["reached"]:
        data = load_panel_data(panel, data_dir, split_path, device)
        snapshot = torch.load(snapshots, map_location="cpu", weights_only=False)[snap["event"]]
        mask = Mask({n: t.bool() for n, t in snapshot["mask"].items()})
        init_state = torch.load(init, map_location="cpu", weights_only=True)
        state_dir = Path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        for s in seeds:
            done = state_dir / f"seed{s}.pt"
            if done.exists():  # finished before an interruption
                r = torch.load(done, map_location="cpu", weights_only=False)
            else:
                t0 = Timer()
                trainer = retrain(kind, panel["model"], data.num_classes, mask, data, recipe,
                                  seed=int(s), device=device, init_state=init_state,
                                  checkpoint=state_dir / f"train_state_seed{s}.ckpt",
                                  augment=data.augment_batch if data.augment else None, log=log)
                r = {"run": {"seed": int(s), **_summary(trainer, data, recipe),
                             "wall_time_s": round(t0.elapsed, 3), "history": trainer.history},
                     "state_dict": {k: v.cpu() for k, v in trainer.model.state_dict().items()},
                     "mask": trainer.mask.state_dict()}
                atomic_torch_save(r, done)
                (state_dir / f"train_state_seed{s}.ckpt").unlink(missing_ok=True)
            runs.append(r["run"])
            models[int(s)] = {"state_dict": r["state_dict"], "mask": r["mask"]}
            log(f"[{kind}] target {target:g}% seed {s}: test_error {r['run']['test_error']:.3f} %")
        base["data"] = data.describe()
    else:
        log(f"[{kind}] target {target:g} % was not reached by LOBSTER "
            f"(max {snap.get('max_reached')}); nothing to retrain")
    errors = torch.tensor([r["test_error"] for r in runs], dtype=torch.float64)
    metrics = {
        **base, "runs": runs, "n_seeds": len(runs),
        "test_error_mean": float(errors.mean()) if len(runs) else None,
        "test_error_std": float(errors.std()) if len(runs) > 1 else (0.0 if runs else None),
        "provenance": provenance(settings={"panel": panel, "recipe": recipe.to_dict(),
                                           "kind": kind, "seeds": list(seeds)},
                                 seed=list(seeds), device=device, wall_time_s=timer.elapsed),
    }
    atomic_torch_save(models, models_out)
    atomic_write_json(metrics_out, metrics)
    if Path(state_dir).exists():
        for f in Path(state_dir).iterdir():
            f.unlink()
        Path(state_dir).rmdir()
    return metrics


def run_oneshot(*, panel_name: str, panel: dict, data_dir, split_path, dense_model,
                target: float, seed: int, device_spec="auto", threads=None, metrics_out,
                model_out, checkpoint, log=print) -> dict:
    """One-shot magnitude pruning of the dense model to ``target`` % and fine-tuning with
    the mask fixed (the classic three stages: train, prune, fine-tune)."""
    from .pruning import oneshot

    timer = Timer()
    device = setup(panel, device_spec, threads, log)
    recipe = Recipe.from_dict(panel["oneshot_finetune"], where=f"panels.{panel_name}.oneshot_finetune")
    data = load_panel_data(panel, data_dir, split_path, device)
    dense = torch.load(dense_model, map_location="cpu", weights_only=True)
    trainer = oneshot(dense, panel["model"], data.num_classes, data, float(target) / 100.0,
                      recipe, seed=seed, device=device, checkpoint=checkpoint,
                      augment=data.augment_batch if data.augment else None, log=log)
    summary = _summary(trainer, data, recipe)
    metrics = {
        "panel": panel_name, "method": "oneshot", "model": panel["model"],
        "dataset": panel["dataset"], "seed": seed, "target": float(target), "reached": True,
        "runs": [{"seed": seed, **summary, "history": trainer.history}], "n_seeds": 1,
        "test_error_mean": summary["test_error"], "test_error_std": 0.0,
        "pruned_params_pct": summary["pruned_params_pct"],
        "pruned_neurons_pct": summary["pruned_neurons_pct"], "data": data.describe(),
        "provenance": provenance(settings={"panel": panel, "recipe": recipe.to_dict(),
                                           "target": float(target)},
                                 seed=seed, device=device, wall_time_s=timer.elapsed),
    }
    atomic_torch_save({"state_dict": trainer.model.state_dict(), "mask": trainer.mask.state_dict()},
                      model_out)
    atomic_write_json(metrics_out, metrics)
    Path(checkpoint).unlink(missing_ok=True)
    return metrics
