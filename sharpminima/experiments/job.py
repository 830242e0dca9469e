"""The skeleton every runner shares, and the final numbers of a trained run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from .. import data as data_mod
from ..masks import sparsity_report
from ..provenance import (Timer, atomic_write_json, fingerprint,
                         fingerprint_diff, provenance)
from ..training import Recipe, evaluate, resolve_device

_log = logging.getLogger(__name__)


def load_panel_data(panel: dict, data_dir, split_path, device) -> data_mod.PanelData:
    return data_mod.panel_data(
        panel["dataset"], data_dir, split_path, device=device,
        train_samples=panel.get("train_samples"), val_samples=panel.get("val_samples"),
        test_samples=panel.get("test_samples"),
    )


def panel_recipe(panel: dict, cfg: dict, where: str) -> Recipe:
    """A recipe block of the panel, computed as the workflow's ``compact_training`` says
    (passed in the panel's settings; a recipe may not set it itself: one switch per run)."""
    if "compact_training" in cfg:
        raise ValueError(f"{where}.compact_training: set it once, at the top level of the config")
    return Recipe.from_dict({**cfg, "compact_training": panel.get("compact_training", "auto")}, where=where)


def setup(panel: dict, device_spec: str, threads: int | None):
    """Threads, device and allocator of a job, said in its log."""
    from ..landscape import tune_malloc

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


def budget_free(settings):
    """``settings`` with every recipe's ``epochs`` left out (a recipe: a mapping with ``epochs``,
    ``batch_size`` and ``lr``)."""
    if isinstance(settings, dict):
        recipe = {"epochs", "batch_size", "lr"} <= set(settings)
        return {k: budget_free(v) for k, v in settings.items() if not (recipe and k == "epochs")}
    if isinstance(settings, list):
        return [budget_free(v) for v in settings]
    return settings


def run_fingerprint(panel: dict, data_dir, split_path, settings: dict, *, extends: bool = False,
                    **files) -> dict:
    """The fingerprint of a job's resumable state: the panel's settings (data sizes included)
    and the job's own ``settings``, the split file, the data set's manifest (its files' md5s)
    and any other input ``files`` (the snapshot or dense model a job starts from).
    ``extends``: the job is one training that may resume under another epoch budget, so the
    recipes' epochs are left out (the engine checks the budget against its checkpoint,
    ``training.Trainer.differences``); not for a job whose finished parts depend on it (IMP's
    rounds, a retraining's finished seeds)."""
    manifest = Path(data_dir) / f"{panel['dataset']}.manifest.json"
    inputs = {"split": split_path, **({"manifest": manifest} if manifest.exists() else {}), **files}
    own = {"panel": panel, **settings}
    return fingerprint(budget_free(own) if extends else own, inputs)


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

    def fingerprint(self, settings: dict, *, extends: bool = False, **files) -> dict:
        return run_fingerprint(self.panel, self.data_dir, self.split_path, settings, extends=extends, **files)

    def own_state(self, state_dir, fp: dict) -> Path:
        """The folder of the job's resumable state, holding only state of the run ``fp``
        describes (:func:`own_state_dir`)."""
        self.state_dir = Path(state_dir)
        own_state_dir(self.state_dir, fp)
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


def own_state_dir(state_dir: Path, fp: dict) -> None:
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


def run_summary(trainer, data, recipe) -> dict:
    """Final numbers of a trained (possibly masked) model: the weights its selection chose."""
    return {**final_metrics(trainer, data, recipe), **sparsity_report(trainer.model),
            "epochs": trainer.epoch}


