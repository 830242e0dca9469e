"""The configuration's checks, run before any job (``rules/common.smk`` stops on the first
problems it finds): the schema's errors in one line each, and the rules the schema cannot say.
Each problem names its key path first, then what was found and what was expected. A gradual
method's own checks live with its registry entry (``gradual.GradualMethod.validate``).

This module imports no torch, so that Snakemake reads it at no cost.
"""

from __future__ import annotations

from typing import Any, Mapping

from .datasets import DATASETS
from .gradual import GRADUAL_METHODS
from .retraining import RETRAINING_METHODS
from .settings import gradual_methods, gradual_recipe, retrain_seeds, seeds_of


def schema_problems(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """The schema's verdict in one line per error (key path, what was found, what was
    expected), instead of jsonschema's dump of the schema."""
    import jsonschema

    problems = []
    for e in sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(config),
        key=lambda e: [str(p) for p in e.absolute_path],
    ):
        if e.validator in ("oneOf", "anyOf") and e.context:
            # "null or a mapping": why not the branch of the value's own type (the deepest error)
            e = max(e.context, key=lambda c: (len(c.relative_path), c.validator != "type"))
        where = ".".join(map(str, e.absolute_path)) or "(top level)"
        if e.validator == "additionalProperties":
            allowed = sorted(e.schema.get("properties", {}))
            extra = sorted(set(e.instance) - set(allowed))
            problems.append(
                f"{where}: unknown key(s) {extra}; expected some of {allowed}"
            )
        elif e.validator == "uniqueItems":
            problems.append(f"{where}: found {e.instance!r}; expected distinct values")
        elif e.validator == "enum":
            problems.append(
                f"{where}: found {e.instance!r}; expected one of {e.validator_value}"
            )
        else:
            problems.append(
                f"{where}: found {e.instance!r}; {e.message} ({e.validator} {e.validator_value!r})"
            )
    return problems


def rule_problems(config: Mapping[str, Any]) -> list[str]:
    """The rules the schema cannot say, each problem naming its key path first."""
    problems = []
    if set(config["retrain_seeds"]) & set(config["seeds"]):  # a panel's own: below
        problems.append(
            f"retrain_seeds: found {config['retrain_seeds']}; expected seeds other "
            f"than seeds {config['seeds']} (a re-init with the LOBSTER run's own seed "
            "would be a rewind)"
        )
    owners = {}
    for name, p in config["panels"].items():
        own = seeds_of(config, name)
        if set(retrain_seeds(config, p)) & set(own):
            problems.append(
                f"panels.{name}.retrain_seeds: found {retrain_seeds(config, p)}; expected seeds "
                f"other than the panel's seeds {own}"
            )
        if p["dataset"] not in DATASETS:
            problems.append(
                f"panels.{name}.dataset: found {p['dataset']!r}; expected one of "
                f"{sorted(DATASETS)} (sharpminima/datasets.py registers them)"
            )
        for m in gradual_methods(config, p):
            if m not in GRADUAL_METHODS:
                problems.append(
                    f"panels.{name}.gradual_methods: found {m!r}; expected some of "
                    f"{sorted(GRADUAL_METHODS)} (sharpminima/gradual.py registers them)"
                )
            elif p.get(m) is None and GRADUAL_METHODS[m].needs_block:
                problems.append(
                    f"panels.{name}.{m}: missing; expected the settings of {m}, which "
                    f"the panel runs (gradual_methods {gradual_methods(config, p)})"
                )
        if p["figure"]:
            owners.setdefault(p["figure"], []).append(name)
        targets = [float(t) for t in p["targets"]]
        if len(set(targets)) != len(targets):
            problems.append(
                f"panels.{name}.targets: found {p['targets']}; expected distinct "
                "sparsities (each is one point of Fig. 1)"
            )
        for m in RETRAINING_METHODS:  # a retraining method's own block
            block = p.get(m) or {}
            if block.get("recipe") and RETRAINING_METHODS[m].budget == "gradual":
                problems.append(
                    f"panels.{name}.{m}.recipe: found a recipe; expected none ({m} trains with "
                    "the recipe and epochs of the gradual run whose mask it retrains)"
                )
            if not {float(t) for t in block.get("targets") or []} <= set(targets):
                problems.append(
                    f"panels.{name}.{m}.targets: found {block['targets']}; expected some of "
                    f"the panel's targets {p['targets']}"
                )
        for m, ts in (p.get("retrain_masks_of") or {}).items():
            if m not in gradual_methods(config, p) or not set(map(float, ts)) <= set(targets):
                problems.append(
                    f"panels.{name}.retrain_masks_of.{m}: found {ts}; expected a gradual "
                    f"method the panel runs ({gradual_methods(config, p)}) and some of its targets "
                    f"{p['targets']}"
                )
    for figure, names in owners.items():
        if len(names) > 1:
            problems.append(
                f"panels.{names[1]}.figure: found {figure!r}, the figure of panel "
                f"{names[0]} too; expected one panel per figure (or null)"
            )
    ls = config["landscape"]
    for i, lp in enumerate([ls["panel"], *ls["panels"]]):
        key = "landscape.panel" if i == 0 else f"landscape.panels[{i - 1}]"
        if lp not in config["panels"]:
            problems.append(
                f"{key}: found {lp!r}; expected one of the panels {sorted(config['panels'])}"
            )
            continue
        missing = [
            m for m in ls["methods"] if m not in gradual_methods(config, config["panels"][lp])
        ]
        if missing:
            problems.append(
                f"landscape.methods: found {missing} not run on panel {lp} (its "
                f"gradual_methods: {gradual_methods(config, config['panels'][lp])})"
            )
    if (
        ls["panel"] in config["panels"]
        and ls["target"] is not None
        and float(ls["target"])
        not in [float(t) for t in config["panels"][ls["panel"]]["targets"]]
    ):
        problems.append(
            f"landscape.target: found {ls['target']}; expected one of the targets of "
            f"panel {ls['panel']}: {config['panels'][ls['panel']]['targets']}"
        )
    res_a, res_b = ls["resolution"]
    if (res_a - 1) % 4 or res_b % 2 == 0:  # a in [-0.5, 1.5], b in [-1, 1] (landscape.make_plane)
        problems.append(
            f"landscape.resolution: found {ls['resolution']}; expected [4k+1, odd] (9, 13, 17, ... "
            "by 3, 5, 7, ...), so that G (a=0) and 1-S (a=1) are points of the grid"
        )
    feats = config["features"]
    for name in feats["panels"]:
        if name not in config["panels"]:
            problems.append(
                f"features.panels: found {name!r}; expected one of the panels "
                f"{sorted(config['panels'])}"
            )
    for name, dataset in feats["transfer"]["pairs"].items():
        where = f"features.transfer.pairs.{name}"
        if name not in config["panels"]:
            problems.append(
                f"{where}: found panel {name!r}; expected one of {sorted(config['panels'])}"
            )
        elif dataset not in DATASETS:
            problems.append(
                f"{where}: found {dataset!r}; expected one of {sorted(DATASETS)}"
            )
        else:
            own = DATASETS[config["panels"][name]["dataset"]]
            other = DATASETS[dataset]
            if other.input_shape != own.input_shape or dataset == own.name:
                problems.append(
                    f"{where}: found {dataset!r} (input {other.input_shape}); expected "
                    f"another data set of the panel's input shape {own.input_shape}"
                )
    if "rewind" not in config["methods"]:
        problems.append(
            f"methods: found {config['methods']}; expected 'rewind' among them (the "
            "landscape's 1-S is the rewind retraining)"
        )
    rs = ls["retrain_seed"]
    for lp in dict.fromkeys([ls["panel"], *ls["panels"]]):
        ls_seeds = retrain_seeds(config, config["panels"].get(lp, {}))
        if rs is not None and lp in config["panels"] and rs not in ls_seeds:
            problems.append(
                f"landscape.retrain_seed: found {rs}; expected one of the retraining seeds "
                f"{ls_seeds} of panel {lp}"
            )
    for name, p in config["panels"].items():  # each gradual method's own checks
        for m in gradual_methods(config, p):
            check = GRADUAL_METHODS[m].validate if m in GRADUAL_METHODS else None
            if check:
                block = p.get(m) or {}
                problems += [f"panels.{name}.{m}.{q}" for q in check(block, gradual_recipe(p, m))]
    return problems


def check(config: dict, schema_path, validate=None) -> None:
    """Every check before any job, in order: the schema's problems (one line each), then
    ``validate()`` (the workflow passes Snakemake's, which fills in the schema's defaults),
    then the rules the schema cannot say. Raises ValueError listing the problems, one per
    line, each naming its key path first."""
    import yaml

    with open(schema_path) as f:
        schema = yaml.safe_load(f)
    _stop_on(schema_problems(config, schema))
    if validate is not None:
        validate()
    _stop_on(rule_problems(config))


def _stop_on(problems: list[str]) -> None:
    if problems:
        raise ValueError("invalid configuration:\n" + "\n".join(f"  config: {p}" for p in problems))
