"""Settings dataclasses built from config mappings, with errors that name the key at fault."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping, TypeVar

import jsonschema

T = TypeVar("T")

_JSON_TYPES = {float: "number", int: "integer", str: "string", bool: "boolean"}


def setting(description: str, default: Any = dataclasses.MISSING, **schema) -> Any:
    """A field of a settings dataclass that describes itself: its ``description`` and its
    JSON-schema constraints (``minimum``, ``enum``, ...). ``python -m sharpminima.schema``
    writes a gradual method's block of ``schemas/config.schema.yaml`` from them, so that a
    method's keys are described in one place, its module."""
    return dataclasses.field(default=default, metadata={"description": description, "schema": schema})


def json_type(annotation):
    """The JSON-schema type of a setting's annotation: a scalar, or ``[scalar, "null"]`` for an
    optional one."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"{annotation}: a setting is one scalar type, optionally None")
        return [_JSON_TYPES[args[0]], "null"]
    return _JSON_TYPES[annotation]


def field_schemas(cls: type) -> dict[str, dict]:
    """Each :func:`setting` field of the dataclass ``cls`` and its JSON schema: the type of its
    annotation and the constraints of its ``setting(...)``. The config schema's block of a method
    (``schema.gradual_block``) and :func:`check_fields` both read it, so a bound is stated once."""
    hints = typing.get_type_hints(cls)
    return {f.name: {"type": json_type(hints[f.name]), **f.metadata["schema"]}
            for f in dataclasses.fields(cls) if "schema" in f.metadata}


def check_fields(obj: Any, where: str) -> None:
    """Every :func:`setting` field of the dataclass instance ``obj`` against its schema
    (:func:`field_schemas`): a ValueError naming ``where.<key>``, the value and what was
    expected. Settings built from the configuration were validated against the same schema
    already; this catches those built in code."""
    for name, schema in field_schemas(type(obj)).items():
        value = getattr(obj, name)
        err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
        if err is not None:
            raise ValueError(f"{where}.{name}: found {value!r}; {err.message}")


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


# -- what each job computes with, and which landscapes are drawn: the rules' params


DATA_KEYS = ("model", "dataset", "train_samples", "val_samples", "test_samples")


def job_settings(cfg: Mapping[str, Any], step: str, panel: str, gradual: str | None = None,
                 retraining: str | None = None) -> dict:
    """The settings of a panel that change the result of ``step`` (``dense``, ``gradual``,
    ``retraining``, ``oneshot``, ``landscape``) and nothing else, so that Snakemake's params
    rerun exactly the jobs a config change affects. ``gradual``: that method's block (its
    recipe, else the dense one, made explicit); ``retraining``: the method's recipe (of the
    ``gradual`` run whose mask it retrains, for a method with the gradual run's budget)."""
    from .retraining import RETRAINING_METHODS

    p = cfg["panels"][panel]
    out = {k: p[k] for k in DATA_KEYS}
    if step != "dense":  # a masked training computes through its compacted network or not
        out["compact_training"] = cfg["compact_training"]
    if step == "retraining":  # Scratch-E: the dense recipe unless one is given
        out["retrain"] = retrain_recipe(p, retraining, gradual)
        if RETRAINING_METHODS[retraining].budget == "gradual":
            # the job reads it as the gradual method's recipe (retrain_recipe)
            out[gradual] = {"recipe": out["retrain"]}
    elif step == "gradual":
        out[gradual] = {**(p.get(gradual) or {}), "recipe": gradual_recipe(p, gradual)}
    elif step in ("dense", "oneshot"):
        key = {"oneshot": "oneshot_finetune"}.get(step, step)
        out[key] = p[key]
    elif step != "landscape":  # the landscape needs the data settings only
        raise ValueError(f"job_settings: unknown step {step!r}")
    return out


def landscapes(cfg: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (panel, gradual method) whose landscape is drawn; the first is the paper's
    Fig. 2-4 (``landscape.panel``, ``landscape.methods[0]``)."""
    ls = cfg["landscape"]
    return list(dict.fromkeys((p, m) for p in [ls["panel"], *ls["panels"]] for m in ls["methods"]))


def landscape_settings(cfg: Mapping[str, Any]) -> dict:
    """What the landscape jobs compute with: not which landscapes are drawn (panels, methods),
    nor G's target and 1-S's seed (each plane's own params), so that adding a landscape
    reruns no other."""
    skip = ("panel", "panels", "methods", "target", "retrain_seed")
    return {k: v for k, v in cfg["landscape"].items() if k not in skip}


def landscape_target(cfg: Mapping[str, Any], panel: str) -> float | None:
    """The target of G: ``landscape.target`` on the paper's panel, else (None) the highest
    target the gradual run reached."""
    ls = cfg["landscape"]
    return ls["target"] if panel == ls["panel"] else None
