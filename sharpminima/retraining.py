"""The registry of retraining methods: the only list of them.

A retraining method retrains the mask of a gradual run's snapshot (Fig. 1's baselines, and
the landscape's 1-S): where its weights start and which mask it trains are the two things
that tell the methods apart; the recipe is the panel's (``settings.retrain_recipe``).
One-shot pruning is a method of its own kind (``pruning.oneshot``: it prunes a dense model,
it retrains no snapshot's mask). Every row of Fig. 1's table has a *role*
(:func:`role_of`): ``dense``, ``gradual``, ``retraining`` or ``oneshot``.

Adding a retraining method is one :func:`register` call here, with a style in
``figures.METHOD_STYLE`` if its default one will not do (docs/architecture.md).

This module imports no torch, so that Snakemake reads it at no cost.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RETRAINING_METHODS", "RetrainingMethod", "register", "role_of", "ROLES",
           "FIG1_METHODS"]

#: where a retraining's weights start
STARTS = ("rewind", "fresh")
#: which mask it trains
MASKS = ("same", "random")
#: how long it trains
BUDGETS = ("recipe", "gradual")


@dataclass(frozen=True)
class RetrainingMethod:
    """One retraining method: its name (paths, config ``methods``, tables), a label, its
    source, where its weights start (``rewind``: the gradual run's rewind point; ``fresh``: a
    new initialisation seeded by the retraining seed) and which mask it trains (``same``: the
    snapshot's; ``random``: as many pruned entries per tensor, at random positions)."""

    name: str
    label: str
    reference: str
    start: str
    mask: str = "same"
    # "recipe": the panel's retraining recipe (settings.retrain_recipe); "gradual": the
    # gradual run's own recipe for as many epochs as led to the snapshot
    # (gradual.GradualMethod.epochs_to): a budget-matched baseline
    budget: str = "recipe"
    # one of the paper's Fig. 1 baselines (its claims compare LOBSTER with these)
    paper: bool = True

    def __post_init__(self):
        if self.start not in STARTS or self.mask not in MASKS or self.budget not in BUDGETS:
            raise ValueError(f"retraining method {self.name!r}: start must be one of {STARTS}, "
                             f"mask one of {MASKS} and budget one of {BUDGETS} (got "
                             f"{self.start!r}, {self.mask!r}, {self.budget!r})")


RETRAINING_METHODS: dict[str, RetrainingMethod] = {}


def register(method: RetrainingMethod) -> RetrainingMethod:
    if method.name in RETRAINING_METHODS or method.name in ("dense", "oneshot"):
        raise ValueError(f"retraining method {method.name!r} is registered already")
    RETRAINING_METHODS[method.name] = method
    return method


register(RetrainingMethod(
    "rewind", "Frankle & Carbin (rewind)",
    "Frankle & Carbin, 'The lottery ticket hypothesis', ICLR 2019", start="rewind"))
register(RetrainingMethod(
    "reinit", "Liu et al. (re-init)",
    "Liu et al., 'Rethinking the value of network pruning', ICLR 2019", start="fresh"))
register(RetrainingMethod(
    "random", "random pruning",
    "random masks with the same per-tensor counts (OpenLTH's layerwise random pruning)",
    start="fresh", mask="random"))

register(RetrainingMethod(
    "rewind_matched", "rewind, gradual's budget",
    "beyond the paper: rewinding (Frankle & Carbin) trained with the gradual run's own "
    "optimizer and number of epochs that led to the snapshot, Liu et al.'s Scratch-B idea "
    "(ICLR 2019): is the gradual method's advantage only its training budget?",
    start="rewind", budget="gradual", paper=False))

#: the roles of Fig. 1's rows
ROLES = ("dense", "gradual", "retraining", "oneshot")


def role_of(method: str) -> str:
    """A Fig. 1 row's role from its method's registry; a method no registry knows is a
    gradual method a user brought (drawn, not dropped)."""
    if method in ("dense", "oneshot"):
        return method
    return "retraining" if method in RETRAINING_METHODS else "gradual"


def fig1_methods() -> tuple[str, ...]:
    """The values of config ``methods``: every retraining method, and one-shot."""
    return (*RETRAINING_METHODS, "oneshot")


FIG1_METHODS = fig1_methods()
