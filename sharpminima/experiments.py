"""The runs the workflow performs, each from settings to files.

Each function here takes plain settings (a panel's dict from config.yaml, paths, a seed)
and writes its outputs atomically, with provenance. The workflow scripts only unpack
``snakemake`` objects and call these; a user can call them from Python just as well.
Progress goes to the standard ``logging`` loggers ``sharpminima.*`` (level INFO).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from . import data as data_mod
from .masks import sparsity_report
from .models import build_model
from .paper_figures import MAP_KINDS, reading_columns, readings_of
from .provenance import (Timer, atomic_torch_save, atomic_write_json, fingerprint,
                         fingerprint_diff, provenance)
from .training import Recipe, evaluate, resolve_device, seed_everything, train

_log = logging.getLogger(__name__)


def load_panel_data(panel: dict, data_dir, split_path, device) -> data_mod.PanelData:
    return data_mod.panel_data(
        panel["dataset"], data_dir, split_path, device=device,
        train_samples=panel.get("train_samples"), val_samples=panel.get("val_samples"),
        test_samples=panel.get("test_samples"),
    )


def _recipe(panel: dict, cfg: dict, where: str) -> Recipe:
    """A recipe block of the panel, computed as the workflow's ``compact_training`` says
    (passed in the panel's settings; a recipe may not set it itself: one switch per run)."""
    if "compact_training" in cfg:
        raise ValueError(f"{where}.compact_training: set it once, at the top level of the config")
    return Recipe.from_dict({**cfg, "compact_training": panel.get("compact_training", "auto")}, where=where)


def setup(panel: dict, device_spec: str, threads: int | None):
    """Threads, device and allocator of a job, said in its log."""
    from .landscape import tune_malloc

    # glibc would return every freed block above its mmap threshold to the OS, so large
    # batches (evaluation at 1000) page-fault on every call: 1.4-2.4x on the forward pass
    # here. Allocation only: the numbers are the same.
    tune_malloc()
    if threads:
        torch.set_num_threads(int(threads))
    device = resolve_device(device_spec)
    _log.info(f"device={device} (asked: {device_spec}) torch_threads={torch.get_num_threads()} "
              f"cuda_visible={torch.cuda.device_count() if torch.cuda.is_available() else 0}")
    return device


def run_fingerprint(panel: dict, data_dir, split_path, settings: dict, **files) -> dict:
    """The fingerprint of a job's resumable state: the panel's settings (data sizes included)
    and the job's own ``settings``, the split file, the data set's manifest (its files' md5s)
    and any other input ``files`` (the snapshot or dense model a job starts from)."""
    manifest = Path(data_dir) / f"{panel['dataset']}.manifest.json"
    inputs = {"split": split_path, **({"manifest": manifest} if manifest.exists() else {}), **files}
    return fingerprint({"panel": panel, **settings}, inputs)


class Job:
    """The skeleton every runner shares: the clock of its wall time, its threads and device
    (:func:`setup`; none for a job that only reads and writes files, ``device_spec=None``),
    the panel's data, the fingerprint of its resumable state and the folder that holds it,
    and the provenance of what it writes."""

    def __init__(self, panel: dict | None, device_spec: str | None = "auto", threads: int | None = None, *,
                 data_dir=None, split_path=None):
        self.timer = Timer()
        self.panel, self.data_dir, self.split_path = panel, data_dir, split_path
        self.device = setup(panel, device_spec, threads) if device_spec is not None else None
        self.state_dir: Path | None = None

    def data(self) -> data_mod.PanelData:
        return load_panel_data(self.panel, self.data_dir, self.split_path, self.device)

    def fingerprint(self, settings: dict, **files) -> dict:
        return run_fingerprint(self.panel, self.data_dir, self.split_path, settings, **files)

    def own_state(self, state_dir, fp: dict) -> Path:
        """The folder of the job's resumable state, holding only state of the run ``fp``
        describes (:func:`_own_state_dir`)."""
        self.state_dir = Path(state_dir)
        _own_state_dir(self.state_dir, fp)
        return self.state_dir

    def drop_state(self) -> None:
        """Remove the state folder, once the outputs are written."""
        if self.state_dir is not None and self.state_dir.exists():
            for f in self.state_dir.iterdir():
                f.unlink()
            self.state_dir.rmdir()

    def provenance(self, settings: dict, seed=None) -> dict:
        return provenance(settings=settings, seed=seed, device=self.device, wall_time_s=self.timer.elapsed)

    @property
    def elapsed(self) -> float:
        return self.timer.elapsed


def run_dense(*, panel_name: str, panel: dict, data_dir, split_path, seed: int,
              device_spec: str = "auto", threads: int | None = None,
              model_out, init_out, metrics_out, checkpoint, selection: str = "best_val") -> dict:
    """Train a panel's dense model with its recipe; write the weights the ``selection`` rule
    picks (``training.SELECTIONS``), the initial weights (the rewind point of later methods)
    and a metrics JSON with provenance."""
    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    recipe = _recipe(panel, panel["dense"], f"panels.{panel_name}.dense")
    data = job.data()
    _log.info(f"data: {data.describe()}")
    seed_everything(seed)
    model = build_model(panel["model"], num_classes=data.num_classes)
    # The seeded init is the rewind point of later methods; a resumed job rebuilds the same.
    atomic_torch_save(model.state_dict(), init_out)
    fp = job.fingerprint({"seed": seed, "selection": selection})
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


# ---------------------------------------------------------------------------------------
# Pruning: gradual trajectories (LOBSTER, IMP, GMP), retraining of their masks, one-shot
# ---------------------------------------------------------------------------------------


def final_metrics(trainer, data, recipe) -> dict:
    """The final numbers of a trained run: loss and error on the train, validation and test
    splits of the weights its selection rule reports, which rule and epoch that is, and what
    every rule of ``training.SELECTIONS`` would have reported: the epoch it picks and the
    validation and test loss and error of those weights (``selections``), so that a claim can
    be judged under each rule at no extra training. Computing less, exactly: each distinct
    epoch is evaluated once (the rules often pick the same one), and through the compacted
    network where the run trained through it (as its epochs' validation was)."""
    model = trainer.model
    reported = {k: t.detach().clone() for k, t in model.state_dict().items()}
    compacted = trainer.compaction.net_for(trainer, data.train[0].shape[1:]) is not None

    def on(splits) -> dict:
        fwd = trainer.compaction.evaluator() if compacted else None  # at the loaded weights
        out = {}
        for split in splits:
            x, y = getattr(data, split)
            if len(x):
                e = evaluate(model, x, y, recipe.eval_batch_size, forward=fwd)
                out[f"{split}_loss"], out[f"{split}_error"] = e["loss"], e["error"]
        return out

    by_epoch, outcomes = {}, {}
    for rule, (epoch, state) in trainer.selection_candidates().items():
        if epoch not in by_epoch:  # one epoch, one set of weights
            model.load_state_dict(state)
            by_epoch[epoch] = on(("val", "test"))
        outcomes[rule] = {"epoch": epoch, **by_epoch[epoch]}
    model.load_state_dict(reported)
    held_out = by_epoch.get(trainer.selected_epoch) or on(("val", "test"))
    return {**on(("train",)), **held_out, "selection": trainer.selection,
            "selected_epoch": trainer.selected_epoch, "selections": outcomes}


def _summary(trainer, data, recipe) -> dict:
    """Final numbers of a trained (possibly masked) model: the weights its selection chose."""
    return {**final_metrics(trainer, data, recipe), **sparsity_report(trainer.model),
            "epochs": trainer.epoch}


def _gradual_run(panel: dict, panel_name: str, method: str) -> tuple[Recipe, dict]:
    """A gradual method's training recipe (``settings.gradual_recipe``) and the rest of its
    block (the method's settings)."""
    from .settings import gradual_recipe

    cfg = dict(panel.get(method) or {})
    cfg.pop("recipe", None)
    return _recipe(panel, gradual_recipe(panel, method), f"panels.{panel_name}.{method}.recipe"), cfg


def run_gradual(*, gradual: str, panel_name: str, panel: dict, data_dir, split_path, seed: int,
                targets, device_spec="auto", threads=None, trajectory_out, snapshots_out,
                init_out, state_dir, selection: str | None = "best_val") -> dict:
    """One run of a gradual pruning method ``gradual`` (``gradual.GRADUAL_METHODS``: LOBSTER,
    IMP, GMP) on a panel, with the panel's ``<gradual>`` block as its settings. Writes the snapshot
    chosen for each target (``snapshots_out``: {event: {state_dict, mask}}; the choice is
    ``pruning.select_snapshots`` with the ``selection`` rule; None for a method with a rule
    of its own, as LOBSTER), the run's rewind point
    (``init_out``: the initial weights, or IMP's late-rewinding point) and
    ``trajectory_out``: every snapshot's sparsity, neurons and validation error, the
    snapshot chosen for each target with its test error (the test set is evaluated on those
    only: ``test_error`` is None on the others), and provenance.

    ``state_dir`` holds what an interrupted run needs to resume (the engine's checkpoint and
    the snapshots emitted so far); it is removed once the outputs are written."""
    from .gradual import GRADUAL_METHODS, load
    from .pruning import select_snapshots

    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    module, settings_cls = load(gradual)
    recipe, cfg = _gradual_run(panel, panel_name, gradual)
    settings = settings_cls.from_dict(cfg, where=f"panels.{panel_name}.{gradual}")
    data = job.data()
    targets = [float(t) for t in targets]
    spec = GRADUAL_METHODS[gradual]
    # the targets only pick snapshots after the run, unless the method stops on them (IMP)
    # or prunes to the highest (GMP)
    fp = job.fingerprint({"seed": seed, "method": gradual,
                          **({"targets": targets} if spec.uses_targets else {}),
                          **({"selection": selection} if spec.uses_selection else {})})
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
    # only the chosen snapshots' weights are kept (every snapshot's numbers are in `events`)
    snapshots = {e["meta"]["event"]: {"state_dict": e["state_dict"], "mask": e["mask"]}
                 for e in saved if e["meta"]["event"] in keep}
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


def _own_state_dir(state_dir: Path, fp: dict) -> None:
    """Make ``state_dir`` hold only state of the run ``fp`` describes: a folder left by another
    run (other settings, data, or starting point) is emptied, saying which and why."""
    stamp = state_dir / "fingerprint.json"
    if state_dir.exists() and any(state_dir.iterdir()):
        saved = json.loads(stamp.read_text()) if stamp.exists() else None
        diff = fingerprint_diff(saved, fp)
        if diff:
            _log.warning(f"not resuming from {state_dir}: written by another run ({'; '.join(diff)}); "
                         f"starting over")
            for f in state_dir.iterdir():
                f.unlink()
    state_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(stamp, fp)


def retrain_recipe(panel: dict, panel_name: str, retraining: str, trajectory: dict | None = None,
                   event: int | None = None) -> Recipe:
    """The retraining budget of ``retraining``: ``settings.retrain_recipe`` (its own recipe, else
    the panel's ``retrain`` one, else the dense recipe: Liu et al.'s Scratch-E, our default).
    A method with the gradual run's budget (``rewind_matched``) trains with the recipe of the
    gradual run of ``trajectory`` for the epochs that led to its snapshot ``event``."""
    from .gradual import GRADUAL_METHODS
    from .retraining import RETRAINING_METHODS
    from .settings import retrain_recipe as recipe_of

    gradual = trajectory["method"] if trajectory else None
    cfg = recipe_of(panel, retraining, gradual)
    if RETRAINING_METHODS[retraining].budget == "gradual" and event is not None:
        cfg["epochs"] = GRADUAL_METHODS[gradual].epochs_to(trajectory["events"], event)
    return _recipe(panel, cfg, f"panels.{panel_name}: the recipe of {retraining}")


def run_retrain(*, retraining: str, panel_name: str, panel: dict, data_dir, split_path,
                trajectory, snapshots, init, target: float, seeds, device_spec="auto",
                threads=None, metrics_out, models_out, state_dir, selection: str = "best_val") -> dict:
    """Retrain the mask of the gradual run's snapshot chosen for ``target`` (``trajectory``,
    ``snapshots``: a LOBSTER, IMP or GMP run; ``init``: its rewind point) with ``retraining``
    (rewind | reinit | random), once per seed, in one job. A target the gradual run never
    reached is written as such (``reached: false``), with no training. Each seed reports the
    weights its ``selection`` rule picks (``training.SELECTIONS``; the epoch is recorded)."""
    from .masks import Mask
    from .pruning import retrain

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
                r = {"run": {"seed": int(s), **_summary(trainer, data, recipe),
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
    from .pruning import oneshot

    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    recipe = _recipe(panel, panel["oneshot_finetune"], f"panels.{panel_name}.oneshot_finetune")
    data = job.data()
    dense = torch.load(dense_model, map_location="cpu", weights_only=True)
    fp = job.fingerprint({"seed": seed, "target": float(target), "selection": selection},
                         dense_model=dense_model)
    trainer = oneshot(dense, panel["model"], data.num_classes, data, float(target) / 100.0,
                      recipe, seed=seed, device=job.device, checkpoint=checkpoint, fingerprint=fp,
                      augment=data.augment_batch if data.augment else None,
                      evaluate_test=False,  # test error: once, at the end
                      selection=selection)
    summary = _summary(trainer, data, recipe)
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


# ---------------------------------------------------------------------------------------
# The landscape around the sparsest solutions: plane, maps, Hessian
# ---------------------------------------------------------------------------------------


def choose_landscape_target(trajectory: dict, target) -> dict:
    """The gradual run's snapshot the landscape is drawn around: the configured ``target``,
    or (None) the highest target the run reached. A clear error when it was not reached."""
    reached = [s for s in trajectory["snapshots"] if s["reached"]]
    if target is None:
        if not reached:
            raise ValueError(f"landscape: {trajectory['method']} ({trajectory['panel']}) reached none of its "
                             "targets; there is no sparse solution to analyse")
        return max(reached, key=lambda s: s["target"])
    snap = next((s for s in trajectory["snapshots"] if abs(s["target"] - float(target)) < 1e-9), None)
    if snap is None or not snap["reached"]:
        raise ValueError(f"landscape.target {target} was not reached by {trajectory['method']} on "
                         f"{trajectory['panel']} (reached: {[s['target'] for s in reached]})")
    return snap


def best_rewind_seed(rewind_metrics: dict) -> int:
    """1-S of the plane: the rewind retraining with the lowest validation loss (its selected
    weights'), as the paper draws the best retraining; ties go to the lower seed."""
    runs = [r for r in rewind_metrics["runs"] if r.get("val_loss") is not None]
    if not runs:
        raise ValueError(f"no rewind retraining with a validation loss in {rewind_metrics.get('panel')} "
                         f"at target {rewind_metrics.get('target')}")
    return int(min(runs, key=lambda r: (r["val_loss"], r["seed"]))["seed"])


def _rewind_at(snap: dict, rewind_metrics, rewind_models):
    """The rewind job (metrics, models) of the snapshot's target among the given files."""
    key = f"t{snap['target']:g}"
    idx = next((i for i, p in enumerate(rewind_metrics) if Path(p).parent.name == key), None)
    if idx is None:
        raise ValueError(f"no rewind retraining at target {snap['target']:g} among {list(map(str, rewind_metrics))}")
    return (json.loads(Path(rewind_metrics[idx]).read_text()),
            torch.load(rewind_models[idx], map_location="cpu", weights_only=False))


def choose_g(trajectories, target, g_out=None) -> dict:
    """G of a landscape, chosen once for every job that reads it (the plane, the maps, the
    point quantities): the target every gradual seed is measured at
    (:func:`common_landscape_target`: the configured ``target``, or the highest every seed
    reached), each seed's snapshot there (or that it did not reach it), and the plane's seed
    (the first gradual seed, as the paper draws one plane). A clear error when the plane's
    seed did not reach the target. Written atomically to ``g_out`` when given."""
    job = Job(None, None)
    trajs = [json.loads(Path(t).read_text()) for t in trajectories]
    t = common_landscape_target(trajs, target)
    seeds = []
    for traj in trajs:
        snap = next((s for s in traj["snapshots"] if s["reached"] and abs(s["target"] - t) < 1e-9), None)
        seeds.append({"seed": int(traj["seed"]), "reached": snap is not None,
                      **({k: snap[k] for k in ("event", "pruned_params_pct", "pruned_neurons_pct")} if snap else {})})
    plane_seed = seeds[0]["seed"]
    choose_landscape_target(trajs[0], t)  # the plane's seed must have a solution there
    g = {"panel": trajs[0]["panel"], "method": trajs[0]["method"], "target": t,
         "target_rule": "configured" if target is not None else "the highest target every seed reached",
         "plane_seed": plane_seed, "seeds": seeds,
         "provenance": job.provenance({"target": target})}
    if g_out is not None:
        atomic_write_json(g_out, g)
        _log.info(f"G of {g['panel']}/{g['method']}: target {t:g} ({g['target_rule']}); seeds "
                  + ", ".join(f"{s['seed']}: " + (f"{s['pruned_params_pct']:.3f} %" if s["reached"] else "not reached")
                              for s in seeds))
    return g


def _g_snapshot(g: dict, traj: dict) -> dict:
    """The trajectory's snapshot at G's target (the one ``choose_g`` recorded for its seed)."""
    snap = choose_landscape_target(traj, g["target"])
    mine = next(s for s in g["seeds"] if s["seed"] == int(traj["seed"]))
    if snap["event"] != mine.get("event"):
        raise ValueError(f"G of {traj['panel']}/{traj['method']} seed {traj['seed']}: the trajectory's snapshot "
                         f"at {g['target']:g} (event {snap['event']}) is not the one G was chosen at "
                         f"({mine.get('event')}); the trajectory changed after g.json was written")
    return snap


def build_plane(*, panel_name: str, panel: dict, g, trajectory, snapshots, rewind_metrics,
                rewind_models, retrain_seed, settings: dict, plane_out, meta_out) -> dict:
    """The plane through G (the plane seed's snapshot at G's target, ``g``: :func:`choose_g`'s
    file) and 1-S (the Frankle & Carbin retraining of the same mask: seed ``retrain_seed``, or
    (None) the seed with the lowest validation loss, :func:`best_rewind_seed`)."""
    from .landscape import make_plane

    job = Job(panel, None)
    choice = json.loads(Path(g).read_text())
    traj = json.loads(Path(trajectory).read_text())
    snap = _g_snapshot(choice, traj)
    key = f"{snap['target']:g}"
    g = torch.load(snapshots, map_location="cpu", weights_only=False)[snap["event"]]
    rm, s_all = _rewind_at(snap, rewind_metrics, rewind_models)
    chosen = best_rewind_seed(rm) if retrain_seed is None else int(retrain_seed)
    if chosen not in s_all:
        raise ValueError(f"landscape.retrain_seed {chosen} is not among the rewind seeds {sorted(s_all)}")
    s = s_all[chosen]
    mask = {k: t.bool() for k, t in g["mask"].items()}
    res_a, res_b = settings["resolution"]
    plane = make_plane(g["state_dict"], s["state_dict"], mask, seed=settings["noise_seed"],
                       res_a=res_a, res_b=res_b,
                       meta={"panel": panel_name, "method": traj["method"],
                             "target": snap["target"], "event": snap["event"],
                             "pruned_params_pct": snap["pruned_params_pct"],
                             "pruned_neurons_pct": snap["pruned_neurons_pct"],
                             "retrain_seed": chosen,
                             "retrain_seed_rule": "configured" if retrain_seed is not None
                             else "lowest validation loss"})
    plane.save(plane_out)
    meta = {**plane.meta, "method": traj["method"], "gradual_seed": traj["seed"], "model": panel["model"],
            "dataset": panel["dataset"],
            "provenance": job.provenance({"landscape": settings, "target": snap["target"]},
                                         settings["noise_seed"])}
    atomic_write_json(meta_out, meta)
    _log.info(f"plane around {panel_name} at {snap['pruned_params_pct']:.3f} % (target {key}), 1-S seed "
              f"{chosen}: |u|={plane.meta['norm_u']:.4g}, cos(u,v)={plane.meta['cos_uv']:.2e}, grid {res_a}x{res_b}")
    return meta


def _reached_at(trajectory: dict, target: float) -> bool:
    return any(s["reached"] and abs(s["target"] - target) < 1e-9 for s in trajectory["snapshots"])


def common_landscape_target(trajectories: list[dict], target) -> float:
    """The target every G seed is measured at: the configured one, or (None) the highest
    target every seed reached (so that the seeds are compared at one sparsity)."""
    if target is not None:
        return float(target)
    reached = [{s["target"] for s in t["snapshots"] if s["reached"]} for t in trajectories]
    both = set.intersection(*reached) if reached else set()
    if not both:
        raise ValueError(f"landscape: the seeds of {trajectories[0]['method']} on {trajectories[0]['panel']} "
                         "reached no target in common")
    return max(both)


def run_landscape_points(*, panel_name: str, panel: dict, g, trajectories, snapshots, rewind_metrics,
                         rewind_models, data_dir, split_path, settings: dict,
                         device_spec="auto", threads=None, table_out) -> None:
    """The landscape's point quantities (:func:`landscape.measure_solution`) at every seed of
    G (each gradual seed's snapshot at G's target, ``g``: :func:`choose_g`'s file) and of 1-S
    (every rewind retraining of each G seed's mask): the seeds behind the landscape verdicts. A seed that
    did not reach the target has no solution there and is left out (listed in the metadata
    as ``unreached_gradual_seeds``; our choice: the claims are about solutions at the target,
    so the verdict's n counts the seeds that got there). Measured on
    the maps' samples and the Hessian's (``landscape.hessian.batches`` disjoint batches of
    ``samples`` training images: the eigenvalues are the first batch's, the spread of their
    mean over batches is recorded)."""
    import pandas as pd

    from .landscape import HESSIAN_SPACES, measure_solution
    from .tables import write_csv

    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    device = job.device
    choice = json.loads(Path(g).read_text())
    trajs = [json.loads(Path(t).read_text()) for t in trajectories]
    t_common = choice["target"]
    data, x, y = _landscape_data(job, settings["samples"])
    h = settings["hessian"]
    n_b, n_h = int(h.get("batches", 1)), int(h["samples"])
    xt, yt = data.train
    if n_b * n_h > len(xt):
        raise ValueError(f"landscape.hessian: {n_b} batches of {n_h} images exceed the panel's "
                         f"{len(xt)} training images")
    batches = [(xt[b * n_h:(b + 1) * n_h], yt[b * n_h:(b + 1) * n_h]) for b in range(n_b)]
    builder = lambda: build_model(panel["model"], num_classes=data.num_classes)  # noqa: E731
    space = h.get("space", "mask")
    kw = dict(k=h["k"], solver=h["solver"], seed=h["seed"], tol=h["tol"], compact=settings["compact"],
              batch_size=settings["batch_size"], joint_max_pairs=settings["joint_max_pairs"],
              noise_seed=settings["noise_seed"], spaces=HESSIAN_SPACES, smallest=space)
    rows = []

    def measure(state, mask, **info):
        model = builder().to(device)
        model.load_state_dict({k: v.to(device) for k, v in state.items()})
        t0 = Timer()
        row = {**info, **measure_solution(model, mask, x, y, data.num_classes, batches, **kw)}
        row.update({alias: row[col] for alias, col in reading_columns(settings).items()})
        row["eig_mean"] = row[f"eig_mean_{space}"]
        for i in range(h["k"]):
            row[f"eig{i + 1}"] = row[f"eig{i + 1}_{space}"]
        row["eig_min"] = row.get(f"eig_min_{space}")
        row["seconds"] = round(t0.elapsed, 3)
        rows.append(row)
        _log.info(f"{info['solution']} (G seed {info['gradual_seed']}, seed {info['seed']}): loss {row['loss']:.4g}, "
                  f"top-{h['k']} mean {row['eig_mean']:.4g} (smallest {row['eig_min']}), "
                  f"entropy2 {row['entropy2']:.4g} in {row['seconds']:.1f}s")

    reached = [(t, s) for t, s in zip(trajs, snapshots) if _reached_at(t, t_common)]
    unreached = [int(t["seed"]) for t in trajs if not _reached_at(t, t_common)]
    if not reached:
        choose_landscape_target(trajs[0], t_common)  # the clear error
    if unreached:  # not a solution at the target: left out, and said so in the table's metadata
        _log.warning(f"gradual seeds {unreached} did not reach target {t_common:g}: no G or 1-S there")
    for traj, snaps in reached:
        snap = _g_snapshot(choice, traj)
        g = torch.load(snaps, map_location="cpu", weights_only=False)[snap["event"]]
        mask = {k: t.bool() for k, t in g["mask"].items()}
        base = {"panel": panel_name, "method": traj["method"], "target": t_common,
                "gradual_seed": traj["seed"], "pruned_params_pct": snap["pruned_params_pct"]}
        mine = [(m, mo) for m, mo in zip(rewind_metrics, rewind_models) if f"/s{traj['seed']}/" in str(m)]
        rm, s_all = _rewind_at(snap, [m for m, _ in mine], [mo for _, mo in mine])
        best = best_rewind_seed(rm)
        measure(g["state_dict"], mask, solution="G", seed=traj["seed"], test_error=snap.get("test_error"),
                val_loss=snap.get("val_loss"), **base)
        for run in rm["runs"]:
            measure(s_all[int(run["seed"])]["state_dict"], mask, solution="1-S", seed=int(run["seed"]),
                    test_error=run["test_error"], val_loss=run.get("val_loss"),
                    best_of_g_seed=int(run["seed"]) == best, **base)
    df = pd.DataFrame(rows)
    write_csv(df, table_out)
    atomic_write_json(Path(table_out).with_suffix(".json"), {
        "what": "the landscape's point quantities at every seed of G and 1-S",
        "target": t_common, "unreached_gradual_seeds": unreached, "n_samples": int(len(x)), "hessian_samples": n_h, "hessian_batches": n_b,
        "readings": readings_of(settings), "hessian_space": space,
        "provenance": job.provenance(settings, settings["noise_seed"])})
    _log.info(f"landscape points: {len(df)} solutions in {job.elapsed:.1f}s")


def _landscape_data(job: Job, samples):
    """The first ``samples`` training samples of the job's panel: the 'training loss' of Fig. 2."""
    data = job.data()
    x, y = data.train
    if samples is not None and samples > len(x):
        raise ValueError(f"landscape.samples={samples} exceeds the panel's {len(x)} training samples")
    n = len(x) if samples is None else samples
    return data, x[:n], y[:n]


def run_plane_map(*, map_kind: str, panel: dict, plane, data_dir, split_path, settings: dict,
                  device_spec="auto", threads=None, table_out) -> None:
    """One map on the plane: ``map_kind`` = ``loss`` (Fig. 2a) or ``psp`` (PSP norm and the
    first- and second-order PSP entropies of Fig. 3, 4a, 4b, in one pass per point)."""
    from .landscape import Plane, map_plane

    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    pl = Plane.load(plane)
    data, x, y = _landscape_data(job, settings["samples"])
    quantities = [reading_columns(settings).get(q, q) for q in MAP_KINDS[map_kind]]
    df = map_plane(lambda: build_model(panel["model"], num_classes=data.num_classes), pl, x, y,
                   quantities=quantities, batch_size=settings["batch_size"],
                   compact=settings["compact"], num_classes=data.num_classes,
                   joint_max_pairs=settings["joint_max_pairs"], seed=settings["noise_seed"],
                   per_layer=map_kind == "psp")
    for alias, col in reading_columns(settings).items():  # the configured reading's own name
        if col in df:
            df[alias] = df[col]
    meta = {"map_kind": map_kind, "quantities": quantities, "n_samples": int(len(x)),
            "split": "train (first samples of the panel's training split)",
            "readings": readings_of(settings),
            "compacted": df.attrs["compacted"],
            "compact_info": df.attrs["compact_info"], "map_seconds": df.attrs["seconds"],
            "joint_pairs": df.attrs.get("joint_pairs"), "plane": pl.meta,
            "provenance": job.provenance(settings, settings["noise_seed"])}
    from .tables import write_csv

    write_csv(df, table_out)
    atomic_write_json(Path(table_out).with_suffix(".json"), meta)
    _log.info(f"{map_kind} map: {len(df)} points in {df.attrs['seconds']:.1f}s "
              f"(compacted={df.attrs['compacted']})")


def hessian_grid_points(plane, resolution) -> list[tuple[int, int]]:
    """A coarser sub-grid of the plane's grid (evenly spaced indices, ends included)."""
    import numpy as np

    ra, rb = plane.shape
    ha, hb = (min(int(resolution[0]), ra), min(int(resolution[1]), rb))
    ia = sorted(set(np.rint(np.linspace(0, ra - 1, ha)).astype(int).tolist())) if ha > 0 else []
    ib = sorted(set(np.rint(np.linspace(0, rb - 1, hb)).astype(int).tolist())) if hb > 0 else []
    return [(i, j) for i in ia for j in ib]


def run_hessian(*, panel: dict, plane, data_dir, split_path, settings: dict,
                device_spec="auto", threads=None, points_out, map_out, readings_out=None) -> None:
    """Top-k Hessian eigenvalues of the training loss at G and 1-S (``points_out``) and their
    mean on a coarser grid of the same plane (``map_out``), in the configured ``space``
    (``landscape.map_hessian``: the sparse subspace ``mask`` or the ``full`` parameter space);
    ``readings_out``: G and 1-S in both spaces, so that the two readings of the paper's
    Fig. 2b can be compared on the same points."""
    import pandas as pd

    from .landscape import HESSIAN_SPACES, Plane, map_hessian
    from .tables import write_csv

    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    pl = Plane.load(plane)
    h = settings["hessian"]
    data, x, y = _landscape_data(job, h["samples"])
    builder = lambda: build_model(panel["model"], num_classes=data.num_classes)  # noqa: E731
    space = h.get("space", "mask")
    kw = dict(k=h["k"], solver=h["solver"], seed=h["seed"], tol=h["tol"], compact=settings["compact"])
    g_idx, s_idx = pl.meta["g_index"], pl.meta["s_index"]
    if g_idx is None or s_idx is None:
        raise ValueError("landscape.resolution must put G (a=0) and 1-S (a=1) on the grid: "
                         "use res_a = 4k+1 and an odd res_b")
    both = [tuple(g_idx), tuple(s_idx)]
    spaces = [space] + ([s for s in HESSIAN_SPACES if s != space] if readings_out is not None else [])
    by_space = {}
    for sp in spaces:
        t = map_hessian(builder, pl, x, y, points=both, space=sp, **kw)
        t.insert(0, "solution", ["G", "1-S"])
        by_space[sp] = t
        _log.info(f"hessian ({sp} space): G {t.iloc[0]['eig_mean']:.4g}, 1-S {t.iloc[1]['eig_mean']:.4g} (mean top-{h['k']})")
    at = by_space[space]
    write_csv(at, points_out)
    if readings_out is not None:
        write_csv(pd.concat([t.assign(space=sp) for sp, t in by_space.items()], ignore_index=True),
                  readings_out)
    grid = hessian_grid_points(pl, h["resolution"])
    hm = map_hessian(builder, pl, x, y, points=grid, space=space, **kw) if grid else at.iloc[0:0]
    write_csv(hm, map_out)
    meta = {"n_samples": int(len(x)), "split": "train", "settings": h, "space": space, "plane": pl.meta,
            "n_hvp_total": int(at.n_hvp.sum() + (hm.n_hvp.sum() if len(hm) else 0)),
            "provenance": job.provenance(settings, h["seed"])}
    atomic_write_json(Path(points_out).with_suffix(".json"), meta)
    _log.info(f"hessian: G top-{h['k']} {at.iloc[0, 5:5 + h['k']].tolist()}, "
              f"1-S {at.iloc[1, 5:5 + h['k']].tolist()}; {len(hm)} map points in {job.elapsed:.1f}s")


def run_landscape_probe(*, panel: dict, plane, data_dir, split_path, settings: dict,
                        device_spec="auto", threads=None, table_out) -> None:
    """How the landscape's magnitudes depend on training length, measured on G itself.

    G's weights and mask are trained further with plain SGD (``landscape.probe_recipe``: batch
    size, learning rate, momentum, weight decay; unset, the panel's fine-tuning recipe
    ``oneshot_finetune``; no schedule, no LOBSTER regularisation, the mask fixed) for ``landscape.probe_epochs``
    epochs; after 0, 1, 3, 10, 30, ... epochs the training loss, both PSP-norm readings and
    the entropies are measured on the same samples as the maps, and at the first and last
    of them the top-k Hessian eigenvalues in both spaces. A network with BatchNorm is
    measured as the maps measure a plane point: on a copy whose running statistics are
    re-estimated on the same samples (``landscape.recalibrate_batchnorm``).
    The claims table cites the result where our magnitudes are far from the paper's: if
    they move towards the paper's ranges with more training, training length is (part of)
    the reason."""
    from .landscape import HESSIAN_SPACES, Plane, measure_solution
    from .masks import Mask
    from .tables import write_csv
    from .training import Callback

    import pandas as pd

    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    device = job.device
    pl = Plane.load(plane)
    data, x, y = _landscape_data(job, settings["samples"])
    h = settings["hessian"]
    xh, yh = data.train[0][:h["samples"]], data.train[1][:h["samples"]]
    epochs = int(settings["probe_epochs"])
    at = sorted({0, epochs, *[e for e in (1, 3, 10, 30, 100, 300) if e <= epochs]})
    ft, where = settings.get("probe_recipe"), "landscape.probe_recipe"
    if ft is None:  # our default: the panel's fine-tuning recipe (a short fixed-mask training)
        ft, where = panel["oneshot_finetune"], "panels.<panel>.oneshot_finetune (landscape.probe_recipe: null)"
    recipe = _recipe(panel, {"epochs": epochs, "batch_size": ft["batch_size"], "lr": ft["lr"],
                             "momentum": ft.get("momentum", 0.0), "weight_decay": ft.get("weight_decay", 0.0)},
                     f"landscape.probe_epochs with {where}")
    mask = Mask({k: v.bool() for k, v in pl.mask.items()})
    rows = []

    def measure(model, epoch):
        row = {"epoch": epoch, **measure_solution(
            model, mask, x, y, data.num_classes, [(xh, yh)], k=h["k"], solver=h["solver"], seed=h["seed"],
            tol=h["tol"], compact=settings["compact"], batch_size=settings["batch_size"],
            joint_max_pairs=settings["joint_max_pairs"], noise_seed=settings["noise_seed"],
            spaces=HESSIAN_SPACES if epoch in (0, epochs) else (), smallest=None)}
        row.update({alias: row[col] for alias, col in reading_columns(settings).items()})
        rows.append(row)
        model.train()
        _log.info(f"probe: epoch {epoch}: loss {row['loss']:.4g}, PSP norm {row['psp_norm_mean_square']:.4g} "
                  f"(l2 {row['psp_norm_l2']:.4g})" + (f", top eigenvalue {row['eig1_mask']:.4g} "
                                                      f"(full {row['eig1_full']:.4g})" if "eig1_mask" in row else ""))

    class Measure(Callback):
        def after_epoch(self, trainer, record):
            if trainer.epoch in at:
                measure(trainer.model, trainer.epoch)

    seed_everything(int(settings["noise_seed"]))
    model = build_model(panel["model"], num_classes=data.num_classes).to(device)
    model.load_state_dict({k: v.to(device) for k, v in pl.origin.items()})
    measure(model, 0)
    if epochs:
        train(model, data, recipe, seed=int(settings["noise_seed"]), device=device, mask=mask,
              callbacks=[Measure()], evaluate_test=False, name="probe")
    df = pd.DataFrame(rows)
    write_csv(df, table_out)
    atomic_write_json(Path(table_out).with_suffix(".json"), {
        "what": "G trained further with its mask fixed (plain SGD, landscape.probe_recipe)",
        "recipe": recipe.to_dict(), "n_samples": int(len(x)), "hessian_samples": int(len(xh)),
        "plane": pl.meta,
        "provenance": job.provenance(settings, settings["noise_seed"])})
    _log.info(f"probe done in {job.elapsed:.1f}s")


# ---------------------------------------------------------------------------------------
# The features of every solution: layer similarity to the dense network, transfer probe
# ---------------------------------------------------------------------------------------


def _solution_rows(solutions) -> list[dict]:
    keys = ("method", "masks_of", "target", "seed", "pruned_params_pct", "test_error")
    return [{k: s[k] for k in keys} for s in solutions]


def run_similarity(*, panel_name: str, panel: dict, data_dir, split_path, solution_files: dict,
                   settings: dict, device_spec="auto", threads=None, table_out) -> None:
    """SVCCA and linear CKA of every hidden layer of every solution of a panel
    (``solutions.load_solutions`` over ``solution_files``) with the dense model's, on the
    first ``settings["samples"]`` test images of the panel (``similarity.compare_layers``)."""
    import pandas as pd

    from .similarity import compare_layers, layer_activations
    from .solutions import load_solutions
    from .tables import write_csv

    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    device = job.device
    data = job.data()
    x = data.test[0][: settings["samples"]]
    solutions = load_solutions(**solution_files)
    model = build_model(panel["model"], num_classes=data.num_classes).to(device)

    def acts(state):
        model.load_state_dict(state)
        return layer_activations(model, x)

    # each solution against the dense model of the seed it comes from (the first otherwise)
    dense = {d["origin_seed"]: d for d in solutions if d["method"] == "dense"}
    first = next(iter(dense.values()))
    refs = {}
    rows = []
    for s, info in zip(solutions, _solution_rows(solutions)):
        d = dense.get(s.get("origin_seed"), first)
        if d["seed"] not in refs:
            refs[d["seed"]] = acts(d["state_dict"])
        ref = refs[d["seed"]]
        for r in compare_layers(ref, acts(s["state_dict"]), keep=settings["keep"],
                                max_rows=settings["max_rows"], seed=settings["seed"]):
            rows.append({"panel": panel_name, **info, **r})
        _log.info(f"similarity: {info['method']} t{info['target']:g} s{info['seed']}: "
                  + ", ".join(f"{r['layer']} {r['svcca']:.3f}/{r['cka']:.3f}" for r in rows[-len(ref):]))
    df = pd.DataFrame(rows)
    write_csv(df, table_out)
    atomic_write_json(Path(table_out).with_suffix(".json"), {
        "what": "SVCCA and linear CKA of each hidden layer with the dense model's",
        "n_samples": int(len(x)), "split": "test (first samples of the panel's test split)",
        "settings": settings, "n_solutions": len(solutions),
        "provenance": job.provenance({"panel": panel, "features": settings}, settings["seed"])})
    _log.info(f"similarity: {len(solutions)} solutions in {job.elapsed:.1f}s")


def run_transfer(*, panel_name: str, panel: dict, data_dir, split_path, target_dataset: str,
                 target_split_path, solution_files: dict, settings: dict, entropy2: str = "agreement",
                 device_spec="auto", threads=None, table_out) -> None:
    """The transfer probe (``transfer.py``) of every solution of a panel on
    ``target_dataset`` and, as the control, on the panel's own data set; beside it each
    solution's PSP entropies on the panel's first ``settings["samples"]`` test images (the
    paper's explanation: higher second-order entropy, features less class-specific)."""
    import pandas as pd

    from .psp import psp_statistics
    from .solutions import load_solutions
    from .tables import write_csv
    from .transfer import features, probe_error

    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    device = job.device
    t = settings["transfer"]
    source = job.data()
    target = data_mod.panel_data(target_dataset, data_dir, target_split_path, device=device,
                                 train_samples=t["train_samples"], val_samples=0,
                                 test_samples=t["test_samples"])
    probe_sets = {
        panel["dataset"]: (source.train[0][: t["train_samples"]], source.train[1][: t["train_samples"]],
                           source.test[0][: t["test_samples"]], source.test[1][: t["test_samples"]]),
        target_dataset: (*target.train, *target.test),
    }
    xe, ye = source.test[0][: settings["samples"]], source.test[1][: settings["samples"]]
    solutions = load_solutions(**solution_files)
    model = build_model(panel["model"], num_classes=source.num_classes).to(device)
    rows = []
    for s, info in zip(solutions, _solution_rows(solutions)):
        model.load_state_dict(s["state_dict"])
        model.eval()
        st = psp_statistics(model, xe, ye, source.num_classes, second_order=(entropy2,))
        ent = {"entropy1": st["entropy1"], "entropy2": st[f"entropy2_{entropy2}"]}
        for name, (xtr, ytr, xte, yte) in probe_sets.items():
            p = probe_error(features(model, xtr, t["layers"]), ytr.cpu().numpy(),
                            features(model, xte, t["layers"]), yte.cpu().numpy(),
                            C=t["C"], max_iter=t["max_iter"])
            rows.append({"panel": panel_name, **info, "probe_data": name,
                         "control": name == panel["dataset"], **p, **ent})
        _log.info(f"transfer: {info['method']} t{info['target']:g} s{info['seed']}: "
                  f"probe error {rows[-1]['probe_error']:.2f} % on {target_dataset} "
                  f"(control {rows[-2]['probe_error']:.2f} %), entropy2 {ent['entropy2']:.4g}")
    df = pd.DataFrame(rows)
    write_csv(df, table_out)
    atomic_write_json(Path(table_out).with_suffix(".json"), {
        "what": "linear probe on frozen features, on a second data set and (control) the panel's own",
        "source": panel["dataset"], "target": target_dataset, "settings": settings,
        "entropy2_definition": entropy2, "n_solutions": len(solutions),
        "n_probe_train": {k: int(len(v[0])) for k, v in probe_sets.items()},
        "n_probe_test": {k: int(len(v[2])) for k, v in probe_sets.items()},
        "provenance": job.provenance({"panel": panel, "features": settings, "target": target_dataset})})
    _log.info(f"transfer: {len(solutions)} solutions in {job.elapsed:.1f}s")
