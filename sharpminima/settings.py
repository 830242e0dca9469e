"""Settings dataclasses built from config mappings, with errors that name the key at fault."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


def from_mapping(cls: type[T], d: Mapping[str, Any] | None, where: str) -> T:
    """``cls(**d)`` for a dataclass ``cls``; an unknown or missing key is a ValueError naming
    ``where`` (the config key the mapping came from) and the keys ``cls`` takes."""
    d = dict(d or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(names)}")
    try:
        return cls(**d)
    except TypeError as e:  # a missing required key
        raise ValueError(f"{where}: {e}") from None


# -- which seeds run what: the one place the workflow (rules/common.smk) and the records
#    (record.py) read it from


def seeds_of(cfg: Mapping[str, Any], panel: str | Mapping[str, Any]) -> list[int]:
    """A panel's seeds of its dense and gradual runs: its own ``seeds``, else the top-level
    (``panel``: its name in ``cfg["panels"]``, or its settings)."""
    p = cfg["panels"][panel] if isinstance(panel, str) else panel
    return list(p.get("seeds") or cfg.get("seeds") or [0])


def gradual_methods(cfg: Mapping[str, Any], panel: str | Mapping[str, Any]) -> list[str]:
    """A panel's gradual methods: its own ``gradual_methods``, else the top-level list."""
    p = cfg["panels"][panel] if isinstance(panel, str) else panel
    return list(p.get("gradual_methods") or cfg.get("gradual_methods") or ["lobster"])


def retrain_seeds(cfg: Mapping[str, Any], panel: str | Mapping[str, Any]) -> list[int]:
    """A panel's retraining seeds: its own ``retrain_seeds``, else the top-level list."""
    p = cfg["panels"][panel] if isinstance(panel, str) else panel
    return list(p.get("retrain_seeds") or cfg.get("retrain_seeds") or [])


def gradual_seeds(cfg: Mapping[str, Any], panel: str | Mapping[str, Any], method: str) -> list[int]:
    """The seeds a gradual method runs on a panel: the first ``seeds_per_method[method]`` of
    the panel's seeds (all when unset)."""
    seeds = seeds_of(cfg, panel)
    n = (cfg.get("seeds_per_method") or {}).get(method)
    return seeds[:n] if n else seeds


def retrained_seed(cfg: Mapping[str, Any], panel: str | Mapping[str, Any]) -> int:
    """The gradual seed whose snapshots Fig. 1's retrainings retrain (the first: the
    retrainings' own replicates are ``retrain_seeds``, as the paper retrains one run's masks)."""
    return seeds_of(cfg, panel)[0]


def retrain_targets(cfg: Mapping[str, Any], panel: str | Mapping[str, Any]) -> dict[str, list[float]]:
    """Whose masks Fig. 1's retrainings retrain on a panel, and at which of its targets:
    ``{gradual method: [target, ...]}``. The panel's own ``retrain_masks_of`` mapping if it
    has one, else the top-level list at every target; methods the panel does not run are left
    out."""
    p = cfg["panels"][panel] if isinstance(panel, str) else panel
    gradual = gradual_methods(cfg, p)
    own = p.get("retrain_masks_of")
    if own:
        pairs = {m: [float(t) for t in ts] for m, ts in own.items()}
    else:
        pairs = {m: [float(t) for t in p["targets"]] for m in cfg.get("retrain_masks_of") or ["lobster"]}
    return {m: ts for m, ts in pairs.items() if m in gradual and ts}


def gradual_recipe(panel: Mapping[str, Any], method: str) -> dict:
    """The recipe a gradual method trains with on a panel: the ``recipe`` of its block
    (``panels.<p>.<method>``), else the panel's dense recipe."""
    return dict((panel.get(method) or {}).get("recipe") or panel["dense"])


def retrain_recipe(panel: Mapping[str, Any], method: str, gradual: str | None = None) -> dict:
    """The recipe a retraining method (``retraining.RETRAINING_METHODS``) trains with on a
    panel: the ``recipe`` of its own block (``panels.<p>.<method>``), else the panel's
    ``retrain`` recipe, else the dense recipe (Liu et al.'s Scratch-E budget). A method whose
    budget is the gradual run's: the recipe of the ``gradual`` method whose mask it retrains
    (its epochs are set at run time to those that led to the snapshot)."""
    from .retraining import RETRAINING_METHODS

    if method in RETRAINING_METHODS and RETRAINING_METHODS[method].budget == "gradual":
        if gradual is None:
            raise ValueError(f"retrain_recipe: {method} trains with the gradual run's recipe: "
                             "name the gradual method")
        return gradual_recipe(panel, gradual)
    own = (panel.get(method) or {}).get("recipe")
    return dict(own or panel.get("retrain") or panel["dense"])


def method_targets(panel: Mapping[str, Any], method: str, targets) -> list[float]:
    """The targets a retraining method retrains at: its block's ``targets`` (a panel may run
    a costly method at some targets only), else all of ``targets``."""
    own = (panel.get(method) or {}).get("targets")
    ts = [float(t) for t in targets]
    return ts if own is None else [t for t in ts if t in {float(x) for x in own}]
