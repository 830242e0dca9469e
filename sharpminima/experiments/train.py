"""Training runs: the dense models, the gradual runs (LOBSTER, IMP, GMP), the retraining of
their masks, one-shot pruning."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from ..masks import sparsity_report
from ..models import build_model
from ..provenance import Timer, atomic_torch_save, atomic_write_json, fingerprint_diff
from ..training import Recipe, evaluate, seed_everything, train
from .job import Job, final_metrics, panel_recipe, run_summary

_log = logging.getLogger(__name__)


def run_dense(*, panel_name: str, panel: dict, data_dir, split_path, seed: int,
              device_spec: str = "auto", threads: int | None = None,
              model_out, init_out, metrics_out, checkpoint, selection: str = "best_val") -> dict:
    """Train a panel's dense model with its recipe; write the weights the ``selection`` rule
    picks (``training.SELECTIONS``), the initial weights (the rewind point of later methods)
    and a metrics JSON with provenance."""
    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    recipe = panel_recipe(panel, panel["dense"], f"panels.{panel_name}.dense")
    data = job.data()
    _log.info(f"data: {data.describe()}")
    seed_everything(seed)
    model = build_model(panel["model"], num_classes=data.num_classes)
    # The seeded init is the rewind point of later methods; a resumed job rebuilds the same.
    atomic_torch_save(model.state_dict(), init_out)
    fp = job.fingerprint({"seed": seed, "selection": selection}, extends=True)
    trainer = train(model, data, recipe, seed=seed, device=job.device, checkpoint=checkpoint,
                    augment=data.augment_batch if data.augment else None,
                    name=f"{panel_name}/dense/s{seed}", selection=selection, fingerprint=fp)
    metrics = {
        "panel": panel_name,
        "method": "dense",
        "model": panel["model"],
        "dataset": panel["dataset"],
        "seed": seed,
        **final_metrics(trainer, data, recipe),
        **sparsity_report(trainer.model),
        "epochs": trainer.epoch,
        "history": trainer.history,
        "data": data.describe(),
        "provenance": job.provenance({"panel": panel, "recipe": recipe.to_dict(), "selection": selection},
                                     seed),
    }
    atomic_torch_save(trainer.model.state_dict(), model_out)
    atomic_write_json(metrics_out, metrics)
    Path(checkpoint).unlink(missing_ok=True)
    _log.info(f"done: test_error={metrics['test_error']:.3f}% in {job.elapsed:.1f}s")
    return metrics


def run_gradual(*, gradual: str, panel_name: str, panel: dict, data_dir, split_path, seed: int,
                targets, device_spec="auto", threads=None, trajectory_out, snapshots_out,
                init_out, state_dir, selection: str | None = "best_val") -> dict:
    """One run of a gradual pruning method ``gradual`` (``gradual.GRADUAL_METHODS``: LOBSTER,
    IMP, GMP) on a panel, with the panel's ``<gradual>`` block as its settings. Writes the snapshot
    chosen for each target, and the first (``snapshots_out``: {event: {state_dict, mask}}; the choice is
    ``pruning.select_snapshots`` with the ``selection`` rule; None for a method with a rule
    of its own, as LOBSTER), the run's rewind point
    (``init_out``: the initial weights, or IMP's late-rewinding point) and
    ``trajectory_out``: every snapshot's sparsity, neurons and validation error, the
    snapshot chosen for each target with its test error (the test set is evaluated on those
    only: ``test_error`` is None on the others), and provenance.

    ``state_dir`` holds what an interrupted run needs to resume (the engine's checkpoint and
    the snapshots emitted so far); it is removed once the outputs are written."""
    from ..gradual import GRADUAL_METHODS, settings_of
    from ..pruning import select_snapshots
    from ..settings import gradual_recipe

    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    module, settings = settings_of(panel, panel_name, gradual)
    recipe = panel_recipe(panel, gradual_recipe(panel, gradual), f"panels.{panel_name}.{gradual}.recipe")
    data = job.data()
    targets = [float(t) for t in targets]
    spec = GRADUAL_METHODS[gradual]
    # the targets only pick snapshots after the run, unless the method stops on them (IMP)
    # or prunes to the highest (GMP)
    fp = job.fingerprint({"seed": seed, "method": gradual,
                          **({"targets": targets} if spec.uses_targets else {}),
                          **({"selection": selection} if spec.uses_selection else {})},
                         extends=spec.budget_extends)
    state_dir = job.own_state(state_dir, fp)

    def on_snapshot(snap: dict) -> None:
        meta = {k: v for k, v in snap.items() if k not in ("state_dict", "mask")}
        atomic_torch_save({"state_dict": snap["state_dict"], "mask": snap["mask"].state_dict(),
                           "meta": meta}, state_dir / f"event{snap['event']:04d}.pt")
        _log.info(f"[{gradual}] snapshot {snap['event']}: {meta['pruned_params_pct']:.3f} % params, "
                  f"{meta['pruned_neurons_pct']:.3f} % neurons, val_error {meta.get('val_error') or 0:.3f} %")

    def read_events() -> list[dict]:
        files = sorted(state_dir.glob("event*.pt"))
        return [torch.load(f, map_location="cpu", weights_only=False) for f in files]

    done = [{**e["meta"], "state_dict": e["state_dict"], "mask": e["mask"]} for e in read_events()]
    seed_everything(seed)
    model = build_model(panel["model"], num_classes=data.num_classes)
    run = module.run(model, data, recipe, settings, seed=seed, device=job.device,
                     checkpoint=state_dir / "train_state.ckpt", on_snapshot=on_snapshot,
                     on_init=lambda s: atomic_torch_save(s, state_dir / "init.pt"),
                     augment=data.augment_batch if data.augment else None,
                     fingerprint=fp, targets=targets, selection=selection or "best_val", done=done)
    saved = read_events()
    events = [e["meta"] for e in saved]
    emitted = [e["event"] for e in run.events]
    if sorted(e["event"] for e in events) != sorted(emitted):
        raise RuntimeError(f"{state_dir}: event files {sorted(e['event'] for e in events)} do not "
                           f"match the run's events {emitted}; delete the folder and rerun")
    chosen = select_snapshots(events, targets, selection=(selection or "best_val") if spec.uses_selection else "first")
    keep = {s["event"] for s in chosen if s["reached"]}
    # The test set is read only where a number is reported: the snapshots chosen for a
    # target (no choice reads it; GMP's per-epoch snapshots would spend a third of its run here)
    model = build_model(panel["model"], num_classes=data.num_classes).to(job.device)
    test = {}
    for e in saved:
        if e["meta"]["event"] in keep:
            model.load_state_dict(e["state_dict"])
            test[e["meta"]["event"]] = evaluate(model, *data.test, recipe.eval_batch_size)
    for e in events:
        r = test.get(e["event"])
        e.update(test_loss=r["loss"] if r else None, test_error=r["error"] if r else None)
    for c in chosen:
        if c["reached"]:
            c.update(test_loss=test[c["event"]]["loss"], test_error=test[c["event"]]["error"])
    # only the chosen snapshots' weights are kept (every snapshot's numbers are in `events`), and
    # the first's: the weights the first pruning started from (lobster.first_event reads them)
    first = min(e["event"] for e in events)
    snapshots = {e["meta"]["event"]: {"state_dict": e["state_dict"], "mask": e["mask"]}
                 for e in saved if e["meta"]["event"] in keep | {first}}
    trajectory = {
        "panel": panel_name, "method": gradual, "label": spec.label, "model": panel["model"],
        "dataset": panel["dataset"], "seed": seed, "events": events,
        "selection": run.selection,
        "snapshots": [{k: s.get(k) for k in ("target", "reached", "event", "max_reached",
                                             "pruned_params_pct", "pruned_neurons_pct",
                                             "test_error", "val_error")}
                      for s in chosen],
        "epochs": run.epochs, "history": run.history, "data": data.describe(),
        "provenance": job.provenance({"panel": panel, "method": gradual, "reference": spec.reference,
                                      "recipe": recipe.to_dict(), gradual: settings.to_dict(),
                                      "targets": targets, "selection": selection}, seed),
    }
    atomic_torch_save(torch.load(state_dir / "init.pt", weights_only=True), init_out)
    atomic_torch_save(snapshots, snapshots_out)
    atomic_write_json(trajectory_out, trajectory)
    job.drop_state()
    reached = [f"{s['target']:g}%->{s['pruned_params_pct']:.2f}%" if s["reached"] else f"{s['target']:g}%: not reached"
               for s in trajectory["snapshots"]]
    _log.info(f"done: {len(events)} snapshots, chosen {', '.join(reached)} in {job.elapsed:.1f}s")
    return trajectory


def retrain_recipe(panel: dict, panel_name: str, retraining: str, trajectory: dict | None = None,
                   event: int | None = None) -> Recipe:
    """The retraining budget of ``retraining``: ``settings.retrain_recipe`` (its own recipe, else
    the panel's ``retrain`` one, else the dense recipe: Liu et al.'s Scratch-E, our default).
    A method with the gradual run's budget (``rewind_matched``) trains with the recipe of the
    gradual run of ``trajectory`` for the epochs that led to its snapshot ``event``."""
    from ..gradual import GRADUAL_METHODS
    from ..retraining import RETRAINING_METHODS
    from ..settings import retrain_recipe as recipe_of

    gradual = trajectory["method"] if trajectory else None
    cfg = recipe_of(panel, retraining, gradual)
    if RETRAINING_METHODS[retraining].budget == "gradual" and event is not None:
        cfg["epochs"] = GRADUAL_METHODS[gradual].epochs_to(trajectory["events"], event)
    return panel_recipe(panel, cfg, f"panels.{panel_name}: the recipe of {retraining}")


def run_retrain(*, retraining: str, panel_name: str, panel: dict, data_dir, split_path,
                trajectory, snapshots, init, target: float, seeds, device_spec="auto",
                threads=None, metrics_out, models_out, state_dir, selection: str = "best_val") -> dict:
    """Retrain the mask of the gradual run's snapshot chosen for ``target`` (``trajectory``,
    ``snapshots``: a LOBSTER, IMP or GMP run; ``init``: its rewind point) with ``retraining``
    (rewind | reinit | random), once per seed, in one job. A target the gradual run never
    reached is written as such (``reached: false``), with no training. Each seed reports the
    weights its ``selection`` rule picks (``training.SELECTIONS``; the epoch is recorded)."""
    from ..masks import Mask
    from ..pruning import retrain

    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    traj = json.loads(Path(trajectory).read_text())
    snap = next(s for s in traj["snapshots"] if abs(s["target"] - float(target)) < 1e-9)
    recipe = retrain_recipe(panel, panel_name, retraining, traj, snap.get("event") if snap["reached"] else None)
    base = {"panel": panel_name, "method": retraining, "masks_of": traj["method"], "model": panel["model"],
            "dataset": panel["dataset"], "gradual_seed": traj["seed"], "target": float(target),
            "reached": bool(snap["reached"]), "snapshot": snap, "selection": selection}
    runs, models = [], {}
    if snap["reached"]:
        data = job.data()
        snapshot = torch.load(snapshots, map_location="cpu", weights_only=False)[snap["event"]]
        mask = Mask({n: t.bool() for n, t in snapshot["mask"].items()})
        init_state = torch.load(init, map_location="cpu", weights_only=True)
        # the state of this job: its settings, the data, and the snapshot it starts from
        # (no budget extension: a finished seed is reused only at its own budget)
        fp = job.fingerprint({"retraining": retraining, "target": float(target), "selection": selection,
                              "recipe": recipe.to_dict(), "event": snap["event"]},
                             snapshots=snapshots, init=init)
        state_dir = job.own_state(state_dir, fp)
        for s in seeds:
            done = state_dir / f"seed{s}.pt"
            r = None
            if done.exists():  # finished before an interruption: reused only if the same run's
                r = torch.load(done, map_location="cpu", weights_only=False)
                diff = fingerprint_diff(r.get("fingerprint"), fp)
                if diff:
                    _log.warning(f"[{retraining}] not reusing {done}: {'; '.join(diff)}; retraining seed {s}")
                    r = None
            if r is None:
                t0 = Timer()
                trainer = retrain(retraining, panel["model"], data.num_classes, mask, data, recipe,
                                  seed=int(s), device=job.device, init_state=init_state,
                                  checkpoint=state_dir / f"train_state_seed{s}.ckpt",
                                  augment=data.augment_batch if data.augment else None,
                                  evaluate_test=False,  # test error: once, at the end
                                  selection=selection, fingerprint=fp)  # the seed: checked by the engine
                r = {"run": {"seed": int(s), **run_summary(trainer, data, recipe),
                             "wall_time_s": round(t0.elapsed, 3), "history": trainer.history},
                     "state_dict": {k: v.cpu() for k, v in trainer.model.state_dict().items()},
                     "mask": trainer.mask.state_dict(), "fingerprint": fp}
                atomic_torch_save(r, done)
                (state_dir / f"train_state_seed{s}.ckpt").unlink(missing_ok=True)
            runs.append(r["run"])
            models[int(s)] = {"state_dict": r["state_dict"], "mask": r["mask"]}
            _log.info(f"[{retraining}] target {target:g}% seed {s}: test_error {r['run']['test_error']:.3f} %")
        base["data"] = data.describe()
    else:
        _log.warning(f"[{retraining}] target {target:g} % was not reached by {traj['method']} "
                     f"(max {snap.get('max_reached')}); nothing to retrain")
        job.state_dir = Path(state_dir)  # nothing to resume: a folder an earlier run left there goes
    errors = torch.tensor([r["test_error"] for r in runs], dtype=torch.float64)
    metrics = {
        **base, "runs": runs, "n_seeds": len(runs),
        "test_error_mean": float(errors.mean()) if len(runs) else None,
        "test_error_std": float(errors.std()) if len(runs) > 1 else (0.0 if runs else None),
        "provenance": job.provenance({"panel": panel, "recipe": recipe.to_dict(), "retraining": retraining,
                                      "seeds": list(seeds), "selection": selection}, list(seeds)),
    }
    atomic_torch_save(models, models_out)
    atomic_write_json(metrics_out, metrics)
    job.drop_state()
    return metrics


def run_oneshot(*, panel_name: str, panel: dict, data_dir, split_path, dense_model,
                target: float, seed: int, device_spec="auto", threads=None, metrics_out,
                model_out, checkpoint, selection: str = "best_val") -> dict:
    """One-shot magnitude pruning of the dense model to ``target`` % and fine-tuning with
    the mask fixed (the classic three stages: train, prune, fine-tune); the fine-tuned
    weights reported are those the ``selection`` rule picks (``training.SELECTIONS``)."""
    from ..pruning import oneshot

    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    recipe = panel_recipe(panel, panel["oneshot_finetune"], f"panels.{panel_name}.oneshot_finetune")
    data = job.data()
    dense = torch.load(dense_model, map_location="cpu", weights_only=True)
    fp = job.fingerprint({"seed": seed, "target": float(target), "selection": selection},
                         extends=True, dense_model=dense_model)
    trainer = oneshot(dense, panel["model"], data.num_classes, data, float(target) / 100.0,
                      recipe, seed=seed, device=job.device, checkpoint=checkpoint, fingerprint=fp,
                      augment=data.augment_batch if data.augment else None,
                      evaluate_test=False,  # test error: once, at the end
                      selection=selection)
    summary = run_summary(trainer, data, recipe)
    metrics = {
        "panel": panel_name, "method": "oneshot", "model": panel["model"],
        "dataset": panel["dataset"], "seed": seed, "target": float(target), "reached": True,
        "selection": selection, "runs": [{"seed": seed, **summary, "history": trainer.history}], "n_seeds": 1,
        "test_error_mean": summary["test_error"], "test_error_std": 0.0,
        "pruned_params_pct": summary["pruned_params_pct"],
        "pruned_neurons_pct": summary["pruned_neurons_pct"], "data": data.describe(),
        "provenance": job.provenance({"panel": panel, "recipe": recipe.to_dict(), "target": float(target),
                                      "selection": selection}, seed),
    }
    atomic_torch_save({"state_dict": trainer.model.state_dict(), "mask": trainer.mask.state_dict()},
                      model_out)
    atomic_write_json(metrics_out, metrics)
    Path(checkpoint).unlink(missing_ok=True)
    return metrics


