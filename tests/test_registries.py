"""Each list of a kind is defined once, in the library: where the config schema names the
same values (it must, to reject a typo before any job), its enum is exactly the library's list.
Data sets and the landscape figures are read by the rules from the registry itself."""

from pathlib import Path

import pytest
import yaml

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[1] / "schemas/config.schema.yaml").read_text())


def _resolve(node):
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].removeprefix("#/$defs/")]
    return node


def _enum(*path):
    node = SCHEMA
    for key in path:
        node = node[key]
    node = _resolve(node)
    return node["enum"] if "enum" in node else _resolve(node["items"])["enum"]


def _registries():
    from sharpminima.hessian import SOLVERS
    from sharpminima.landscape import HESSIAN_SPACES
    from sharpminima.models import config_models
    from sharpminima.pruning import METHODS
    from sharpminima.psp import PSP_NORM_READINGS, SECOND_ORDER
    from sharpminima.training import SELECTIONS

    from sharpminima.gradual import GRADUAL_METHODS

    landscape = ("properties", "landscape", "properties")
    return [
        (("properties", "gradual_methods"), GRADUAL_METHODS),
        (("properties", "retrain_masks_of"), GRADUAL_METHODS),
        (("$defs", "panel", "properties", "gradual_methods"), GRADUAL_METHODS),
        ((*landscape, "methods"), GRADUAL_METHODS),
        (("$defs", "panel", "properties", "model"), config_models()),
        (("properties", "methods"), METHODS),
        (("properties", "selection"), SELECTIONS),
        ((*landscape, "entropy2"), SECOND_ORDER),
        ((*landscape, "psp_norm"), PSP_NORM_READINGS),
        ((*landscape, "hessian", "properties", "space"), HESSIAN_SPACES),
        ((*landscape, "hessian", "properties", "solver"), SOLVERS),
    ]


def test_the_torch_free_copy_of_the_selection_rules_is_the_engines():
    from sharpminima import tables
    from sharpminima.training import SELECTIONS

    assert tables.SELECTIONS == SELECTIONS


@pytest.mark.parametrize("index", range(11))
def test_the_schemas_enums_are_the_registries(index):
    path, registry = _registries()[index]
    assert sorted(_enum(*path)) == sorted(registry), path


def test_the_schemas_registry_parts_are_up_to_date():
    """The registry names, the gradual methods' blocks and a panel's method blocks are written
    from the registries (``python -m sharpminima.schema --write``)."""
    from sharpminima import schema

    text = schema.SCHEMA_FILE.read_text()
    assert schema.render(text) == text, f"schemas/config.schema.yaml is stale: run {schema.COMMAND}"


def test_a_registered_gradual_method_gets_its_schema_block_from_its_settings_class():
    """One more entry (IMP's module under another name): its name joins the gradual methods'
    enum, its block lists its settings with their types, defaults and constraints."""
    from sharpminima import gradual, schema

    entry = gradual.GradualMethod("imp_layerwise", "IMP (layerwise)", "sharpminima.imp", "IMPSettings", "ours",
                                  needs_block=False)
    gradual.register(entry)
    try:
        new = yaml.safe_load(schema.render(schema.SCHEMA_FILE.read_text()))
    finally:
        del gradual.GRADUAL_METHODS["imp_layerwise"]
    assert "imp_layerwise" in new["$defs"]["gradual_method"]["enum"]
    assert new["$defs"]["panel"]["properties"]["imp_layerwise"] == {"$ref": "#/$defs/imp_layerwise"}
    block = new["$defs"]["imp_layerwise"]
    assert block["properties"]["fraction"] == {**SCHEMA["$defs"]["imp"]["properties"]["fraction"]}
    assert block["properties"]["max_rounds"]["type"] == ["integer", "null"]
    assert "required" not in block and block["additionalProperties"] is False


def _out_of_bounds(prop):
    """A value the schema property ``prop`` refuses for each of its bounds and choices."""
    bad = {"minimum": lambda v: v - 1, "exclusiveMinimum": lambda v: v, "maximum": lambda v: v + 1,
           "exclusiveMaximum": lambda v: v, "enum": lambda v: "no-such-choice"}
    return [f(prop[k]) for k, f in bad.items() if k in prop]


def test_a_settings_class_refuses_exactly_what_its_schema_block_refuses():
    """A bound of a gradual method's setting is stated once (``settings.setting``): every value
    the config schema's block refuses, the settings class built in code refuses too, with an
    error naming ``<method>.<key>``; the values at the bounds pass both."""
    import jsonschema

    from sharpminima import gradual

    checked = 0
    for name in gradual.GRADUAL_METHODS:
        _, cls = gradual.load(name)
        props = SCHEMA["$defs"][name]["properties"]
        base = {k: props[k].get("minimum", 1) for k in SCHEMA["$defs"][name].get("required", [])}
        cls(**base)  # the bounds themselves pass
        for key, prop in props.items():
            for value in _out_of_bounds(prop):
                assert not jsonschema.Draft202012Validator(prop).is_valid(value), (name, key, value)
                with pytest.raises(ValueError, match=rf"^{name}\.{key}: found "):
                    cls(**{**base, key: value})
                checked += 1
    assert checked >= 12  # LOBSTER 6, IMP 5, GMP 7 when written


def test_every_gradual_method_has_its_settings_block_and_nothing_else_does():
    """A panel's block of a gradual method is named as the method (schema: one $defs entry
    per registered method, referenced from the panel)."""
    from sharpminima.gradual import GRADUAL_METHODS

    panel = SCHEMA["$defs"]["panel"]["properties"]
    blocks = {k for k, v in panel.items() if v.get("$ref") == f"#/$defs/{k}" and "properties" in SCHEMA["$defs"][k]}
    assert blocks == set(GRADUAL_METHODS)
    for name in GRADUAL_METHODS:
        assert panel[name]["$ref"] == f"#/$defs/{name}"


def test_data_sets_have_no_second_list():
    """The schema leaves data set names to the registry (config_checks checks them against
    it, before any job: common.smk calls it)."""
    assert "enum" not in SCHEMA["$defs"]["panel"]["properties"]["dataset"]
    root = Path(__file__).resolve().parents[1]
    common = (root / "rules/common.smk").read_text()
    assert "from sharpminima import config_checks" in common
    assert "from .datasets import DATASETS" in (root / "sharpminima/config_checks.py").read_text()
    assert "from sharpminima.paper_figures import" in common


def test_fig1_rows_have_a_role_from_the_registries():
    from sharpminima.retraining import RETRAINING_METHODS, role_of

    assert [role_of(m) for m in ("dense", "oneshot", "lobster", "imp", "snip")] == [
        "dense", "oneshot", "gradual", "gradual", "gradual"]
    assert all(role_of(m) == "retraining" for m in RETRAINING_METHODS)


def test_a_gradual_runs_budget_to_each_snapshot():
    """rewind_matched trains as many epochs as led to the snapshot: LOBSTER's and GMP's its
    weights' epoch; IMP's every earlier round whole, and its own round to its selected epoch."""
    from sharpminima.gradual import GRADUAL_METHODS

    lob = [{"event": 0, "epoch": 5}, {"event": 1, "epoch": 9}, {"event": 2, "epoch": 14}]
    assert GRADUAL_METHODS["lobster"].epochs_to(lob, 2) == 14
    imp = [{"event": r, "epoch": e, "round_epochs": 4} for r, e in enumerate([4, 3, 2])]
    assert GRADUAL_METHODS["imp"].epochs_to(imp, 0) == 4 and GRADUAL_METHODS["imp"].epochs_to(imp, 2) == 10
    assert GRADUAL_METHODS["gmp"].epochs_to([{"event": 3, "epoch": 3}], 3) == 3


@pytest.mark.parametrize("modules, heavy", [
    # Snakemake reads these at every invocation
    ("sharpminima.datasets, sharpminima.paper_figures, sharpminima.gradual, sharpminima.config_checks, "
     "sharpminima.retraining, sharpminima.paths, sharpminima.settings",
     "['torch', 'matplotlib']"),
    # the table, figure and claims jobs: no torch (~3 s of start-up per job)
    ("sharpminima.tables, sharpminima.figures, sharpminima.claims, sharpminima.provenance", "['torch']"),
])
def test_light_modules_import_nothing_heavy(modules, heavy):
    import subprocess
    import sys

    code = f"import sys, {modules}; print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
