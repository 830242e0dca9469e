"""The conda environments cluster users run pin what pip installs here."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].lower()


def test_conda_envs_match_pyproject_pins():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {_name(d): d.replace(" ", "") for d in deps}
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        spec = yaml.safe_load(env.read_text())
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
        for req in pip:
            assert _name(req) in pins, f"{env.name}: {req} is not a dependency in pyproject.toml"
            assert req.replace(" ", "") == pins[_name(req)], f"{env.name}: {req} != {pins[_name(req)]}"
        # everything the rules import is there
        for needed in ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "pandas", "matplotlib",
                       "pyhessian"):
            assert needed in {_name(r) for r in pip}, f"{env.name} lacks {needed}"


def test_every_rule_names_an_existing_env():
    for smk in (REPO / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / env).resolve().is_file(), f"{smk.name}: {env}"
