"""What a run costs, before it starts: jobs, samples to train and hours, per panel.

    python -m sharpminima.estimate --configfile presets/paper.yaml [--config key=value ...]
                                   [--targets results/figures/fig1a.pdf ...] [--remaining]
                                   [--jobs N] [--device auto|cpu|cuda] [--batches 20]
                                   [--repeats 3] [--masks-from results]

The jobs are Snakemake's own plan (:func:`plan`: a dry run of the same config files,
overrides and targets from the current directory; ``--remaining``: only what a resumed run
still has to do). The configuration is read as Snakemake reads it from the repository's root:
``config.yaml``, then each ``--configfile`` merged over it in order, key by key, then
``--config`` pairs. On the current device, the engine's training epoch over a few batches of
each planned panel's model is timed (plain SGD steps, LOBSTER steps, and the evaluation
forward; the median over fresh instances, each warmed up and timed once, in interleaved rounds
until the estimate is settled, at least ``--repeats`` of them: :class:`StepTimer`) on random inputs of the data set's shape, dense and at the masks
its masked jobs train with, computed as ``compact_training`` says (:class:`SparseTimes`: the
masks of a reference run given by ``--masks-from``, else dense, an upper bound). Each job's
cost is its sample counts times these per-sample times (:class:`Costs`), plus a start-up.

While it times, the share of the CPUs other processes take is measured; above 10 % the
estimate says so (its hours are then too high).

Hours are given serially (one job at a time) and for ``--jobs N`` parallel jobs: the larger of
the work spread over N and the longest chain (dense -> gradual -> the longest retraining
job -> the landscape). Measured against real runs in docs/reproduction.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import yaml

from . import LOG_DATEFMT, LOG_FORMAT, quiet_logs
from .data import DATASETS
from .gradual import settings_of as gradual_settings
from .paper_figures import MAP_PASSES
from .settings import (gradual_methods, gradual_recipe, gradual_seeds, retrain_recipe, retrain_seeds,
                       retrain_targets, seeds_of)
from .models import build_model
from .training import Recipe, evaluate, resolve_device

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
    """Seconds per sample of one model on one device (at one mask, or dense)."""

    train: float  # a plain SGD step (forward + backward + update)
    lobster: float  # a LOBSTER step (the same plus its regularisation update)
    forward: float  # an evaluation forward pass
    spread: float = 0.0  # (slowest - fastest) / fastest of the kept rounds, training step
    busy: float | None = None  # the largest share of the CPUs other processes used meanwhile
    multiply_add_ratio: float = 1.0  # of the compacted network (1: the dense path)
    rounds: int = 0  # rounds timed (fresh instances)
    kept: int = 0  # of them, those not set aside as busy


def _synthetic(shape, n, num_classes, device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, *shape, generator=g).to(device)
    y = torch.randint(0, num_classes, (n,), generator=g).to(device)
    empty = (x[:0], y[:0])
    return SimpleNamespace(train=(x, y), val=empty, test=empty, num_classes=num_classes)


#: the shortest timing window of one repeat (s)
MIN_REPEAT_SECONDS = 0.5
#: a set-up is timed in rounds until the standard error of its mean step is at most this
#: share of the mean: at least ``repeats`` rounds, and beyond them only while its rounds have
#: taken less than ``SETUP_SECONDS`` in all and number fewer than ``MAX_ROUNDS_PER_REPEAT``
#: x ``repeats`` (a LeNet-300 round takes ~1.7 s, a LeNet-5 one ~3.3 s, one thread). The host's
#: spells last tens of seconds: a set-up's rounds must outlast a few of them (at 20 s and 8 x 3
#: rounds, two estimates read LeNet-300 1.12x apart; docs/reproduction.md)
TARGET_STANDARD_ERROR = 0.025
SETUP_SECONDS = 60.0
MAX_ROUNDS_PER_REPEAT = 16
#: a round during which other processes took more than this share of the CPUs is set aside
BUSY_ROUND = 0.10


class StepTimer:
    """Times every training set-up an estimate needs, in interleaved rounds.

    Each set-up (:meth:`add`: a model at a batch size and thread count, dense or at a mask
    with its weights, compacted as ``compact`` says) is the engine's training epoch over
    ``batches`` batches of random inputs of the data set's shape (fewer where one such epoch
    takes over twice ``MIN_REPEAT_SECONDS``: ResNet-32's takes 11 s on a CPU, and a costly
    set-up needs rounds as much as a cheap one), with and without LOBSTER's update, and the
    evaluation forward. :meth:`run` times it in rounds; every round builds it
    afresh (model, trainers, inputs), warms it up once and times each kind for at least
    ``MIN_REPEAT_SECONDS``. Fresh instances because the step's speed can be a property of one
    instance: LeNet-300's step read anywhere from 22 to 35 us per sample in 30 fresh
    instances of one process (its allocations, we think), and stays there; a real job draws
    one instance, so the planning figure is the centre of the instances' times: their median
    (robust to the round a passing disturbance slowed, which the busy share does not always
    catch: one of ResNet-32's three rounds read 29 % slow in one estimate). Rounds go on, for
    the set-ups not yet settled, until the standard error of their mean is at most
    ``TARGET_STANDARD_ERROR`` of it (at
    least ``repeats`` rounds; more only within ``SETUP_SECONDS`` and
    ``MAX_ROUNDS_PER_REPEAT * repeats`` rounds): with one instance
    timed three times, two estimates a minute apart read LeNet-300 at 5.34 and 4.08 h
    (docs/reproduction.md). What rounds cannot remove is the host's own spells: LeNet-300's
    step on two threads, 48 rounds in one process on a quiet machine, wandered between 13 and
    34 us per sample in stretches of 10 to 20 rounds (tens of seconds; one thread: 18-30 us);
    hence the quartiles beside the median (:meth:`times`), and one thread per LeNet job in
    the paper preset (docs/reproduction.md). A round during which other processes took more than
    ``BUSY_ROUND`` of the CPUs is set aside (a busy host only slows a round) unless every
    round was busy. Interleaving spreads each set-up's rounds over the whole timing, so that a
    slow spell of the host hits every set-up alike. Identical set-ups (the same model, input
    shape, batch, threads and mask: LeNet-5 dense on MNIST and on Fashion-MNIST) are timed
    once. ``busy``: the largest share of the CPUs other processes took in a kept round."""

    KINDS = ("train", "lobster", "forward")

    def __init__(self, device, batches: int = 20, repeats: int = 3):
        self.device, self.batches, self.repeats = device, batches, repeats
        self.setups: dict = {}
        self.rounds: dict = {}  # key -> [(seconds per sample by kind, busy share)]
        self.spent: dict = {}  # key -> seconds its rounds took, building and warm-up included
        self.batches_of: dict = {}  # key -> batches per timed epoch (fewer for a costly set-up)
        self.ratios: dict = {}  # key -> multiply-add ratio of the path its training took
        self.results: dict = {}  # (key, quantile) -> StepTimes, once run

    def add(self, model_name: str, dataset: str, batch_size: int, threads: int | None = None,
            mask=None, state=None, compact: str = "auto", key=None, optimizer: str = "sgd"):
        """Register a set-up (once per ``key``; dense set-ups are keyed by what they compute)
        and return its key."""
        spec = DATASETS[dataset]
        if key is None:
            key = ("dense", model_name, spec.input_shape, spec.num_classes, spec.augment,
                   batch_size, threads, compact, optimizer)
        if key not in self.setups:
            self.setups[key] = dict(model_name=model_name, dataset=dataset, batch_size=batch_size,
                                    threads=threads, mask=mask, state=state, compact=compact,
                                    optimizer=optimizer)
        return key

    def _prepare(self, model_name, dataset, batch_size, threads, mask, state, compact, optimizer="sgd",
                 batches=None) -> dict:
        from .lobster import Lobster, LobsterSettings
        from .training import Trainer

        spec = DATASETS[dataset]
        n = batch_size * (batches or self.batches)
        data = _synthetic(spec.input_shape, n, spec.num_classes, self.device)
        augment = None
        if spec.augment:
            from .data import augment_batch

            augment = lambda xb, g: augment_batch(xb, g, fill=spec.fill)  # noqa: E731

        def trainer(lobster: bool):
            model = build_model(model_name, num_classes=spec.num_classes)
            if state is not None:
                model.load_state_dict(state)
            cbs = [Lobster(LobsterSettings(lmbda=1e-4, twt=0.05, pwe=10**6))] if lobster else []
            recipe = Recipe(epochs=1, batch_size=batch_size, lr=0.01, momentum=0.9 if optimizer == "sgd" else 0.0,
                            optimizer=optimizer, compact_training=compact)
            return Trainer(model, data, recipe, seed=0, device=self.device, mask=mask, callbacks=cbs,
                           augment=augment)

        plain, lob = trainer(False), trainer(True)
        def forward():  # through the compacted network where training computes through it
            fwd = plain.compaction.evaluator() if plain.compaction.net is not None else None
            return evaluate(plain.model, *data.train, 1000, forward=fwd)

        def ratio():  # known once a training epoch has decided the path
            info = plain.compaction.info or {}
            return info.get("multiply_add_ratio", 1.0) if info.get("compacted") else 1.0

        return {"n": n, "threads": timed_threads(threads),
                "fns": {"train": plain.train_epoch, "lobster": lob.train_epoch, "forward": forward},
                "ratio": ratio}

    def _run(self, fn, calls: int = 1) -> float:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    def _round(self, key, calls: dict) -> tuple[dict, float | None, float]:
        """One round of a set-up: built afresh, warmed up once per kind (the first round also
        fixes how many calls fill ``MIN_REPEAT_SECONDS``), then timed. Returns the seconds per
        sample by kind, the share of the CPUs others took meanwhile and the multiply-add ratio."""
        from .provenance import cpu_sample, others_fraction

        r = self._prepare(**self.setups[key], batches=self.batches_of.get(key))
        if r["threads"]:
            torch.set_num_threads(int(r["threads"]))
        for k, fn in r["fns"].items():
            once = self._run(fn)
            if k == "train" and key not in self.batches_of:  # the first round fixes the epoch's length
                self.batches_of[key] = self.batches
                if once > 2 * MIN_REPEAT_SECONDS and self.batches > 2:  # costly: shorter epochs, more rounds
                    self.batches_of[key] = max(2, math.ceil(self.batches * MIN_REPEAT_SECONDS / once))
                    return self._round(key, calls)
            calls.setdefault(k, max(1, math.ceil(MIN_REPEAT_SECONDS / max(once, 1e-6))))
        before, start = cpu_sample(), time.perf_counter()
        per_sample = {k: self._run(fn, calls[k]) / (r["n"] * calls[k]) for k, fn in r["fns"].items()}
        busy = others_fraction(before, cpu_sample(), time.perf_counter() - start)
        return per_sample, busy, r["ratio"]()

    def _kept(self, key) -> list[tuple[dict, float | None]]:
        rounds = self.rounds[key]
        quiet = [r for r in rounds if r[1] is None or r[1] <= BUSY_ROUND]
        return quiet or rounds

    def _settled(self, key) -> bool:
        kept = [t["train"] for t, _ in self._kept(key)]
        if len(kept) < max(self.repeats, 2):
            return False
        if self.spent[key] >= SETUP_SECONDS:
            return True
        return statistics.stdev(kept) / math.sqrt(len(kept)) <= TARGET_STANDARD_ERROR * statistics.mean(kept)

    def run(self) -> None:
        calls = {key: {} for key in self.setups}
        self.rounds = {key: [] for key in self.setups}
        self.spent = {key: 0.0 for key in self.setups}
        self.batches_of = {}
        with quiet_logs("sharpminima.training"):
            for _ in range(MAX_ROUNDS_PER_REPEAT * self.repeats):
                pending = [key for key in self.setups if not self._settled(key)]
                if not pending:
                    break
                for key in pending:
                    start = time.perf_counter()
                    per_sample, busy, self.ratios[key] = self._round(key, calls[key])
                    self.rounds[key].append((per_sample, busy))
                    self.spent[key] += time.perf_counter() - start
        self.results = {(key, 0.5): self._at(key, 0.5) for key in self.setups}

    def _at(self, key, q: float) -> StepTimes:
        kept = self._kept(key)
        centre = {k: float(np.quantile([t[k] for t, _ in kept], q)) for k in self.KINDS}
        train = [t["train"] for t, _ in kept]
        busy = [b for _, b in kept if b is not None]
        return StepTimes(**centre, spread=(max(train) - min(train)) / min(train), busy=max(busy) if busy else None,
                         multiply_add_ratio=self.ratios[key],
                         rounds=len(self.rounds[key]), kept=len(kept))

    def times(self, key, q: float = 0.5) -> StepTimes:
        """A set-up's times at quantile ``q`` of its kept rounds (0.5: the median, the planning
        figure; 0.25 and 0.75 bound the range the host's slow and fast spells gave)."""
        if (key, q) not in self.results:
            self.results[key, q] = self._at(key, q)
        return self.results[key, q]


@dataclass
class SparseTimes:
    """Step times of one model at the masks its masked jobs train with.

    The masks come from a reference run (``--masks-from``: a results directory, its seed-0
    LOBSTER run of the panel): every LOBSTER phase's mask, and the share of LOBSTER's epochs
    each phase took there (phases without a kept snapshot: the sparsest timed mask below);
    one-shot's are global magnitude masks of its dense model at each target. A retraining at a target trains the first LOBSTER mask at or above it; IMP's
    rounds and GMP's steps (other masks) are costed at the sparsest timed mask at or below
    their sparsity (an upper bound). Without a reference run every job but one-shot is
    costed dense (an upper bound)."""

    dense: StepTimes
    lobster_masks: list[tuple[float, StepTimes]]  # (pruned %, times), by sparsity
    magnitude_masks: list[tuple[float, StepTimes]]  # (target %, times) of the dense model
    phases: list[tuple[float, float]]  # LOBSTER: (share of the epochs, pruned %)
    # a recipe's (batch size, optimizer) -> its dense training step / the dense recipe's
    factors: dict = field(default_factory=dict)

    def factor(self, recipe: dict) -> float:
        """How much a training step of ``recipe`` costs against the dense recipe's, per
        sample (timed dense, applied at every mask: a smaller batch pays the per-step work
        over fewer samples; Adam's update costs more than SGD's)."""
        return self.factors.get(_step_kind(recipe), 1.0)

    def retrain(self, target: float) -> StepTimes:
        above = [(p, t) for p, t in self.lobster_masks if p >= float(target) - 1e-9]
        if above:
            return min(above, key=lambda pt: pt[0])[1]
        return self.at_most(target)

    def oneshot(self, target: float) -> StepTimes:
        return next((t for p, t in self.magnitude_masks if abs(p - float(target)) < 1e-9), self.at_most(target))

    def at_most(self, pct: float) -> StepTimes:
        below = [(p, t) for p, t in self.lobster_masks + self.magnitude_masks if p <= float(pct) + 1e-9]
        return max(below, key=lambda pt: pt[0])[1] if below else self.dense

    def over_phases(self) -> StepTimes:
        """The step times averaged over the reference run's LOBSTER phases, each weighted by
        the share of the epochs it took (no reference run: dense)."""
        if not self.phases:
            return self.dense
        avg = {k: sum(share * getattr(self.at_most(p), k) for share, p in self.phases)
               for k in ("train", "lobster", "forward")}
        return StepTimes(**avg)


def reference_masks(results: Path | None, panel_name: str):
    """``(phases, [(pruned %, state, mask)])`` of the seed-0 LOBSTER run of ``panel_name``
    under ``results``, or ``([], [])``."""
    from .masks import Mask

    if results is None:
        return [], []
    d = Path(results) / panel_name / "lobster" / "s0"
    if not (d / "snapshots.pt").exists() or not (d / "trajectory.json").exists():
        _log.warning(f"{panel_name}: no LOBSTER run under {d}: its masked jobs are costed dense")
        return [], []
    traj = json.loads((d / "trajectory.json").read_text())
    snaps = torch.load(d / "snapshots.pt", map_location="cpu", weights_only=False)
    total = max(1, int(traj["epochs"]))
    phases, masks = [], []
    for e in traj["events"]:
        span = int(e["final_epoch"]) - int(e["phase_start_epoch"])
        phases.append((span / total, float(e["pruned_params_pct"])))
        s = snaps.get(e["event"])
        if s is not None and e["pruned_params_pct"] > 0:
            masks.append((float(e["pruned_params_pct"]), s["state_dict"],
                          Mask({k: v.bool() for k, v in s["mask"].items()})))
    return phases, masks


def sparse_times(name: str, panel: dict, cfg: dict, timer: StepTimer, results: Path | None):
    """Register a panel's set-ups with ``timer``; returns the function that, once the timer
    has run, gives the panel's :class:`SparseTimes` at a quantile of the timed rounds
    (:meth:`StepTimer.times`; the recipes' step factors are ratios of medians)."""
    from .compact import trace_sequential
    from .pruning import magnitude_mask
    from .training import compacted_network

    spec = DATASETS[panel["dataset"]]
    base = _step_kind(panel["dense"])
    kw = dict(model_name=panel["model"], dataset=panel["dataset"], batch_size=base[0], optimizer=base[1],
              threads=panel.get("threads"), compact=cfg.get("compact_training", "auto"))
    dense = timer.add(**kw)
    others = {k: timer.add(**{**kw, "batch_size": k[0], "optimizer": k[1]})
              for k in {_step_kind(r) for r in _recipes(panel, cfg)} - {base}}

    def factors() -> dict:
        return {k: timer.times(key).train / timer.times(dense).train for k, key in others.items()}

    model = build_model(panel["model"], num_classes=spec.num_classes)
    if trace_sequential(model)[0] is None or kw["compact"] == "never":  # every masked job computes dense
        return lambda q=0.5: SparseTimes(timer.times(dense, q), [], [], [], factors())

    def masked(mask, state, key):
        """Timed where the job computes through the compacted network; where the run's rule
        keeps the dense path, the dense step's times (the same arithmetic but for the mask
        products, under 1 % of a LeNet step): timing it again would only add noise."""
        m_ = build_model(panel["model"], num_classes=spec.num_classes)
        m_.load_state_dict(state)
        if compacted_network(m_, mask, spec.input_shape, kw["compact"], timer.device)[0] is None:
            return dense
        return timer.add(**kw, mask=mask, state=state, key=(name, *key))

    phases, ref = reference_masks(results, name)
    lob = [(p, masked(m, st, ("lobster", p))) for p, st, m in ref]
    mag = []
    dense_model = None if results is None else Path(results) / name / "dense" / "s0" / "model.pt"
    if dense_model is not None and dense_model.exists():  # one-shot: the trained model's magnitudes
        for t in panel["targets"]:
            model.load_state_dict(torch.load(dense_model, map_location="cpu", weights_only=True))
            m = magnitude_mask(model, float(t) / 100.0)
            m.apply(model)
            mag.append((float(t), masked(m, {k: v.clone() for k, v in model.state_dict().items()},
                                         ("magnitude", float(t)))))
    return lambda q=0.5: SparseTimes(timer.times(dense, q), [(p, timer.times(k, q)) for p, k in lob],
                                     [(p, timer.times(k, q)) for p, k in mag], phases, factors())


def _step_kind(recipe: dict) -> tuple[int, str]:
    return int(recipe["batch_size"]), recipe.get("optimizer") or "sgd"


def _recipes(panel: dict, cfg: dict) -> list[dict]:
    """Every recipe a panel's training jobs train with: dense, each gradual method's, each
    retraining method's (per gradual method whose masks it retrains), one-shot's fine-tuning."""
    from .retraining import RETRAINING_METHODS

    out = [panel["dense"], panel["oneshot_finetune"], *(gradual_recipe(panel, g) for g in gradual_methods(cfg, panel))]
    out += [retrain_recipe(panel, m, g) for m in cfg.get("methods", []) if m in RETRAINING_METHODS
            for g in retrain_targets(cfg, panel)]
    return out


def _n(panel: dict, key: str, full: int) -> int:
    v = panel.get(key)
    return full if v is None else min(int(v), full)


def _sparse(t) -> SparseTimes:
    return t if isinstance(t, SparseTimes) else SparseTimes(t, [], [], [])


#: seconds a job spends before its work: the interpreter, torch's import (2.1 s of it), the
#: data (py-spy on a LeNet-5 one-shot job of the default run, docs/reproduction.md)
JOB_START_SECONDS = 2.5


def parse_plan(text: str) -> list[dict]:
    """The jobs of a Snakemake dry run's output, ``[{"rule", "wildcards"}]``, checked against
    its 'Job stats' total."""
    jobs, job = [], None
    for line in text.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            job = {"rule": m.group(1), "wildcards": {}}
            jobs.append(job)
            continue
        m = re.match(r"^\s+wildcards: (.*)$", line)
        if m and job is not None:
            job["wildcards"] = dict(kv.split("=", 1) for kv in m.group(1).split(", "))
    total = re.search(r"^total\s+(\d+)$", text, re.M)
    if total is None and jobs:
        raise ValueError("snakemake --dry-run printed jobs but no 'Job stats' total")
    if total is not None and int(total.group(1)) != len(jobs):
        raise ValueError(f"snakemake --dry-run: read {len(jobs)} jobs, its 'Job stats' say {total.group(1)}")
    return jobs


def plan(configfiles=(), overrides=(), targets=(), remaining: bool = False, cwd: Path | None = None) -> list[dict]:
    """Snakemake's own plan of a configuration: every job ``snakemake [targets]`` would run
    from ``cwd`` (default: the current directory) with these config files and overrides
    (``remaining``: only those its outputs still lack; else all, as from scratch). A dry run
    in a subprocess: the library never imports snakemake."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--dry-run", "--cores", "1",
           *map(str, targets)]
    if not remaining:
        cmd.append("--forceall")
    if configfiles:
        cmd += ["--configfile", *[str(Path(f).resolve()) for f in configfiles]]
    if overrides:
        cmd += ["--config", *overrides]
    proc = subprocess.run(cmd, cwd=cwd or Path.cwd(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"estimate: snakemake's dry run of this configuration failed:\n{proc.stdout[-4000:]}")
    return parse_plan(proc.stdout)


class Costs:
    """Each planned job's estimated seconds and training samples, from the configuration and
    the timed steps (``times``: panel -> :class:`SparseTimes` or :class:`StepTimes`):

    - ``train_dense``: its recipe's epochs over the training split, a validation pass each;
    - ``gradual``: the stretches its method trains (each method's ``work``, ``gradual.py``),
      each at its mask;
    - ``retrain``: ``len(retrain_seeds)`` runs of the method's recipe at the target's mask;
      ``oneshot``: its fine-tuning recipe at a magnitude mask of the target;
    - a training step of a recipe whose batch size or optimizer differs from the dense
      recipe's costs the dense one times :meth:`SparseTimes.factor` (measured dense);
    - the landscape: each map's points (``MAP_PASSES`` forward passes over ``landscape.samples``
      per point), the Hessian (about 30 Hessian-vector products of ~3 forward passes of
      ``hessian.samples`` per point), the points at every seed of G and 1-S, the probe;
    - the feature analyses: a forward pass of every solution over their images;
    - every job: ``JOB_START_SECONDS``."""

    def __init__(self, cfg: dict, times: dict):
        self.cfg, self.times = cfg, {k: _sparse(v) for k, v in times.items()}

    def sizes(self, panel: dict) -> tuple[int, int, int]:
        spec = DATASETS[panel["dataset"]]
        n_val = int(round(spec.n_train * self.cfg.get("val_fraction", 0.1)))
        return (_n(panel, "train_samples", spec.n_train - n_val), _n(panel, "val_samples", n_val),
                _n(panel, "test_samples", spec.n_test))

    def __call__(self, job: dict) -> dict:
        rule, wc = job["rule"], job["wildcards"]
        name = wc.get("panel")
        row = {"panel": name or "(tables, figures)", "job": rule, "wildcards": wc, "samples": 0,
               "seconds": 0.0 if rule == "all" else JOB_START_SECONDS}
        if name is None or rule not in self.RULES:
            return row
        samples, seconds = getattr(self, self.RULES[rule])(self.cfg["panels"][name], self.times[name], wc)
        row["job"] = f"{rule}:{wc['gradual']}" if rule == "gradual" else rule
        return {**row, "samples": samples, "seconds": row["seconds"] + seconds}

    RULES = {"train_dense": "dense", "gradual": "gradual", "retrain": "retrain", "oneshot": "oneshot",
             "plane_map": "plane_map", "hessian": "hessian", "landscape_points": "points",
             "landscape_probe": "probe", "similarity": "similarity", "transfer": "transfer"}

    def _train(self, panel, epochs, times: StepTimes, runs=1, step=None, val_passes=0, test_passes=0,
               final=True, factor=1.0, train_passes=0) -> tuple[int, float]:
        n_train, n_val, n_test = self.sizes(panel)
        samples = int(epochs) * n_train * runs
        fwd = (int(epochs) * n_val + val_passes * n_val + test_passes * n_test + train_passes * n_train
               + (n_train + n_val + n_test if final else 0)) * runs
        return samples, samples * factor * (times.train if step is None else step) + fwd * times.forward

    def dense(self, panel, st, wc):
        return self._train(panel, panel["dense"]["epochs"], st.dense)

    def gradual(self, panel, st, wc):
        module, settings = gradual_settings(panel, wc["panel"], wc["gradual"])
        recipe = gradual_recipe(panel, wc["gradual"])
        samples = seconds = 0
        for s in module.work(settings, recipe["epochs"], panel["targets"]):
            t = st.at_most(s.pruned_pct) if s.pruned_pct is not None else st.over_phases()
            a, b = self._train(panel, s.epochs, t, step=t.lobster if s.lobster_step else t.train,
                               val_passes=s.val_passes, test_passes=s.test_passes, final=s.final,
                               train_passes=s.train_passes,
                               factor=st.factor(recipe))
            samples, seconds = samples + a, seconds + b
        return samples, seconds

    def retrain(self, panel, st, wc):
        # a method with the gradual run's budget: at most the gradual recipe (events tell at run time)
        recipe = retrain_recipe(panel, wc["retraining"], wc["gradual"])
        return self._train(panel, recipe["epochs"], st.retrain(float(wc["target"])),
                           runs=len(retrain_seeds(self.cfg, panel)), factor=st.factor(recipe))

    def oneshot(self, panel, st, wc):
        recipe = panel["oneshot_finetune"]
        return self._train(panel, recipe["epochs"], st.oneshot(float(wc["target"])), factor=st.factor(recipe))

    def _landscape(self):
        ls = self.cfg.get("landscape") or {}
        h = ls.get("hessian") or {}
        return ls, h, 30 * 3 * h.get("samples", 1000)  # ~30 products of ~3 forward passes each

    def plane_map(self, panel, st, wc):
        ls, _, _ = self._landscape()
        res = ls.get("resolution", [17, 11])
        return 0, MAP_PASSES[wc["map_kind"]] * res[0] * res[1] * ls.get("samples", 2000) * st.dense.forward

    def hessian(self, panel, st, wc):
        _, h, hvp = self._landscape()
        hres = h.get("resolution", [5, 3])
        return 0, (2 * 2 + hres[0] * hres[1]) * hvp * st.dense.forward  # G and 1-S in both spaces, the map

    def points(self, panel, st, wc):
        ls, h, hvp = self._landscape()
        n_sol = len(gradual_seeds(self.cfg, wc["panel"], wc["gradual"])) * (1 + len(retrain_seeds(self.cfg, panel)))
        return 0, n_sol * (3 * ls.get("samples", 2000) + 2 * 2 * h.get("batches", 1) * hvp) * st.dense.forward

    def probe(self, panel, st, wc):
        ls, _, hvp = self._landscape()
        n_train = self.sizes(panel)[0]
        g_target = ls.get("target") or max(float(x) for x in panel["targets"])
        samples = ls.get("probe_epochs", 30) * n_train
        return samples, samples * st.retrain(g_target).train + 6 * 2 * hvp * st.dense.forward

    def _solutions(self, name: str) -> int:
        panel = self.cfg["panels"][name]
        masked = sum(len(ts) for ts in retrain_targets(self.cfg, name).values())  # (method, target) pairs
        methods = self.cfg["methods"]
        retrain = sum(m != "oneshot" for m in methods) * masked * len(retrain_seeds(self.cfg, panel))
        per_seed = 1 + len(panel["targets"]) * (len(gradual_methods(self.cfg, panel)) + ("oneshot" in methods))
        return len(seeds_of(self.cfg, name)) * per_seed + retrain

    def similarity(self, panel, st, wc):
        f = self.cfg.get("features") or {}
        return 0, self._solutions(wc["panel"]) * f.get("samples", 2000) * st.dense.forward

    def transfer(self, panel, st, wc):
        f = self.cfg.get("features") or {}
        t = f.get("transfer") or {}
        images = f.get("samples", 2000) + 2 * (t.get("train_samples", 2000) + t.get("test_samples", 2000))
        return 0, self._solutions(wc["panel"]) * images * st.dense.forward


def estimate(cfg: dict, device, planned: list[dict], batches: int = 20, jobs: int = 1, repeats: int = 3,
             masks_from: Path | None = None) -> dict:
    """Every job of ``planned`` (:func:`plan`) costed at the steps timed on ``device`` for
    the panels it names."""
    names = [n for n in cfg["panels"] if any(j["wildcards"].get("panel") == n for j in planned)]
    from .provenance import mm_gflops

    timer = StepTimer(device, batches, repeats)
    planned_times = {name: sparse_times(name, cfg["panels"][name], cfg, timer, masks_from) for name in names}
    speed = [mm_gflops()]
    timer.run()
    speed.append(mm_gflops())
    times = {}
    for name in names:
        panel = cfg["panels"][name]
        st = planned_times[name]()
        times[name], t = st, st.dense
        _log.info(f"{name}: {panel['model']} on {device}: {1e6 * t.train:.1f} us/sample (SGD), "
                  f"{1e6 * t.lobster:.1f} (LOBSTER), {1e6 * t.forward:.1f} (forward), dense; "
                  f"{t.kept} of {t.rounds} rounds kept, spread {100 * t.spread:.0f} %")
        for (batch, opt), f in st.factors.items():
            _log.info(f"{name}: a {opt} step at batch {batch}: {f:.2f} x the dense recipe's, per sample")
        for p, tm in st.lobster_masks + st.magnitude_masks:
            _log.info(f"{name}: at {p:.2f} %: {1e6 * tm.train:.1f} us/sample (SGD), multiply-adds "
                      f"{tm.multiply_add_ratio:.2f} of dense; {tm.kept} of {tm.rounds} rounds kept")
    cost = Costs(cfg, times)
    rows = [cost(j) for j in planned]
    # the same jobs at the timed rounds' quartiles: the range the host's spells give
    spells = {q: Costs(cfg, {name: planned_times[name](q) for name in names}) for q in (0.25, 0.75)}
    for q, c in spells.items():
        for r, j in zip(rows, planned):
            r[f"seconds_q{round(100 * q)}"] = c(j)["seconds"]
    per_panel = {}
    for r in rows:
        p = per_panel.setdefault(r["panel"], {"jobs": 0, "samples": 0, "seconds": 0.0, "q25": 0.0, "q75": 0.0,
                                              "chain": {}})
        p["jobs"] += 1
        p["samples"] += r["samples"]
        p["seconds"] += r["seconds"]
        p["q25"] += r["seconds_q25"]
        p["q75"] += r["seconds_q75"]
        kind = r["job"].split(":")[0]
        p["chain"][kind] = max(p["chain"].get(kind, 0.0), r["seconds"])
    total = sum(p["seconds"] for p in per_panel.values())
    chain = max(c["chain"].get("train_dense", 0) + c["chain"].get("gradual", 0)
                + max(c["chain"].get("retrain", 0), c["chain"].get("oneshot", 0))
                + sum(c["chain"].get(k, 0) for k in ("plane_map", "hessian", "landscape_probe"))
                for c in per_panel.values())
    return {
        "device": str(device), "jobs_parallel": jobs,
        # the machine's speed before and after the timing (torch.mm fp32 1024^2, 2 threads)
        "mm_gflops": [round(x, 1) for x in speed],
        "step_times_us": {k: {f: round(1e6 * getattr(v.dense, f), 3) for f in ("train", "lobster", "forward")}
                          for k, v in times.items()},
        "masked_step_times_us": {k: [{"pruned_pct": round(p, 3), "train": round(1e6 * tm.train, 3),
                                      "lobster": round(1e6 * tm.lobster, 3), "forward": round(1e6 * tm.forward, 3),
                                      "multiply_add_ratio": tm.multiply_add_ratio}
                                     for p, tm in v.lobster_masks + v.magnitude_masks] for k, v in times.items()},
        "busy": max((tm.busy for v in times.values()
                     for tm in [v.dense] + [x for _, x in v.lobster_masks + v.magnitude_masks]
                     if tm.busy is not None), default=None),
        "step_factors": {k: {f"batch {b}, {o}": round(f, 3) for (b, o), f in v.factors.items()}
                         for k, v in times.items()},
        "masks_from": None if masks_from is None else str(masks_from),
        "panels": {k: {"jobs": v["jobs"], "samples": v["samples"], "hours": v["seconds"] / 3600,
                       "threads": timed_threads(cfg["panels"].get(k, {}).get("threads")),
                       "hours_quartiles": [v["q25"] / 3600, v["q75"] / 3600]}
                   for k, v in per_panel.items()},
        "total": {"jobs": sum(p["jobs"] for p in per_panel.values()),
                  "hours_serial_quartiles": [sum(p["q25"] for p in per_panel.values()) / 3600,
                                             sum(p["q75"] for p in per_panel.values()) / 3600],
                  "samples": sum(p["samples"] for p in per_panel.values()),
                  "hours_serial": total / 3600,
                  "hours_parallel": max(total / max(jobs, 1), chain) / 3600,
                  "hours_longest_chain": chain / 3600},
        "jobs": rows,
    }


def timed_threads(threads: int | None) -> int | None:
    """The threads a job asking ``threads`` runs on here: at most this machine's cores, as
    Snakemake scales a rule's threads down to ``--cores`` (timing more would time
    oversubscription); None: torch's default."""
    return min(int(threads), os.cpu_count() or 1) if threads else None


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
    ap.add_argument("--repeats", type=int, default=3, help="the fewest timed rounds (fresh instances) per set-up; more until it settles")
    ap.add_argument("--masks-from", type=Path, default=None, metavar="RESULTS",
                    help="a run's results directory (e.g. the default run's): its seed-0 LOBSTER "
                         "masks stand for the masks the estimated jobs train with")
    ap.add_argument("--panels", nargs="+", default=None, help="estimate these panels only")
    ap.add_argument("--targets", nargs="+", default=[],
                    help="the run's targets (default: Snakemake's default target, every figure)")
    ap.add_argument("--remaining", action="store_true",
                    help="only the jobs whose outputs are missing or stale in the current directory "
                         "(a run to resume); default: every job, as from scratch")
    ap.add_argument("--json", default=None, help="also write the estimate here")
    return ap


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt=LOG_DATEFMT)  # stderr
    cfg = load_config(a.configfile, a.config)
    if a.panels:
        unknown = sorted(set(a.panels) - set(cfg["panels"]))
        if unknown:
            raise SystemExit(f"--panels: unknown panel(s) {unknown}; the config has {sorted(cfg['panels'])}")
        cfg["panels"] = {k: v for k, v in cfg["panels"].items() if k in a.panels}
    planned = plan(a.configfile, a.config, a.targets, a.remaining)
    if a.panels:
        planned = [j for j in planned if j["wildcards"].get("panel") in a.panels]
    device = resolve_device(a.device or cfg.get("device", "auto"))
    out = estimate(cfg, device, planned, batches=a.batches, jobs=a.jobs, repeats=a.repeats,
                   masks_from=a.masks_from)
    print(f"\n{'panel':<20} {'threads':>7} {'jobs':>5} {'samples':>14} {'serial':>10}   quartiles")
    for k, v in out["panels"].items():
        lo, hi = v["hours_quartiles"]
        threads = v["threads"] or ("all" if k in cfg["panels"] else "-")  # "-": the tables' and figures' jobs
        print(f"{k:<20} {threads:>7} {v['jobs']:>5} {v['samples']:>14,} {_fmt_h(v['hours']):>10}   "
              f"{_fmt_h(lo)} - {_fmt_h(hi)}")
    t = out["total"]
    lo, hi = t["hours_serial_quartiles"]
    print(f"{'total':<20} {'':>7} {t['jobs']:>5} {t['samples']:>14,} {_fmt_h(t['hours_serial']):>10}   {_fmt_h(lo)} - {_fmt_h(hi)}")
    print("(serial: at the median of each set-up's timed rounds; quartiles: at their lower and upper "
          "quartiles, the host's fast and slow spells)")
    print(f"\non {out['device']}: {_fmt_h(t['hours_serial'])} one job at a time; "
          f"{_fmt_h(t['hours_parallel'])} with {a.jobs} parallel jobs "
          f"(longest chain {_fmt_h(t['hours_longest_chain'])})")
    lo, hi = sorted(out["mm_gflops"])
    print(f"timed while torch.mm (fp32 1024^2, 2 threads) ran at {lo:.0f}-{hi:.0f} GFLOP/s: a CPU's speed moves "
          "from day to day; on a day it runs at S, expect these hours x that speed / S")
    if out["busy"] is not None and out["busy"] > 0.1:
        print(f"WARNING: other processes took up to {100 * out['busy']:.0f} % of the CPUs while the "
              "steps were timed: the hours above are too high; rerun on a quiet machine")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
