"""A reproduction record of one panel, as Markdown for docs/reproduction.md.

    python -m sharpminima.record --panel lenet300_mnist --configfile presets/paper.yaml \\
        [--config key=value ...] [--results results]

Reads what a finished run left in ``results/``: the metrics' provenance (code version,
device, library versions), the Snakemake benchmarks (wall time per rule), the panel's Fig. 1
points beside the paper's, and the panel's rows of the claims table (computed here from the
same files by :func:`claims.fig1_claims`, so a record can be written for a run that built
only that panel). Where the panel's landscape (Fig. 2-4) was drawn, a second section: its
samples, wall time per rule and its claims rows (:func:`claims.landscape_claims`: the
paper's colour-bar ranges beside G's and 1-S's values, G against 1-S).

A run that has not finished gets no record (the error names the runs it lacks); ``--progress``
says where it stands instead (:func:`progress`): its jobs done, under way and to do, each job
under way at its epoch and pace from its checkpoint, and what is left.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import statistics
import sys
from pathlib import Path

import pandas as pd

from . import LOG_DATEFMT, LOG_FORMAT
from . import paths
from .claims import PAPER_FIG1, Words, fig1_claims, gaps_from_probe, landscape_claims
from .gradual import GRADUAL_METHODS, PAPER_GRADUAL, settings_of
from .retraining import RETRAINING_METHODS
from .claims import _fmt  # one number format for the claims table and the records
from .lobster import PACE_EVENTS, projected_stop, pruning_events
from .paper_figures import MAP_KINDS
from .settings import gradual_methods, gradual_seeds, landscapes, retrain_seeds, seeds_of
from .estimate import load_config
from .tables import fig1_points


def rule_times(results: Path, panel: str) -> pd.DataFrame:
    """Wall time per rule of one panel (or of a folder under ``benchmarks/``, e.g. a
    landscape's ``landscape/<panel>/<method>``), from Snakemake's benchmark files."""
    rows = []
    for f in sorted((results / "benchmarks" / panel).rglob("*.tsv")):
        with open(f) as fh:
            r = next(csv.DictReader(fh, delimiter="\t"))
        rows.append({"rule": _rule_name(f.relative_to(results / "benchmarks" / panel).with_suffix("").parts),
                     "s": float(r["s"])})
    df = pd.DataFrame(rows, columns=["rule", "s"])
    return df.groupby("rule")["s"].agg(["count", "sum", "max"]).reset_index()


def _rule_name(parts: tuple[str, ...]) -> str:
    """A job's kind from its benchmark file's path under a panel's (or a landscape's) folder,
    suffix off: the folder, but a retraining's (``<gradual method>/<retraining method>/``,
    paths.RETRAINING) named by its method, and whose masks it retrained unless the paper's
    LOBSTER's."""
    if len(parts) > 2 and parts[1] in RETRAINING_METHODS:
        return parts[1] if parts[0] == PAPER_GRADUAL else f"{parts[1]} of {parts[0]}"
    return parts[0]


def _rule_time_lines(t: pd.DataFrame, what: str = "rule") -> list[str]:
    """The rows of :func:`rule_times` as a Markdown table (none without a benchmark)."""
    if not len(t):
        return []
    return ([f"| {what} | jobs | wall time, sum | longest job |", "|---|---|---|---|"]
            + [f"| {r.rule} | {int(r['count'])} | {r['sum'] / 60:.1f} min | {r['max'] / 60:.1f} min |"
               for _, r in t.iterrows()])


#: an epoch over this many times its job's median epoch is taken as paused (SIGSTOP while
#: something was timed) and counted at the median
PAUSED_EPOCH = 3.0


def _histories(node) -> list[list[dict]]:
    """Every training history (a list of epoch records) in a result file."""
    if isinstance(node, list):
        return [h for v in node for h in _histories(v)]
    if not isinstance(node, dict):
        return []
    own = [node["history"]] if isinstance(node.get("history"), list) else []
    return own + [h for k, v in node.items() if k != "history" for h in _histories(v)]


def _unpaused(times: list[float]) -> float:
    """The sum of epoch wall times, an epoch over :data:`PAUSED_EPOCH` times the median at
    the median."""
    if not times:
        return 0.0
    med = statistics.median(times)
    return sum(min(t, med) if t > PAUSED_EPOCH * med else t for t in times)


def run_times(est: dict, panel: str, results: Path, threads: int = 1) -> pd.DataFrame:
    """Each job of ``panel`` in an estimate (``python -m sharpminima.estimate --json``) beside
    the run's own times for it, one row per job whose benchmark file (``paths.BENCHMARKS``,
    filled with the job's wildcards) exists. A training job is timed by its epochs, every
    attempt's (a job resumed after a stop has the benchmark of its last attempt only):
    ``wall_s`` their wall times, an epoch over :data:`PAUSED_EPOCH` times the job's median
    counted at the median (paused); ``cpu_s`` their CPU time over the job's ``threads``
    (``epoch_cpu_s`` where the history records it; else the benchmark's, marked
    ``partial`` where the epochs outlasted it). Another job: its benchmark's wall time and CPU
    time over ``threads``. CPU time is what the estimate predicts for a job with a core of its
    own; wall time adds what other processes on the same cores took."""
    rows = []
    for j in est["jobs"]:
        rule = j["job"].split(":")[0]
        if j["panel"] != panel or rule not in paths.BENCHMARKS:
            continue
        rel = Path(paths.BENCHMARKS[rule].format(**j["wildcards"])).relative_to(paths.RESULTS)
        bench = results / rel
        if not bench.exists():
            continue
        with open(bench) as fh:
            b = next(csv.DictReader(fh, delimiter="\t"))
        folder = results / Path(*rel.parts[1:]).with_suffix("")  # the job's own folder
        hs = [h for f in (folder / "metrics.json", folder / "trajectory.json") if f.exists()
              for h in _histories(json.loads(f.read_text()))]
        epochs = [[float(r["epoch_time_s"]) for r in h if r.get("epoch_time_s") is not None] for h in hs]
        wall, cpu, partial = float(b["s"]), float(b["cpu_time"]) / max(threads, 1), False
        if any(epochs):
            wall = sum(_unpaused(e) for e in epochs)
            cpus = [float(r["epoch_cpu_s"]) for h in hs for r in h if r.get("epoch_cpu_s") is not None]
            if cpus:
                cpu = sum(cpus) / max(threads, 1)
            else:
                partial = sum(map(sum, epochs)) > 1.05 * float(b["s"])
        # named as rule_times names it: by its folder under the panel's (a landscape job: its step)
        kind = f"landscape {rel.stem}" if rel.parts[1] == "landscape" else _rule_name(rel.with_suffix("").parts[2:])
        rows.append({"kind": kind, "estimate_s": j["seconds"], "wall_s": wall,
                     "cpu_s": cpu, "partial": partial, "epochs": sum(map(len, epochs))})
    return pd.DataFrame(rows, columns=["kind", "estimate_s", "wall_s", "cpu_s", "partial", "epochs"])


def estimate_lines(est: dict, panel: str, results: Path, threads: int = 1) -> list[str]:
    """The estimate beside the run (:func:`run_times`), by job kind."""
    t = run_times(est, panel, results, threads)
    planned = [j for j in est["jobs"] if j["panel"] == panel and j["job"].split(":")[0] in paths.BENCHMARKS]
    if not len(t):
        return [f"The estimate made before the run ({len(planned)} jobs with a benchmark, "
                f"{sum(j['seconds'] for j in planned) / 3600:.2f} h one at a time): none of them finished yet."]
    lines = [f"The estimate made before the run ({len(planned)} jobs with a benchmark, "
             f"{sum(j['seconds'] for j in planned) / 3600:.2f} h one at a time) against the {len(t)} "
             f"finished (`record.run_times`: a training job's epochs, every attempt's, pauses out; CPU "
             f"over {threads} thread(s) a job):", "",
             "| job kind | jobs | estimate | real: wall | wall / estimate | real: CPU | CPU / estimate |",
             "|---|---|---|---|---|---|---|"]
    for kind, g in list(t.groupby("kind")) + ([("all finished", t)] if len(t) else []):
        e = g.estimate_s.sum()
        part = f" ({int(g.partial.sum())} partial)" if g.partial.any() else ""
        lines.append(f"| {kind} | {len(g)} | {e / 60:.1f} min | {g.wall_s.sum() / 60:.1f} min | "
                     f"{g.wall_s.sum() / e:.2f} | {g.cpu_s.sum() / 60:.1f} min{part} | {g.cpu_s.sum() / e:.2f} |")
    if t.partial.any():
        lines += ["", "partial: a resumed job whose epochs record no CPU time: its CPU is its last attempt's."]
    return lines


#: the file a finished job of each kind leaves in its folder (the rules' outputs)
_FINAL = {"dense": "metrics.json", "gradual": "trajectory.json", "retraining": "metrics.json",
          "oneshot": "metrics.json"}


def panel_jobs(cfg: dict, panel_name: str, results: Path) -> list[dict]:
    """Every training job a panel's figures need (Fig. 1's and its landscapes' G seeds and their
    rewinds), as ``{"what", "kind", "job", "folder", "done"}``: ``what`` dense, gradual,
    retraining or oneshot, ``kind`` as the rule-time table names it, ``job`` its folder under
    the panel's, ``folder`` under ``results`` (paths.py's patterns), ``done`` when its final
    file (``metrics.json``, ``trajectory.json``) is there."""
    at = lambda d: results / Path(d).relative_to(paths.RESULTS)  # noqa: E731
    folders = [("dense", d) for d in paths.dense_runs(cfg, panel_name)]
    folders += [("gradual", d) for d in paths.gradual_runs(cfg, panel_name)]
    folders += [("retraining", d) for d in paths.retraining_runs(cfg, panel_name)]
    for p, g in landscapes(cfg):
        if p == panel_name:
            for s in gradual_seeds(cfg, p, g):
                folders += [("retraining", d) for d in paths.landscape_runs(cfg, p, g, s)[1]]
    folders += [("oneshot", d) for d in paths.oneshot_runs(cfg, panel_name)]
    jobs, seen = [], set()
    for what, d in folders:
        if d in seen:
            continue
        seen.add(d)
        folder = at(d)
        parts = Path(d).relative_to(Path(paths.RESULTS) / panel_name).parts
        jobs.append({"what": what, "kind": _rule_name(parts), "job": "/".join(parts), "folder": folder,
                     "done": (folder / _FINAL[what]).exists()})
    return jobs


def job_state(folder: Path) -> dict | None:
    """Where a job under way stands, from the newest training checkpoint in its folder (the
    engine's, written atomically after every epoch): its epoch and budget, its epochs' median
    wall time over the last 20, its pruning events (LOBSTER's), and for a retraining over
    several seeds how many it finished (``seed<k>.pt``). None when no checkpoint is there."""
    import torch

    ckpts = sorted(folder.rglob("*.ckpt"), key=lambda f: f.stat().st_mtime)
    if not ckpts:
        return None
    state = torch.load(ckpts[-1], map_location="cpu", weights_only=False)
    h = state.get("history") or []
    times = [float(r["epoch_time_s"]) for r in h[-20:] if r.get("epoch_time_s") is not None]
    return {"epoch": int(state["epoch"]), "epochs": int(state["recipe"]["epochs"]),
            "epoch_s": statistics.median(times) if times else None,
            "events": pruning_events(h), "seeds_done": len(list(folder.rglob("seed*.pt"))),
            "updated": ckpts[-1].stat().st_mtime}


def progress(panel_name: str, cfg: dict, results: Path, estimate: dict | None = None,
             begun_only: bool = False) -> str:
    """The state of a panel's run under way, as Markdown: its training jobs done, under way
    (each at its epoch, pace and, for LOBSTER with a stop, its events and the epoch its recent
    pace projects the stop at, :func:`lobster.projected_stop`) and to do; with ``estimate``,
    the estimate beside the finished jobs and what it gives for those not started.
    ``begun_only``: nothing ("") for a panel none of whose jobs has begun."""
    import time as _time

    panel = cfg["panels"][panel_name]
    jobs = panel_jobs(cfg, panel_name, results)
    lines = [f"State of {panel_name}'s run at {_time.strftime('%Y-%m-%d %H:%M UTC', _time.gmtime())} "
             f"(`{results}`):", "", "| job kind | done | under way | to do |", "|---|---|---|---|"]
    states = {str(j["folder"]): (None if j["done"] else job_state(j["folder"])) for j in jobs}
    if begun_only and not any(j["done"] for j in jobs) and not any(states.values()):
        return ""
    for kind in dict.fromkeys(j["kind"] for j in jobs):
        js = [j for j in jobs if j["kind"] == kind]
        done = sum(j["done"] for j in js)
        going = sum(states[str(j["folder"])] is not None for j in js)
        lines.append(f"| {kind} | {done} | {going} | {len(js) - done - going} |")
    for method in [m for p, m in landscapes(cfg) if p == panel_name]:  # its steps, by their benchmarks
        wc = {"panel": panel_name, "gradual": method}
        benches = [paths.BENCHMARKS["plane_map"].format(map_kind=k, **wc) for k in MAP_KINDS] + [
            paths.BENCHMARKS[r].format(**wc) for r in ("hessian", "landscape_probe", "landscape_points")]
        done = [(results / Path(b).relative_to(paths.RESULTS)).exists() for b in benches]
        lines.append(f"| landscape of {method}'s G ({', '.join(Path(b).stem for b in benches)}) | "
                     f"{sum(done)} | | {len(done) - sum(done)} |")
    going = [(j, states[str(j["folder"])]) for j in jobs if states[str(j["folder"])] is not None]
    if going:
        lines += ["", "| under way | epoch | median epoch (last 20) | checkpoint | state |", "|---|---|---|---|---|"]
    n_seeds = len(retrain_seeds(cfg, panel_name))
    left_s = 0.0  # the jobs under way: what is left of each at its own pace
    for j, st in going:
        pace = st["epoch_s"] or 0.0
        note, end = [], st["epochs"]
        if j["what"] == "retraining" and n_seeds > 1:
            note.append(f"retraining seed {st['seeds_done'] + 1} of {n_seeds}")
            left_s += (n_seeds - st["seeds_done"] - 1) * st["epochs"] * pace
        if st["events"]:
            e, p = st["events"][-1]
            note.append(f"{len(st['events'])} pruning events, the last at epoch {e}: {p:.2f} % pruned")
        note.append(f"the budget's end in {(st['epochs'] - st['epoch']) * pace / 3600:.1f} h at this pace")
        stop = (getattr(settings_of(panel, panel_name, j["kind"])[1], "stop_at_sparsity", None)
                if j["what"] == "gradual" else None)
        if stop is not None:
            at_ = projected_stop(st["events"], stop)
            if at_ is not None:
                end = min(max(at_, st["epoch"]), st["epochs"])
                note.append(f"stop at {stop:g} %: epoch ~{at_:.0f} at the pace of its last {PACE_EVENTS} "
                            f"events, {(end - st['epoch']) * pace / 3600:.1f} h")
            else:
                note.append(f"stop at {stop:g} %: no pace yet (fewer than {PACE_EVENTS + 1} events)")
        left_s += (end - st["epoch"]) * pace
        updated = _time.strftime("%H:%M", _time.gmtime(st["updated"]))
        lines.append(f"| {j['job']} | {st['epoch']} of {st['epochs']} | {f'{pace:.1f} s' if pace else ''} | "
                     f"{updated} | {'; '.join(note)} |")
    if going:
        lines += ["", f"Left of the {len(going)} under way: {left_s / 3600:.2f} h at their own pace (a gradual "
                  f"run with a stop to its projected stop where it has a pace, else to its budget)."]
    if estimate is not None:
        lines += [""] + estimate_lines(estimate, panel_name, results, int(panel.get("threads") or 1))
        folders = {str(j["folder"]) for j, _ in going}
        todo = []
        for j in estimate["jobs"]:
            rule = j["job"].split(":")[0]
            if j["panel"] != panel_name or rule not in paths.BENCHMARKS:
                continue
            rel = Path(paths.BENCHMARKS[rule].format(**j["wildcards"])).relative_to(paths.RESULTS)
            if not (results / rel).exists() and str(results / Path(*rel.parts[1:]).with_suffix("")) not in folders:
                todo.append(j)
        lines += ["", f"Not started: {len(todo)} jobs, {sum(j['seconds'] for j in todo) / 3600:.2f} h one at a "
                  f"time at the estimate (a gradual job at its epoch budget: an upper bound)."]
    return "\n".join(lines) + "\n"


def first_event_lines(panel_name: str, cfg: dict, results: Path, data_dir: Path | None = None) -> list[str]:
    """Where LOBSTER's first event falls on a panel with the worsening measured on each split,
    beside the run's own first event and the paper's first point (:func:`lobster.first_event`),
    from each G seed's first snapshot (event 0, the dense phase's best weights: kept in
    ``snapshots.pt`` since the commit that added this). ``data_dir``: the run's data sets
    (default: the ``data_dir`` of the configuration beside ``results``)."""
    import torch

    from .experiments.job import load_panel_data
    from .lobster import first_event
    from .models import build_model

    panel = cfg["panels"][panel_name]
    if PAPER_GRADUAL not in gradual_methods(cfg, panel):
        return []
    _, settings = settings_of(panel, panel_name, PAPER_GRADUAL)
    paper = PAPER_FIG1.get((panel["model"], panel["dataset"]))
    at_pct = paper["sparsities"][:1] if paper else []
    data_dir = Path(data_dir) if data_dir else results.parent / cfg.get("data_dir", "resources/datasets")
    split = results / Path(paths.fill(paths.SPLIT, dataset=panel["dataset"])).relative_to(paths.RESULTS)
    data = load_panel_data(panel, data_dir, split, "cpu")
    names = {"twt val": f"TWT {settings.twt:g} on the validation loss", "twt train":
             f"TWT {settings.twt:g} on the training loss"} | {f"at {p:g}": "the paper's first point" for p in at_pct}
    lines = [f"{GRADUAL_METHODS[PAPER_GRADUAL].label}'s first event, from each G seed's dense-phase best weights "
             f"(event 0), by the run's threshold search ({settings.bisection_steps} halvings) with the worsening "
             f"measured on each split, and the paper's first point by global magnitude (`lobster.first_event`); "
             f"the run measured it on the `{settings.twt_split}` split:", "",
             "| G seed | where | pruned parameters (%) | pruned neurons (%) | validation loss | training loss |",
             "|---|---|---|---|---|---|"]
    for d in paths.gradual_runs(cfg, panel_name, PAPER_GRADUAL):
        folder = results / Path(d).relative_to(paths.RESULTS)
        traj = json.loads((folder / "trajectory.json").read_text())
        snaps = torch.load(folder / "snapshots.pt", map_location="cpu", weights_only=False)
        run_first = next((e for e in traj["events"] if e["event"] == 1), None)
        if run_first is not None:
            lines.append(f"| {traj['seed']} | the run's first event (epoch {run_first['epoch']}) | "
                         f"{_fmt(run_first['pruned_params_pct'])} | {_fmt(run_first['pruned_neurons_pct'])} | | |")
        if 0 not in snaps:
            lines.append(f"| {traj['seed']} | event 0's weights not kept (a run from before they were) | | | | |")
            continue
        model = build_model(panel["model"], num_classes=data.num_classes)
        model.load_state_dict(snaps[0]["state_dict"])
        for r in first_event(model, data, settings, at_pct):
            lines.append(f"| {traj['seed']} | {names[r['where']]} | {_fmt(r['pruned_params_pct'])} | "
                         f"{_fmt(r['pruned_neurons_pct'])} | {r['val_loss_rise_pct']:+.2f} % | "
                         f"{r['train_loss_rise_pct']:+.2f} % |")
    return lines


def missing_inputs(cfg: dict, panel_name: str, results: Path) -> list[Path]:
    """The dense metrics and gradual trajectories a panel's record needs and ``results`` lacks."""
    return [j["folder"] / _FINAL[j["what"]] for j in panel_jobs(cfg, panel_name, results)
            if j["what"] in ("dense", "gradual") and not j["done"]]


def record(panel_name: str, cfg: dict, results: Path, estimate: dict | None = None,
           first_event: bool = False, data_dir: Path | None = None) -> str:
    panel = cfg["panels"][panel_name]
    missing = missing_inputs(cfg, panel_name, results)
    if missing:
        raise FileNotFoundError(
            f"{panel_name} is not finished under {results}: {len(missing)} dense or gradual "
            f"run(s) have no result yet ({', '.join(map(str, missing[:3]))}{', ...' if len(missing) > 3 else ''}); "
            f"--progress reports a run under way")
    seeds = seeds_of(cfg, panel_name)
    methods = cfg["methods"]
    # the run's folders as the workflow names them (paths.py), under this results folder
    at = lambda d: results / Path(d).relative_to(paths.RESULTS)  # noqa: E731
    dense = [at(d) / "metrics.json" for d in paths.dense_runs(cfg, panel_name)]
    gradual = gradual_methods(cfg, panel)
    trajs = [at(d) / "trajectory.json" for d in paths.gradual_runs(cfg, panel_name)]
    runs = [at(d) / "metrics.json"
            for d in paths.retraining_runs(cfg, panel_name) + paths.oneshot_runs(cfg, panel_name)]
    runs = [p for p in runs if p.exists()]
    methods = [*[g for g in gradual if g != PAPER_GRADUAL], *methods]
    points = fig1_points(panel_name, dense, trajs, runs)
    d0 = json.loads(dense[0].read_text())
    prov = d0["provenance"]
    lines = [f"- code version: `{prov.get('code_version')}`; device: {prov.get('device_description') or prov.get('device')}; "
             f"torch {prov.get('libraries', {}).get('torch')}; host `{prov.get('host')}`",
             f"- gradual methods {gradual}, seeds {seeds}; retraining seeds {retrain_seeds(cfg, panel_name)}; selection "
             f"`{cfg.get('selection', 'best_val')}`", ""]
    t = rule_times(results, panel_name)
    if len(t):
        lines += _rule_time_lines(t) + [f"| all | {int(t['count'].sum())} | {t['sum'].sum() / 60:.1f} min | |", ""]
    if estimate is not None:
        lines += estimate_lines(estimate, panel_name, results, int(panel.get("threads") or 1)) + [""]
    paper = PAPER_FIG1.get((panel["model"], panel["dataset"]))
    lob = points[points.method == PAPER_GRADUAL].set_index("target")
    header = "| target | paper: sparsity / neurons | ours: LOBSTER sparsity / neurons | " + " | ".join(
        [PAPER_GRADUAL, *[m for m in methods]]) + " |"
    lines += ["Test error (%), mean ± std over seeds (n):", "", header,
              "|" + "---|" * (4 + len(methods))]
    dense_row = points[points.method == "dense"].iloc[0]
    lines.append(f"| dense | | | {_fmt(dense_row.test_error_mean)} (n={int(dense_row.n_seeds)}) |" + " |" * len(methods))
    for t_ in sorted(lob.index):
        ps = ""
        if paper:  # the paper's point at this target (the paper preset's targets are its points)
            j = min(range(len(paper["sparsities"])), key=lambda k: abs(paper["sparsities"][k] - t_))
            if abs(paper["sparsities"][j] - t_) < 0.5:
                ps = f"{paper['sparsities'][j]} / {paper['neurons'][j]}"
        r = lob.loc[t_]
        ours = (f"{_fmt(r.pruned_params_pct)} / {_fmt(r.pruned_neurons_pct)}" if r.reached
                else f"not reached (max {_fmt(r.max_reached)})")
        cells = []
        for m in [PAPER_GRADUAL, *methods]:
            q = points[(points.method == m) & (points.target == t_)
                       & ((points.masks_of == PAPER_GRADUAL) | points.masks_of.isna())]  # the paper's
            if not len(q) or not bool(q.iloc[0].reached):
                cells.append("")
                continue
            q = q.iloc[0]
            cells.append(f"{_fmt(q.test_error_mean)} ± {_fmt(q.test_error_std, 2)} (n={int(q.n_seeds)})"
                         if q.n_seeds > 1 else f"{_fmt(q.test_error_mean)} (n=1)")
        lines.append(f"| {t_:g} | {ps} | {ours} | " + " | ".join(cells) + " |")
    words = Words.from_dict(cfg.get("claims"))
    rows = fig1_claims(panel_name, panel, points, [json.loads(p.read_text()) for p in trajs], words,
                       cfg.get("preset", "?"), selection=cfg.get("selection", "best_val"))
    lines += _claims_lines(rows)
    if first_event:
        lines += [""] + first_event_lines(panel_name, cfg, results, data_dir)
    for method in [m for p, m in landscapes(cfg) if p == panel_name]:
        if (at(paths.fill(paths.LANDSCAPE, panel=panel_name, gradual=method)) / "points.csv").exists():
            lines += ["", landscape_record(panel_name, method, cfg, results)]
    return "\n".join(lines) + "\n"


def _claims_lines(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    return (["", "| claim | paper | ours (mean ± std, n) | effect [interval] | verdict | rule |",
             "|---|---|---|---|---|---|"]
            + [f"| {r['claim']} ({r['where']}) | {r['paper']} | {r['ours'] or ''} | {r['effect'] or ''} | "
               f"**{r['verdict']}** | {r['words'] or ''}{'; ' + r['note'] if r['note'] else ''} |" for r in rows])


def landscape_record(panel_name: str, method: str, cfg: dict, results: Path) -> str:
    """The landscape of ``method``'s G on a panel (Fig. 2-4 for the paper's): its samples,
    wall time per rule and claims rows, from the files its jobs left (``points.csv``, the
    plane's maps, and the training-length probe where it ran: the claims script's inputs)."""
    rel = Path(paths.fill(paths.LANDSCAPE, panel=panel_name, gradual=method)).relative_to(paths.RESULTS)
    d = results / rel
    meta = json.loads((d / "points.json").read_text())
    points = pd.read_csv(d / "points.csv")
    plane = json.loads((d / "plane.json").read_text())
    maps = {name: pd.read_csv(d / f"{name}.csv") for name in ("loss", "psp", "hessian_map")}
    maps["at"] = {"G": plane["g_index"], "1-S": plane["s_index"]}
    lp = cfg["landscape"]
    gaps = None  # the probe's explanations: the paper's landscape only, as in the claims table
    if (panel_name, method) == landscapes(cfg)[0] and (d / "probe.csv").exists():
        gaps = gaps_from_probe(pd.read_csv(d / "probe.csv"), lp["psp_norm"], lp["hessian"]["space"])
    label = GRADUAL_METHODS[method].label if method in GRADUAL_METHODS else method
    rows = landscape_claims(panel_name, cfg["panels"][panel_name], points, Words.from_dict(cfg.get("claims")),
                            cfg.get("preset", "?"), method=method, label=label, maps=maps, gaps=gaps)
    prov = meta.get("provenance", {})
    lines = [f"Landscape of {label}'s G at {_fmt(meta.get('target'))} % (`{rel}`): "
             f"{(points['solution'] == 'G').sum()} G and {(points['solution'] == '1-S').sum()} 1-S seeds; "
             f"{meta.get('n_samples')} samples for the loss and PSP, {meta.get('hessian_samples')} for the Hessian "
             f"({meta.get('hessian_batches')} batches, {meta.get('hessian_space')} space); code version "
             f"`{prov.get('code_version')}`", ""]
    lines += _rule_time_lines(rule_times(results, str(Path("landscape") / panel_name / method)), "landscape rule")
    return "\n".join(lines + _claims_lines(rows)) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sharpminima.record", description=__doc__.split("\n\n")[0])
    ap.add_argument("--panel", help="the panel (with --progress: default, every panel the run has begun)")
    ap.add_argument("--configfile", action="append", default=[])
    ap.add_argument("--config", nargs="*", default=[])
    ap.add_argument("--results", default="results")
    ap.add_argument("--estimate", help="the JSON of the estimate made before the run (python -m "
                    "sharpminima.estimate --json): set beside the run's own times, job by job")
    ap.add_argument("--png", help="also write the panel's Fig. 1 as a small PNG here (for docs/)")
    ap.add_argument("--first-event", action="store_true",
                    help="add where LOBSTER's first event falls under each split's loss beside the paper's "
                    "first point (forward passes over the training set: minutes at the paper's scale)")
    ap.add_argument("--data-dir", help="the run's data sets (default: the configuration's data_dir beside --results)")
    ap.add_argument("--progress", action="store_true",
                    help="the state of a run under way instead: jobs done, under way (epoch, pace, "
                    "LOBSTER's events and projected stop) and to do")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt=LOG_DATEFMT)  # stderr
    cfg = load_config(a.configfile, a.config)
    est = json.loads(Path(a.estimate).read_text()) if a.estimate else None
    if a.panel is not None and a.panel not in cfg["panels"]:
        ap.error(f"--panel {a.panel}: not a panel of this configuration ({', '.join(cfg['panels'])})")
    if a.progress:  # without --panel: every panel the run has begun (each checkpoint read once)
        states = [progress(p, cfg, Path(a.results), est, begun_only=a.panel is None)
                  for p in ([a.panel] if a.panel else cfg["panels"])]
        sys.stdout.write("\n".join(s for s in states if s))
        return 0
    if a.panel is None:
        ap.error("--panel is required for a record")
    try:
        sys.stdout.write(record(a.panel, cfg, Path(a.results), est, a.first_event, a.data_dir))
    except FileNotFoundError as e:
        ap.exit(2, f"{ap.prog}: error: {e}\n")
    if a.png:
        figure = cfg["panels"][a.panel]["figure"]
        small_png(Path(a.results) / Path(paths.FIGURES).relative_to(paths.RESULTS) / f"{figure}.png", Path(a.png))
    return 0


def small_png(src: Path, out: Path, width: int = 720, colours: int = 64) -> None:
    """A figure small enough to commit under docs/ (a record cites it): ``width`` pixels wide,
    ``colours`` colours (a line plot loses nothing visible; ~50 KB)."""
    from PIL import Image

    im = Image.open(src).convert("RGB")
    im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    out.parent.mkdir(parents=True, exist_ok=True)
    im.quantize(colours).save(out, optimize=True)


if __name__ == "__main__":
    sys.exit(main())
