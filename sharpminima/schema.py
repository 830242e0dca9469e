"""The parts of ``schemas/config.schema.yaml`` that the method registries define, written from them.

    python -m sharpminima.schema            # check: exit 1 and a diff where the file is stale
    python -m sharpminima.schema --write    # rewrite the generated parts in place

Snakemake validates the configuration against the schema file alone (``snakemake.utils.validate``
reads a path), so the file has to carry every method's block; this module writes those parts
between their marker comments, from the registries, so that adding a method stays one module
and one registry entry (docs/architecture.md):

- ``$defs`` holds each registry's names (``gradual_method``, ``method``: the retraining methods and
  one-shot, ``model``), which every list of such names in the file refers to, and a block per
  gradual method (``gradual.GRADUAL_METHODS``): its ``recipe`` and
  the fields of its settings dataclass, each with the type of its annotation, its default and
  the description and constraints of its :func:`settings.setting`;
- a panel's properties name a block per method: each gradual method's own, and the shared
  ``retraining`` block for each retraining method (``retraining.RETRAINING_METHODS``).

``tests/test_registries.py`` checks that the file is up to date. Everything else in it is
written by hand (the enums of the workflow's own choices, e.g. ``selection``, are checked
against the library's lists by the same test).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import sys
from pathlib import Path

import yaml

from . import gradual
from .retraining import RETRAINING_METHODS, fig1_methods
from .settings import field_schemas

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
COMMAND = "python -m sharpminima.schema --write"


def gradual_block(name: str) -> dict:
    """A gradual method's block: its recipe and its settings class's fields."""
    method = gradual.GRADUAL_METHODS[name]
    _, settings_cls = gradual.load(name)
    schemas = field_schemas(settings_cls)
    props = {"recipe": {"$ref": "#/$defs/recipe",
                        "description": "The recipe it trains with (omitted: the panel's dense recipe)."}}
    required = []
    for f in dataclasses.fields(settings_cls):
        if "description" not in f.metadata:
            raise TypeError(f"{settings_cls.__name__}.{f.name}: declare it with settings.setting(description, ...)")
        prop = dict(schemas[f.name])
        if f.default is dataclasses.MISSING:
            required.append(f.name)
        else:
            prop["default"] = f.default
        props[f.name] = {**prop, "description": f.metadata["description"]}
    module_file = method.module.replace(".", "/") + ".py"
    block = {"description": f"{method.label}, {method.reference} ({module_file}): the recipe it trains "
                            "with and its settings.",
             "type": "object", "additionalProperties": False}
    if required:
        block["required"] = required
    return {**block, "properties": props}


def _flow(d: dict) -> str:
    return yaml.safe_dump(d, default_flow_style=True, sort_keys=False, width=10**6).strip()


def defs_lines() -> list[str]:
    out = []
    for name in gradual.GRADUAL_METHODS:
        block = gradual_block(name)
        out.append(f"  {name}:")
        for key in ("description", "type", "additionalProperties", "required"):
            if key in block:
                out.append(f"    {_flow({key: block[key]})[1:-1]}")
        out.append("    properties:")
        out += [f"      {_flow({k: v})[1:-1]}" for k, v in block["properties"].items()]
        out.append("")
    return out[:-1]


def names_lines() -> list[str]:
    from .models import config_models

    names = {
        "gradual_method": (list(gradual.GRADUAL_METHODS), "A gradual pruning method (sharpminima/gradual.py)."),
        "method": (list(fig1_methods()), "A method compared with the gradual ones in Fig. 1: a retraining method "
                                       "(sharpminima/retraining.py) or oneshot."),
        "model": (config_models(), "A model (sharpminima/models.py)."),
    }
    return [f"  {_flow({k: {'type': 'string', 'enum': v, 'description': d}})[1:-1]}" for k, (v, d) in names.items()]


def panel_lines() -> list[str]:
    return ([f'      {name}: {{$ref: "#/$defs/{name}"}}' for name in gradual.GRADUAL_METHODS]
            + [f'      {name}: {{$ref: "#/$defs/retraining"}}' for name in RETRAINING_METHODS])


#: the generated regions: (the marker's text, the lines between its two markers)
REGIONS = {"registry names": names_lines, "gradual method blocks": defs_lines, "method blocks of a panel": panel_lines}


def render(text: str) -> str:
    """``text`` (the schema file) with every generated region written anew."""
    lines = text.split("\n")
    for region, make in REGIONS.items():
        begin = [i for i, line in enumerate(lines) if line.strip() == f"# >>> {region}: {COMMAND}"]
        end = [i for i, line in enumerate(lines) if line.strip() == f"# <<< {region}"]
        if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
            raise ValueError(f"{SCHEMA_FILE}: expected one '# >>> {region}: {COMMAND}' line, then one "
                             f"'# <<< {region}' line")
        lines = lines[:begin[0] + 1] + make() + lines[end[0]:]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sharpminima.schema", description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite the generated parts of the schema in place")
    ap.add_argument("--file", type=Path, default=SCHEMA_FILE)
    a = ap.parse_args(argv)
    text = a.file.read_text()
    new = render(text)
    if a.write:
        if new != text:
            a.file.write_text(new)
        print(f"{a.file}: {'written' if new != text else 'up to date'}")
        return 0
    if new != text:
        sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                                   str(a.file), f"{a.file} (from the registries)"))
        print(f"\n{a.file} is stale: run {COMMAND}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
