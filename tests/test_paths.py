"""The paths table: one spelling of every results path, read by the rules and the records."""

import pytest
import yaml

from sharpminima import paths, settings

TINY = yaml.safe_load(open("tests/config/tiny.yaml"))


def test_a_pattern_is_filled_with_the_workflows_spelling_of_a_target():
    assert paths.target_str(98.0) == "98" and paths.target_str("99.57") == "99.57"
    d = paths.fill(paths.RETRAINING, panel="p", gradual="lobster", retraining="rewind", seed=0, target=98.0)
    assert d == "results/p/lobster/rewind/s0/t98"
    assert paths.log(d) == "logs/p/lobster/rewind/s0/t98.log"
    assert paths.benchmark(paths.LANDSCAPE, "{map_kind}") == "results/benchmarks/landscape/{panel}/{gradual}/{map_kind}.tsv"
    assert paths.file_in(paths.ONESHOT, "train_state.ckpt", {"panel": "p", "seed": "1", "target": "99.57"}) \
        == "results/p/oneshot/s1/t99.57/train_state.ckpt"
    with pytest.raises(KeyError):
        paths.fill(paths.DENSE, panel="p")  # a wildcard left unfilled is an error, not a path


def _cfg(**top):
    panel = {"targets": [80, 98.0], "figure": "fig1a"}
    return {"panels": {"p": panel}, "seeds": [0, 1], "retrain_seeds": [101], "gradual_methods": ["lobster", "imp"],
            "seeds_per_method": {"imp": 1}, "retrain_masks_of": ["lobster"], "methods": ["rewind", "oneshot"],
            **top}


def test_the_runs_a_configuration_asks_for():
    cfg = _cfg()
    assert paths.dense_runs(cfg, "p") == ["results/p/dense/s0", "results/p/dense/s1"]
    assert paths.gradual_runs(cfg, "p") == ["results/p/lobster/s0", "results/p/lobster/s1", "results/p/imp/s0"]
    # the first seed's masks, by every retraining method of `methods`, at every target
    assert paths.retraining_runs(cfg, "p") == ["results/p/lobster/rewind/s0/t80", "results/p/lobster/rewind/s0/t98"]
    assert paths.oneshot_runs(cfg, "p") == [f"results/p/oneshot/s{s}/t{t}" for s in (0, 1) for t in (80, 98)]
    assert paths.oneshot_runs(_cfg(methods=["rewind"]), "p") == []


def test_the_default_target_lists_every_figure():
    figs = paths.figures(TINY)
    for f in ("fig1a", "fig1b", "fig1d", "fig2a", "fig2b", "fig3", "fig4a", "fig4b"):
        assert f"results/figures/{f}.pdf" in figs
    # every landscape's figures under its own folder (the paper's copied from there), the
    # features' figures
    first = "results/figures/landscape/{}/{}".format(*settings.landscapes(TINY)[0])
    assert f"{first}/fig2b.pdf" in figs and f"{first}/fig4b.csv" in figs
    assert "results/figures/landscape/lenet5_mnist/gmp/fig2a.pdf" in figs
    assert "results/figures/transfer/lenet5_mnist_to_fashion_mnist.csv" in figs
    assert "results/tables/claims.csv" in paths.all_targets(TINY)


def test_every_rule_with_a_benchmark_reads_its_own_entry_of_the_table():
    """The record finds a job's benchmark file through ``paths.BENCHMARKS[rule]``: a rule that
    spelled its own would be missing from the estimate-against-real table."""
    import re
    from pathlib import Path

    seen = {}
    for f in sorted(Path("rules").glob("*.smk")):
        for name, body in re.findall(r"^(?:local)?rule (\w+):\n((?:[ \t]+.*\n|\n)*)", f.read_text(), re.M):
            m = re.search(r"^\s+benchmark:\n\s+(.+)$", body, re.M)
            if m:
                seen[name] = m.group(1).strip()
    assert seen == {name: f'paths.BENCHMARKS["{name}"]' for name in paths.BENCHMARKS}
