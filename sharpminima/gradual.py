"""The registry of gradual pruning methods: the only list of them.

A gradual method trains and prunes one network in one run and leaves a *trajectory*: a list
of snapshots (its events), each with its weights, its mask, its sparsity and its validation
metrics. Fig. 1 draws a curve per method from the snapshots, the retrainings (rewind /
re-init / random) retrain a snapshot's mask, the landscape is drawn around one. Every method
reads the same panel data and writes the same files (``experiments.train.run_gradual``), so that
every method is compared under the same rules.

Adding a method is one module and one :func:`register` call here (docs/architecture.md). The
module defines

- a settings dataclass (the panel's block of the same name as the method in config.yaml,
  without its ``recipe``), with ``from_dict(d, where)`` and ``to_dict()``, and
- ``run(model, data, recipe, settings, *, seed, device, checkpoint, on_snapshot, on_init,
  augment, fingerprint, targets, selection, done) -> GradualRun``:

  * ``model``: the network right after its seeded initialisation;
  * ``on_init(state)``: called once with the method's *rewind point* (for LOBSTER and GMP the
    initial weights; for IMP the weights it rewinds to), before any snapshot;
  * ``on_snapshot(snapshot)``: called each time a snapshot becomes final, with ``event`` (its
    index, increasing), ``state_dict``, ``mask`` (a ``masks.Mask``), ``epoch``, ``val_loss``,
    ``val_error`` and ``masks.sparsity_report``'s keys (``pruned_params_pct``, ...);
  * ``checkpoint``: a file the method may use to resume an interrupted run; ``done``: the
    snapshots emitted before an interruption (their files were written), in event order;
  * ``targets``: the panel's target sparsities (%), which a method may use to know when to
    stop; ``selection``: the workflow's selection rule (``training.SELECTIONS``).

- ``work(settings, epochs, targets) -> list[Stretch]``: what a run trains, stretch by stretch
  (epochs, at which sparsity, with which step), for ``python -m sharpminima.estimate`` to cost
  before the run.

This module imports no torch, so that Snakemake reads it at no cost.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["GRADUAL_METHODS", "PAPER_GRADUAL", "GradualMethod", "GradualRun", "Stretch", "register", "load",
           "settings_of"]

#: the paper's gradual method: the paper's claims are LOBSTER's, its Fig. 1 retrains LOBSTER's masks
PAPER_GRADUAL = "lobster"


@dataclass(frozen=True)
class GradualMethod:
    """One gradual pruning method: its name (paths, config keys, tables), a label for the
    figures, the module that implements it and the name of its settings class there."""

    name: str
    label: str
    module: str
    settings: str
    reference: str
    # the run depends on the panel's targets (IMP stops past the highest, GMP prunes to it)
    uses_targets: bool = True
    # the workflow's selection rule picks the snapshot weights (LOBSTER has its own rule)
    uses_selection: bool = True
    # a panel running the method must give its block (IMP's settings all have defaults)
    needs_block: bool = True
    # its snapshots are themselves rewound retrainings of their masks (IMP): a rewind
    # retraining of one differs from it by the data order (and recipe) only
    rewinds: bool = False
    # how many epochs of the method's recipe led to a snapshot: (the run's events, the
    # snapshot's event) -> epochs (the budget of retraining.RetrainingMethod budget "gradual")
    epochs_to: Callable[[list[dict], int], int] | None = None
    # a run under way may resume under a larger epoch budget (one training whose schedule does
    # not read the budget); not IMP, whose every round trains the recipe's epochs
    budget_extends: bool = True
    # the method's own config checks: (block, its recipe) -> problems, each "key: found ...;
    # expected ..." relative to the block (torch-free: Snakemake runs them before any job)
    validate: Callable[[dict, dict], list[str]] | None = None


@dataclass
class GradualRun:
    """What a gradual run returns: its snapshots' metadata (``events``: everything but the
    weights and the mask), the epochs it trained in all, its per-epoch history, and a short
    description of how each snapshot's weights were chosen."""

    events: list[dict]
    epochs: int
    history: list[dict] = field(default_factory=list)
    selection: str = ""


@dataclass(frozen=True)
class Stretch:
    """A stretch of a gradual run's training, as the estimate costs it: ``epochs`` of the
    recipe on the training split (one validation pass each) at the mask of ``pruned_pct``
    percent (0: dense; None: the masks of the phases of a reference run, each for the share of
    the epochs it took there), with LOBSTER's step or a plain one; ``val_passes``,
    ``train_passes`` and ``test_passes``: evaluations of each split beyond one validation
    pass per epoch; ``final``: the stretch
    ends with the run's final evaluation (training, validation and test splits)."""

    epochs: int
    pruned_pct: float | None = 0.0
    lobster_step: bool = False
    val_passes: int = 0
    test_passes: int = 0
    final: bool = True
    train_passes: int = 0


GRADUAL_METHODS: dict[str, GradualMethod] = {}


def register(method: GradualMethod) -> GradualMethod:
    if method.name in GRADUAL_METHODS:
        raise ValueError(f"gradual method {method.name!r} is registered already")
    GRADUAL_METHODS[method.name] = method
    return method


def load(name: str):
    """The method's module and settings class."""
    if name not in GRADUAL_METHODS:
        raise ValueError(f"unknown gradual method {name!r}; expected one of {sorted(GRADUAL_METHODS)}")
    m = GRADUAL_METHODS[name]
    module = importlib.import_module(m.module)
    return module, getattr(module, m.settings)


def settings_of(panel: dict, panel_name: str, name: str):
    """The method's module and its settings on a panel: the panel's block named after the
    method, without its ``recipe`` (that is ``settings.gradual_recipe``). The one reading of
    the block, for the run and for the estimate alike."""
    module, settings_cls = load(name)
    block = {k: v for k, v in (panel.get(name) or {}).items() if k != "recipe"}
    return module, settings_cls.from_dict(block, f"panels.{panel_name}.{name}")


def _epoch_of(events: list[dict], event: int) -> int:
    """LOBSTER and GMP train one run: the snapshot's weights are those of its ``epoch``."""
    return int(next(e for e in events if e["event"] == event)["epoch"])


def _imp_epochs(events: list[dict], event: int) -> int:
    """IMP retrains every round from its rewind point: the rounds before the snapshot's, each
    whole, and the snapshot's own round up to its selected epoch."""
    before = [e for e in events if e["event"] < event]
    return int(sum(e["round_epochs"] for e in before) + _epoch_of(events, event))


def _imp_checks(block: dict, recipe: dict) -> list[str]:
    if block.get("rewind_epoch", 0) > recipe["epochs"]:
        return [f"rewind_epoch: found {block['rewind_epoch']}; expected at most its recipe's "
                f"{recipe['epochs']} epochs"]
    return []


def _gmp_checks(block: dict, recipe: dict) -> list[str]:
    if block.get("end_epoch", 0) >= recipe["epochs"]:
        return [f"end_epoch: found {block['end_epoch']}; expected fewer than its recipe's "
                f"{recipe['epochs']} epochs (one epoch at least trains at the final sparsity)"]
    return []


register(GradualMethod(
    "lobster", "LOBSTER", "sharpminima.lobster", "LobsterSettings",
    "Tartaglione et al., Neural Networks 2022 (the method of the ICANN 2020 paper)",
    uses_targets=False, uses_selection=False, epochs_to=_epoch_of))
register(GradualMethod(
    "imp", "IMP (rewind)", "sharpminima.imp", "IMPSettings",
    "Frankle & Carbin, ICLR 2019; late rewinding: Frankle et al., ICML 2020",
    needs_block=False, rewinds=True, validate=_imp_checks, epochs_to=_imp_epochs, budget_extends=False))
register(GradualMethod(
    "gmp", "GMP (cubic)", "sharpminima.gmp", "GMPSettings",
    "Zhu & Gupta, 'To prune, or not to prune', 2017", validate=_gmp_checks, epochs_to=_epoch_of))
