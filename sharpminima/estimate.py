"""What a run costs, before it starts: jobs, samples to train and hours, per panel.

    python -m sharpminima.estimate --configfile presets/paper.yaml [--config key=value ...]
                                   [--jobs N] [--device auto|cpu|cuda] [--batches 20]

The configuration is read as Snakemake reads it from the repository's root: ``config.yaml``,
then each ``--configfile`` merged over it in order, key by key (``--configfile
presets/extended.yaml`` is layered on the default), then ``--config`` pairs. On the current device, a few training batches of each panel's model are
timed (plain SGD steps, LOBSTER steps, and the evaluation forward) on random inputs of the
data set's shape; every job's cost is its sample count times these per-sample times:

- dense: ``epochs x n_train`` training samples, and one validation pass per epoch;
- LOBSTER: ``epochs x n_train`` LOBSTER steps at most (a ``stop_at_sparsity`` may end it
  earlier: the estimate is then an upper bound), a validation pass per epoch, and the
  bisection of each pruning event (``bisection_steps`` validation passes per event; events
  are counted as one per ``pwe + 1`` epochs, an upper bound);
- IMP: its rounds (to the panel's highest target) times its recipe; GMP: its recipe; a test
  pass per target (the chosen snapshots);
- each retraining job (method x target): ``len(retrain_seeds)`` (the panel's own, else the
  top-level list) runs of the retraining
  recipe; each one-shot job: its fine-tuning recipe;
- each landscape (panel x gradual method): the map points (one forward pass over
  ``landscape.samples`` each), the Hessian (about 30 Hessian-vector products, each ~3 forward
  passes of ``hessian.samples``, per point), the rewind retrainings of its mask where Fig. 1
  does not retrain them, and (the paper's landscape) the probe;
- the feature analyses: a forward pass of every solution over their images.

Hours are given serially (one job at a time) and for ``--jobs N`` parallel jobs: the larger of
the work spread over N and the longest chain (dense -> LOBSTER -> the longest retraining
job -> the landscape). Measured against a real run in docs/reproduction.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
import yaml

from . import LOG_DATEFMT, LOG_FORMAT, quiet_logs
from .data import DATASETS
from .settings import gradual_seeds, retrained_seed, seeds_of
from .lobster import Lobster, LobsterSettings
from .imp import rounds_to_reach
from .models import build_model
from .training import Callback, Recipe, evaluate, resolve_device, train

_log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]


def merge_config(base: dict, more: dict) -> dict:
    """``more`` merged into ``base`` key by key at every level of mappings (Snakemake's
    ``update_config``); a value that is not a mapping replaces the old one whole."""
    for k, v in more.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge_config(base[k], v)
        else:
            base[k] = v
    return base


def load_config(configfiles=(), overrides=(), defaults=ROOT / "config.yaml") -> dict:
    """The configuration a run from the repository's root reads: ``defaults`` (the
    Snakefile's ``config.yaml``; None: none, as in a working directory without one), then each
    of ``configfiles`` merged in order key by key (Snakemake's ``update_config``), then
    ``key=value`` overrides (YAML values)."""
    cfg: dict = yaml.safe_load(Path(defaults).read_text()) if defaults is not None else {}
    for f in configfiles:
        merge_config(cfg, yaml.safe_load(Path(f).read_text()) or {})
    for kv in overrides:
        if "=" not in kv:
            raise ValueError(f"--config expects key=value, got {kv!r}")
        k, v = kv.split("=", 1)
        cfg[k] = yaml.safe_load(v)
    return cfg


@dataclass
class StepTimes:
    """Seconds per sample of one model on one device."""

    train: float  # a plain SGD step (forward + backward + update)
    lobster: float  # a LOBSTER step (the same plus its regularisation update)
    forward: float  # an evaluation forward pass


def _synthetic(shape, n, num_classes, device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, *shape, generator=g).to(device)
    y = torch.randint(0, num_classes, (n,), generator=g).to(device)
    empty = (x[:0], y[:0])
    return SimpleNamespace(train=(x, y), val=empty, test=empty, num_classes=num_classes)


def time_steps(model_name: str, dataset: str, batch_size: int, device, batches: int = 20,
               threads: int | None = None) -> StepTimes:
    """Per-sample times of ``batches`` training batches (after one warm-up epoch of the same
    size), with and without LOBSTER, and of the evaluation forward."""
    if threads:
        torch.set_num_threads(int(threads))
    spec = DATASETS[dataset]
    n = batch_size * batches
    data = _synthetic(spec.input_shape, n, spec.num_classes, device)
    augment = None
    if spec.augment:
        from .data import augment_batch

        augment = lambda xb, g: augment_batch(xb, g, fill=spec.fill)  # noqa: E731

    def run(lobster: bool) -> float:
        recipe = Recipe(epochs=2, batch_size=batch_size, lr=0.01, momentum=0.9)
        model = build_model(model_name, num_classes=spec.num_classes)
        callbacks = [Lobster(LobsterSettings(lmbda=1e-4, twt=0.05, pwe=10**6))] if lobster else []
        t_epoch = []

        class EpochClock(Callback):  # times each epoch
            def on_start(self, trainer):
                self.t = time.perf_counter()

            def after_epoch(self, trainer, record):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                now = time.perf_counter()
                t_epoch.append(now - self.t)
                self.t = now

        # the LOBSTER callback needs a validation loss: give it a tiny one
        if lobster:
            data.val = (data.train[0][:batch_size], data.train[1][:batch_size])
        with quiet_logs("sharpminima.training", "sharpminima.lobster"):  # no epoch lines
            train(model, data, recipe, seed=0, device=device, callbacks=[EpochClock(), *callbacks],
                  augment=augment, evaluate_test=False)
        data.val = (data.train[0][:0], data.train[1][:0])
        return t_epoch[-1] / n  # the second epoch: warm

    t_train, t_lobster = run(False), run(True)
    model = build_model(model_name, num_classes=spec.num_classes).to(device)
    evaluate(model, *data.train, 1000)  # warm-up
    t0 = time.perf_counter()
    evaluate(model, *data.train, 1000)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t_fwd = (time.perf_counter() - t0) / n
    return StepTimes(train=t_train, lobster=t_lobster, forward=t_fwd)


def _n(panel: dict, key: str, full: int) -> int:
    v = panel.get(key)
    return full if v is None else min(int(v), full)


def panel_jobs(name: str, panel: dict, cfg: dict, t: StepTimes) -> list[dict]:
    """Every job of one panel with its samples and estimated seconds."""
    spec = DATASETS[panel["dataset"]]
    val_fraction = cfg.get("val_fraction", 0.1)
    n_val_full = int(round(spec.n_train * val_fraction))
    n_train = _n(panel, "train_samples", spec.n_train - n_val_full)
    n_val = _n(panel, "val_samples", n_val_full)
    n_test = _n(panel, "test_samples", spec.n_test)
    seeds = seeds_of(cfg, panel)
    rseeds = panel.get("retrain_seeds") or cfg.get("retrain_seeds", [101, 102])
    methods = cfg.get("methods", ["rewind", "reinit", "random", "oneshot"])
    targets = panel["targets"]
    jobs = []

    def job(kind, epochs, runs=1, lobster=False, extra_fwd=0):
        samples = epochs * n_train * runs
        step = t.lobster if lobster else t.train
        fwd = (epochs * n_val + n_train + n_val + n_test) * runs + extra_fwd
        jobs.append({"panel": name, "job": kind, "samples": samples,
                     "seconds": samples * step + fwd * t.forward})

    gradual = panel.get("gradual_methods") or cfg.get("gradual_methods", ["lobster"])
    masks_of = [g for g in cfg.get("retrain_masks_of", ["lobster"]) if g in gradual]
    for seed in seeds:
        job("dense", panel["dense"]["epochs"])
        for g in gradual:
            if seed not in gradual_seeds(cfg, panel, g):
                continue
            block = panel.get(g) or {}
            e = (block.get("recipe") or panel["dense"])["epochs"]
            if g == "lobster":
                events = e // (int(block["pwe"]) + 1)
                job("gradual:lobster", e, lobster=True,
                    extra_fwd=events * int(block.get("bisection_steps", 20)) * n_val + len(targets) * n_test)
            elif g == "imp":  # rounds 0..r, each the recipe, a test pass per round
                rounds = rounds_to_reach(block.get("fraction", 0.2), max(float(x) for x in targets))
                if block.get("max_rounds") is not None:
                    rounds = min(rounds, int(block["max_rounds"]))
                job("gradual:imp", e, runs=rounds + 1)
            else:  # one run of the recipe (the chosen snapshots' test passes: below one epoch)
                job(f"gradual:{g}", e, extra_fwd=len(targets) * n_test)
        retrain_epochs = (panel.get("retrain") or panel["dense"])["epochs"]
        for m in methods:
            for _t in targets:
                if m == "oneshot":  # one per dense seed
                    job("oneshot", panel["oneshot_finetune"]["epochs"])
                elif seed == retrained_seed(cfg, panel):  # the first seed's masks only
                    for _g in masks_of:
                        job(f"retrain:{m}", retrain_epochs, runs=len(rseeds))
    return jobs


def landscape_jobs(cfg: dict, times: dict) -> list[dict]:
    """The landscape's jobs: per (panel, gradual method) of ``landscape`` the two maps and
    the Hessian; the points at every seed of G and 1-S; the probe once, on the paper's
    landscape (the first). The rewind retrainings of a method whose masks Fig. 1 does not
    retrain, and of every G seed but the first, are counted here too."""
    ls = cfg.get("landscape") or {}
    first = ls.get("panel", "lenet5_mnist")
    names = list(dict.fromkeys([first, *ls.get("panels", [])]))
    methods = ls.get("methods", ["lobster"])
    res = ls.get("resolution", [17, 11])
    samples = ls.get("samples", 2000)
    h = ls.get("hessian", {})
    hs, hres = h.get("samples", 1000), h.get("resolution", [5, 3])
    points = res[0] * res[1]
    hpoints = 2 * 2 + hres[0] * hres[1]  # G and 1-S in both spaces, and the map
    hvp = 30 * 3 * hs  # ~30 products of ~3 forward-equivalents each
    probe = ls.get("probe_epochs", 30)
    rows = []
    for name in names:
        if name not in cfg["panels"]:
            continue
        t, panel = times[name], cfg["panels"][name]
        n_train = _n(panel, "train_samples", DATASETS[panel["dataset"]].n_train)
        masks_of = cfg.get("retrain_masks_of", ["lobster"])
        rseeds = panel.get("retrain_seeds") or cfg.get("retrain_seeds", [101, 102])
        retrain_epochs = (panel.get("retrain") or panel["dense"])["epochs"]
        for m in methods:
            key = f"{name}/{m}"
            rows += [
                {"panel": name, "job": "plane_map:loss", "landscape": key, "samples": 0,
                 "seconds": points * samples * t.forward},
                {"panel": name, "job": "plane_map:psp", "landscape": key, "samples": 0,
                 "seconds": 2 * points * samples * t.forward},
                {"panel": name, "job": "hessian", "landscape": key, "samples": 0,
                 "seconds": hpoints * hvp * t.forward},
            ]
            g_seeds = gradual_seeds(cfg, name, m)
            n_sol = len(g_seeds) * (1 + len(rseeds))  # every seed of G and of 1-S, both spaces
            rows.append({"panel": name, "job": "landscape_points", "landscape": key, "samples": 0,
                         "seconds": n_sol * (3 * samples + 2 * 2 * h.get("batches", 1) * hvp) * t.forward})
            # 1-S: the rewind retrainings of each G seed's mask that Fig. 1 does not retrain
            n_t = len(panel["targets"]) if name != first or ls.get("target") is None else 1
            n_masks = len(g_seeds) - (1 if m in masks_of else 0)
            for _ in range(n_t * n_masks):
                s = retrain_epochs * n_train * len(rseeds)
                rows.append({"panel": name, "job": "retrain:rewind", "landscape": key,
                             "samples": s, "seconds": s * t.train})
        if name == first:
            rows.append({"panel": name, "job": "landscape_probe", "landscape": f"{name}/{methods[0]}",
                         "samples": probe * n_train,
                         "seconds": probe * n_train * t.train + 6 * 2 * hvp * t.forward})
    return rows


def feature_jobs(cfg: dict, times: dict) -> list[dict]:
    """The feature analyses (``features``): per panel of ``panels`` one similarity job, per
    pair one transfer job, each a forward pass of every solution over its images (the
    probes' logistic regressions, seconds each on a CPU, are not counted)."""
    f = cfg.get("features") or {}
    t = f.get("transfer") or {}
    rows = []

    def solutions(name: str) -> int:
        panel = cfg["panels"][name]
        seeds = len(seeds_of(cfg, name))
        gradual = panel.get("gradual_methods") or cfg.get("gradual_methods", ["lobster"])
        masks = [g for g in cfg.get("retrain_masks_of", ["lobster"]) if g in gradual]
        methods = cfg.get("methods", ["rewind", "reinit", "random", "oneshot"])
        rseeds = len(panel.get("retrain_seeds") or cfg.get("retrain_seeds", [101, 102]))
        retrain = sum(m != "oneshot" for m in methods) * len(masks) * rseeds
        return seeds * (1 + len(panel["targets"]) * (len(gradual) + retrain + ("oneshot" in methods)))

    for name in f.get("panels", []):
        n = solutions(name)
        rows.append({"panel": name, "job": "similarity", "samples": 0,
                     "seconds": n * f.get("samples", 2000) * times[name].forward})
    for name in (t.get("pairs") or {}):
        n = solutions(name)
        images = f.get("samples", 2000) + 2 * (t.get("train_samples", 2000) + t.get("test_samples", 2000))
        rows.append({"panel": name, "job": "transfer", "samples": 0, "seconds": n * images * times[name].forward})
    return rows


def estimate(cfg: dict, device, batches: int = 20, jobs: int = 1) -> dict:
    times, rows = {}, []
    for name, panel in cfg["panels"].items():
        t = time_steps(panel["model"], panel["dataset"], panel["dense"]["batch_size"], device,
                       batches=batches, threads=panel.get("threads"))
        times[name] = t
        _log.info(f"{name}: {panel['model']} on {device}: {1e6 * t.train:.1f} us/sample (SGD), "
                  f"{1e6 * t.lobster:.1f} (LOBSTER), {1e6 * t.forward:.1f} (forward)")
        rows += panel_jobs(name, panel, cfg, t)
    rows += landscape_jobs(cfg, times)
    rows += feature_jobs(cfg, times)
    per_panel = {}
    for r in rows:
        p = per_panel.setdefault(r["panel"], {"jobs": 0, "samples": 0, "seconds": 0.0, "chain": {}})
        p["jobs"] += 1
        p["samples"] += r["samples"]
        p["seconds"] += r["seconds"]
        kind = r["job"].split(":")[0]
        p["chain"][kind] = max(p["chain"].get(kind, 0.0), r["seconds"])
    total = sum(p["seconds"] for p in per_panel.values())
    chain = max(c["chain"].get("dense", 0) + c["chain"].get("gradual", 0)
                + max(c["chain"].get("retrain", 0), c["chain"].get("oneshot", 0))
                + sum(c["chain"].get(k, 0) for k in ("plane_map", "hessian", "landscape_probe"))
                for c in per_panel.values())
    return {
        "device": str(device), "jobs_parallel": jobs,
        "step_times_us": {k: {f: round(1e6 * getattr(v, f), 3) for f in ("train", "lobster", "forward")}
                          for k, v in times.items()},
        "panels": {k: {"jobs": v["jobs"], "samples": v["samples"], "hours": v["seconds"] / 3600}
                   for k, v in per_panel.items()},
        "total": {"jobs": sum(p["jobs"] for p in per_panel.values()),
                  "samples": sum(p["samples"] for p in per_panel.values()),
                  "hours_serial": total / 3600,
                  "hours_parallel": max(total / max(jobs, 1), chain) / 3600,
                  "hours_longest_chain": chain / 3600},
        "jobs": rows,
    }


def _fmt_h(h: float) -> str:
    return f"{h:.2f} h" if h >= 1 else f"{60 * h:.1f} min"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m sharpminima.estimate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--configfile", nargs="+", action="extend", default=[],
                    help="config files merged over config.yaml, in order")
    ap.add_argument("--config", nargs="*", default=[], help="key=value overrides")
    ap.add_argument("--jobs", type=int, default=1, help="parallel jobs (e.g. GPUs or cores / threads)")
    ap.add_argument("--device", default=None, help="auto|cpu|cuda (default: the config's)")
    ap.add_argument("--batches", type=int, default=20, help="training batches timed per model")
    ap.add_argument("--json", default=None, help="also write the estimate here")
    return ap


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt=LOG_DATEFMT)  # stderr
    cfg = load_config(a.configfile, a.config)
    device = resolve_device(a.device or cfg.get("device", "auto"))
    out = estimate(cfg, device, batches=a.batches, jobs=a.jobs)
    print(f"\n{'panel':<20} {'jobs':>5} {'samples':>14} {'serial':>10}")
    for k, v in out["panels"].items():
        print(f"{k:<20} {v['jobs']:>5} {v['samples']:>14,} {_fmt_h(v['hours']):>10}")
    t = out["total"]
    print(f"{'total':<20} {t['jobs']:>5} {t['samples']:>14,} {_fmt_h(t['hours_serial']):>10}")
    print(f"\non {out['device']}: {_fmt_h(t['hours_serial'])} one job at a time; "
          f"{_fmt_h(t['hours_parallel'])} with {a.jobs} parallel jobs "
          f"(longest chain {_fmt_h(t['hours_longest_chain'])})")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
