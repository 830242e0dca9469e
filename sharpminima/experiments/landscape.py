"""The landscape around the sparsest solutions: G and 1-S, the plane, its maps, the Hessian,
the points of every seed and the probe."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from ..models import build_model
from ..paper_figures import MAP_KINDS, MAP_PER_LAYER, reading_columns, readings_of
from ..provenance import Timer, atomic_write_json
from ..training import seed_everything, train
from .job import Job, panel_recipe

_log = logging.getLogger(__name__)


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
        events = trajectory.get("events") or []
        budget = ""
        if events and events[-1].get("end") == "budget":  # the remedy, where it is the budget
            budget = (f"; its run ended by its epoch budget ({trajectory.get('epochs')} epochs) at "
                      f"{events[-1].get('pruned_params_pct', float('nan')):.2f} %: raise panels."
                      f"{trajectory['panel']}.{trajectory['method']}.recipe.epochs (an upper bound where "
                      "a stop setting ends the run)")
        raise ValueError(f"landscape.target {target} was not reached by {trajectory['method']} on "
                         f"{trajectory['panel']} (reached: {[s['target'] for s in reached]}){budget}")
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
    from ..landscape import make_plane

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

    from ..landscape import HESSIAN_SPACES, measure_solution
    from ..tables import write_csv

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
    from ..landscape import Plane, map_plane

    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    pl = Plane.load(plane)
    data, x, y = _landscape_data(job, settings["samples"])
    quantities = [reading_columns(settings).get(q, q) for q in MAP_KINDS[map_kind]]
    df = map_plane(lambda: build_model(panel["model"], num_classes=data.num_classes), pl, x, y,
                   quantities=quantities, batch_size=settings["batch_size"],
                   compact=settings["compact"], num_classes=data.num_classes,
                   joint_max_pairs=settings["joint_max_pairs"], seed=settings["noise_seed"],
                   per_layer=MAP_PER_LAYER[map_kind])
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
    from ..tables import write_csv

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

    from ..landscape import HESSIAN_SPACES, Plane, map_hessian
    from ..tables import write_csv

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
    from ..landscape import HESSIAN_SPACES, Plane, measure_solution
    from ..masks import Mask
    from ..tables import write_csv
    from ..training import Callback

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
    recipe = panel_recipe(panel, {"epochs": epochs, "batch_size": ft["batch_size"], "lr": ft["lr"],
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
