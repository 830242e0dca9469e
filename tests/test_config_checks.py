"""The configuration's checks before any job (sharpminima/config_checks.py): each problem
names its key path, what was found and what was expected; no torch is imported."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from sharpminima.config_checks import rule_problems, schema_problems

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "schemas/config.schema.yaml").read_text())


@pytest.fixture
def config():
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    validate(cfg, str(REPO / "schemas/config.schema.yaml"))  # fills the defaults, as Snakemake
    return cfg


def test_the_default_config_has_no_problem(config):
    assert schema_problems(config, SCHEMA) == [] and rule_problems(config) == []


def test_schema_problems_name_the_key_and_what_was_expected(config):
    bad = copy.deepcopy(config)
    bad["panels"]["lenet300_mnist"]["dense"]["lrr"] = 0.1
    bad["selection"] = "best"
    problems = schema_problems(bad, SCHEMA)
    assert any(p.startswith("panels.lenet300_mnist.dense: unknown key(s) ['lrr']") for p in problems)
    assert any(p.startswith("selection: found 'best'; expected one of") for p in problems)


def test_a_setting_that_may_be_null_says_what_is_wrong_with_the_mapping(config):
    bad = copy.deepcopy(config)
    bad["landscape"]["probe_recipe"] = {"batch_size": 50, "lr": "fast"}
    assert schema_problems(bad, SCHEMA) == ["landscape.probe_recipe.lr: found 'fast'; 'fast' is not of type "
                                            "'number' (type 'number')"]


@pytest.mark.parametrize("edit,expected", [
    (lambda c: c.update(retrain_seeds=[0, 101]), "retrain_seeds: found [0, 101]; expected seeds other than"),
    (lambda c: c["panels"]["lenet300_mnist"]["gmp"].update(end_epoch=10),
     "panels.lenet300_mnist.gmp.end_epoch: found 10; expected fewer than its recipe's 10 epochs"),
    (lambda c: c["panels"]["lenet5_mnist"].update(imp={"rewind_epoch": 9}),
     "panels.lenet5_mnist.imp.rewind_epoch: found 9; expected at most its recipe's 4 epochs"),
    (lambda c: c["panels"]["lenet300_mnist"].update(retrain_masks_of={"imp": [50]}),
     "panels.lenet300_mnist.retrain_masks_of.imp: found [50]; expected a gradual method the panel runs"),
    (lambda c: c["panels"]["lenet300_mnist"].pop("gmp"), "panels.lenet300_mnist.gmp: missing; expected the settings of gmp"),
    (lambda c: c["landscape"].update(target=97), "landscape.target: found 97; expected one of the targets"),
    (lambda c: c["landscape"].update(resolution=[11, 7]), "landscape.resolution: found [11, 7]; expected [4k+1, odd]"),
    (lambda c: c["landscape"].update(resolution=[13, 8]), "landscape.resolution: found [13, 8]; expected [4k+1, odd]"),
    (lambda c: c["panels"]["lenet5_mnist"].update(dataset="svhn"), "panels.lenet5_mnist.dataset: found 'svhn'; expected one of"),
])
def test_each_rule_the_schema_cannot_say(config, edit, expected):
    edit(config)
    problems = rule_problems(config)
    assert any(p.startswith(expected) for p in problems), problems


def test_imp_needs_no_block_of_its_own(config):
    config["panels"]["lenet300_mnist"].pop("imp")
    assert rule_problems(config) == []


def test_the_checks_import_no_torch():
    code = "import sys, sharpminima.config_checks; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
