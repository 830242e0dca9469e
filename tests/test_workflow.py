"""The workflow through its CLI: lint, dry runs of the default and paper configurations,
config errors before any job, and one real tiny end-to-end run."""

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, TINY, snakemake
from sharpminima.training import TIMING_KEYS

pytestmark = pytest.mark.workflow


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    table = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_lint_is_clean():
    proc = snakemake("--lint", cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout
    assert "Lints for" not in proc.stdout


@pytest.mark.parametrize("configs, panels, dense, gradual, retrain, oneshot, landscapes", [
    # three LeNet panels at seeds 0-2 (LOBSTER on each, IMP and GMP on the first) and
    # ResNet-32's smoke panel (one seed, LOBSTER); the retrainings of the first seed's masks
    # (3 methods x LOBSTER's 3 + 2 + 1 + 1 targets, IMP's at 40 % on each LeNet panel, and
    # rewind_matched at each LeNet panel's highest) and the rewinds of seeds 1 and 2 at the
    # landscape's 99.57 %; one-shot per dense seed (4 + 3 + 3 + 1 targets); the paper's landscape
    (["config.yaml"], 4, 3 * 3 + 1, 3 * 5 + 1, 3 * 7 + 3 * 3 + 3 + 2, 3 * 10 + 1, 1),
    # the paper's four panels and methods only, one seed
    (["config.yaml", "presets/paper.yaml"], 4, 4, 4, 3 * (6 + 7 + 4 + 3), 6 + 7 + 4 + 3, 1),
    # every method on every panel, Fig. 1 retraining every method's masks (rewind_matched at
    # every LeNet target), the landscape of every panel around every method's G (the LOBSTER
    # seeds 1-2 rewound at LeNet-5/MNIST's 99.57 % and at every target of LeNet-300 and
    # Fashion-MNIST, whose G is the highest reached)
    (["config.yaml", "presets/extended.yaml"], 4, 10, 3 * 5 + 3, 3 * 4 * 10 + 3 * 3 + 2 * (1 + 4 + 3), 31,
     4 * 3),
], ids=["default", "paper", "extended"])
def test_dry_run_plans_every_panel(configs, panels, dense, gradual, retrain, oneshot, landscapes, tmp_path):
    proc = snakemake("-n", "--configfile", *[REPO / c for c in configs], cwd=tmp_path)
    counts = job_counts(proc.stdout)
    assert counts["train_dense"] == dense and counts["gradual"] == gradual
    assert counts["prepare_data"] == panels - 1 and counts["split"] == panels - 1  # MNIST twice
    assert counts["dense_table"] == 1 and counts["fig1"] == panels and counts["fig1_table"] == 1
    # one retraining job per (mask source, method, target, gradual seed): its seeds batched inside
    assert counts["retrain"] == retrain and counts["oneshot"] == oneshot
    assert counts["plane"] == landscapes and counts["hessian"] == landscapes
    assert counts["landscape_points"] == landscapes and counts["landscape_points_table"] == 1
    assert counts["landscape_probe"] == 1 and counts["claims"] == 1
    # the feature analyses: the extended preset's three LeNet panels and two transfer pairs
    extended = "extended" in str(configs)
    assert counts.get("similarity", 0) == (3 if extended else 0)
    assert counts.get("transfer", 0) == (2 if extended else 0)


def test_the_extended_preset_is_planned_and_estimated():
    """presets/extended.yaml: what does not fit the default run's budget, layered on it; the
    estimate reads it as Snakemake does (merged key by key) and plans the same landscapes."""
    from collections import Counter

    from sharpminima.estimate import Costs, StepTimes, load_config, plan

    cfg = load_config([REPO / "presets/extended.yaml"])  # over config.yaml, as from the root
    assert set(cfg["panels"]) == {"lenet300_mnist", "lenet5_mnist", "lenet5_fashion", "resnet32_cifar10"}
    resnet = cfg["panels"]["resnet32_cifar10"]
    assert resnet["dense"]["epochs"] == 2 and resnet["gradual_methods"] == ["lobster", "imp", "gmp"]
    planned = plan([REPO / "presets/extended.yaml"], cwd=REPO)
    rules = Counter(j["rule"] for j in planned)
    assert rules["gradual"] == 18 and rules["landscape_points"] == 12 and rules["hessian"] == 12
    unit = StepTimes(train=1e-3, lobster=1e-3, forward=1e-4)
    cost = Costs(cfg, {n: unit for n in cfg["panels"]})
    rows = [cost(j) for j in planned]
    assert len({(r["panel"], r["wildcards"].get("gradual")) for r in rows if r["job"] == "landscape_points"}) == 12
    assert all(r["seconds"] > 0 for r in rows if r["job"] != "all")


def test_the_paper_preset_inherits_no_panel_setting_of_the_default_config():
    """Snakemake merges a --configfile into config.yaml key by key: a panel setting of the
    reduced-scale default that the preset does not restate would silently run at paper scale
    (it did: ResNet-32's 2-epoch retraining recipe). Every panel key must come from the preset."""
    import yaml

    default = yaml.safe_load((REPO / "config.yaml").read_text())["panels"]
    paper = yaml.safe_load((REPO / "presets/paper.yaml").read_text())["panels"]

    def leaks(d, p, path):
        for k, v in d.items():
            if k not in p:
                yield f"{path}.{k}"
            elif isinstance(v, dict) and isinstance(p[k], dict):
                yield from leaks(v, p[k], f"{path}.{k}")

    assert set(default) <= set(paper)
    assert [x for name in default for x in leaks(default[name], paper[name], name)] == []


def _config_lines(stdout):
    return [l.strip() for l in stdout.splitlines() if l.strip().startswith("config: ")]


@pytest.mark.parametrize("override, line", [
    ("epochs_typo=3", "config: (top level): unknown key(s) ['epochs_typo']; expected some of"),
    ("device=gpu", "config: device: found 'gpu'"),
    ("val_fraction=1.5", "config: val_fraction: found 1.5"),
])
def test_bad_config_fails_before_any_job_naming_the_key(override, line, tmp_path):
    proc = snakemake("-n", "--configfile", TINY, "--config", override, cwd=tmp_path, check=False)
    assert proc.returncode != 0
    lines = _config_lines(proc.stdout)
    assert lines and lines[0].startswith(line), proc.stdout[-3000:]
    assert "Failed validating" not in proc.stdout and "$defs" not in proc.stdout  # no schema dump
    assert len(proc.stdout.splitlines()) < 30
    # stopped before planning: a valid config's dry run prints its job table
    assert "Job stats" not in proc.stdout and "Building DAG" not in proc.stdout


BAD_PANEL = """
    model: {model}
    dataset: {dataset}
    dense: {{epochs: 1, batch_size: 50, lr: 0.1}}
    lobster: {{recipe: {{epochs: 1, batch_size: 50, lr: 0.1}}, lmbda: 1.0e-3, twt: 0.1, pwe: 1}}
    targets: {targets}
    oneshot_finetune: {{epochs: 1, batch_size: 50, lr: 0.01}}
"""


@pytest.mark.parametrize("extra, panels, line", [
    ("", {"a": ("fig1a", "vgg99", "[80]")},
     "config: panels.a.model: found 'vgg99'; expected one of ['lenet300', 'lenet5', 'resnet32']"),
    ("", {"a": ("fig1a", "lenet5", "[80]", "svhn")},
     "config: panels.a.dataset: found 'svhn'; expected one of ['cifar10', 'fashion_mnist', 'mnist']"),
    ("", {"a": ("fig1a", "lenet5", "[80]"), "b": ("fig1a", "lenet5", "[80]")},
     "config: panels.b.figure: found 'fig1a', the figure of panel a too"),
    ("seeds: [0, 0]\n", {"a": ("fig1a", "lenet5", "[80]")},
     "config: seeds: found [0, 0]; expected distinct values"),
    ("", {"a": ("fig1a", "lenet5", "[80, 80.0]")},
     "config: panels.a.targets: found [80, 80.0]; expected distinct sparsities"),
    ("retrain_seeds: [0]\n", {"a": ("fig1a", "lenet5", "[80]")},
     "config: retrain_seeds: found [0]; expected seeds other than seeds [0]"),
    ("landscape: {panel: a, target: 90}\n", {"a": ("fig1a", "lenet5", "[80]")},
     "config: landscape.target: found 90; expected one of the targets of panel a"),
])
def test_config_mistakes_the_schema_cannot_see_stop_before_any_job(extra, panels, line, tmp_path):
    text = extra + ("" if "landscape" in extra else "landscape: {panel: a}\n") + "panels:\n"
    for name, (figure, model, targets, *dataset) in panels.items():
        text += f"  {name}:\n    figure: {figure}" + BAD_PANEL.format(
            model=model, targets=targets, dataset=dataset[0] if dataset else "mnist")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    proc = snakemake("-n", "--configfile", cfg, cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert line in _config_lines(proc.stdout)[0], proc.stdout[-3000:]
    assert "Job stats" not in proc.stdout and not (tmp_path / "results").exists()


def test_tiny_run_trains_every_panel_with_provenance(tiny_run):
    workdir, _ = tiny_run
    table = pd.read_csv(workdir / "results/tables/dense.csv")
    # two seeds of each LeNet panel, ResNet-32's one of its own
    assert sorted(table.panel) == ["lenet300_mnist"] * 2 + ["lenet5_mnist"] * 2 + ["resnet32_cifar10"]
    assert table.test_error.between(0, 100).all()
    # device: auto takes the GPU where the job sees one: assert the device it really found
    found = "cuda" if torch.cuda.is_available() else "cpu"
    assert (table.device.str.startswith(found)).all()
    assert table.code_version.notna().all()
    # training beats chance on MNIST even on 400 images and one epoch
    assert table[table.panel == "lenet300_mnist"].test_error.max() < 60
    m = json.loads((workdir / "results/lenet5_mnist/dense/s0/metrics.json").read_text())
    prov = m["provenance"]
    assert {"settings", "seed", "device", "code_version", "libraries", "wall_time_s"} <= set(prov)
    # which machine: what decides whether two runs agree bit for bit
    assert prov["machine"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert prov["machine"]["threads"] >= 1 and prov["machine"]["cpu"]
    assert f"({prov['machine']['cpu_capability']}) threads=" in prov["device_description"] or found == "cuda"
    assert prov["settings"]["recipe"]["epochs"] == 1
    assert m["data"]["n_train"] == 300
    log = (workdir / "logs/lenet5_mnist/dense/s0.log").read_text()
    assert "eta=" in log and f"device={found}" in log
    # the resumable state is gone once the outputs are written
    assert not (workdir / "results/lenet5_mnist/dense/s0/train_state.ckpt").exists()


def test_rerun_after_completion_has_nothing_to_do(tiny_run, data_mirror):
    workdir, _ = tiny_run
    proc = snakemake("-n", "--configfile", TINY, "--config", f"data_mirror={data_mirror}", cwd=workdir)
    assert "Nothing to be done" in proc.stdout


def test_changing_one_panel_setting_reruns_only_that_panel(tiny_run, data_mirror, tmp_path):
    workdir, _ = tiny_run
    change = tmp_path / "change.yaml"  # config files given later override earlier ones, key by key
    change.write_text("panels:\n  lenet5_mnist:\n    dense: {epochs: 2}\n")
    proc = snakemake("-n", "--configfile", TINY, change, "--config", f"data_mirror={data_mirror}",
                     cwd=workdir, check=False)
    assert proc.returncode == 0, proc.stdout
    counts = job_counts(proc.stdout)
    assert counts.get("train_dense") == 2  # the panel's two seeds, no other panel's
    assert "results/lenet5_mnist/dense/s1/model.pt" in proc.stdout


def test_tiny_run_draws_fig1_with_every_method(tiny_run):
    workdir, _ = tiny_run
    for f in ("fig1a", "fig1b", "fig1d"):
        for ext in ("pdf", "png", "csv"):
            assert (workdir / f"results/figures/{f}.{ext}").stat().st_size > 0
    pts = pd.read_csv(workdir / "results/tables/fig1.csv")
    a = pts[pts.panel == "lenet300_mnist"].set_index("method")
    assert set(a.index) == {"dense", "lobster", "imp", "gmp", "rewind", "reinit", "random", "rewind_matched",
                            "oneshot"}
    assert a.reached.all()
    # the retrainings are of LOBSTER's masks (retrain_masks_of), the gradual rows have none
    assert set(a.masks_of.dropna()) == {"lobster"} and pd.isna(a.loc["gmp", "masks_of"])
    # the retrained masks are the first LOBSTER seed's snapshot's: same sparsity, to the parameter
    s0 = json.loads((workdir / "results/lenet300_mnist/lobster/s0/trajectory.json").read_text())
    snap = next(s for s in s0["snapshots"] if s["target"] == 10.0)
    for m in ("rewind", "reinit", "random", "rewind_matched"):
        assert a.loc[m, "pruned_params_pct"] == pytest.approx(snap["pruned_params_pct"], abs=1e-4)  # the table keeps 6 digits
    assert (a.loc["rewind_matched", "role"], a.loc["lobster", "role"]) == ("retraining", "gradual")
    # rewind_matched: LOBSTER's recipe, for the epochs that led to the snapshot
    rm = json.loads((workdir / "results/lenet300_mnist/lobster/rewind_matched/s0/t10/metrics.json").read_text())
    event = next(e for e in s0["events"] if e["event"] == snap["event"])
    recipe = rm["provenance"]["settings"]["recipe"]
    assert recipe["epochs"] == event["epoch"] and recipe["lr"] == 0.3  # tiny.yaml's LOBSTER lr
    assert a.loc["lobster", "n_seeds"] == 2 and a.loc["rewind", "n_seeds"] == 1
    assert a.loc["oneshot", "pruned_params_pct"] == pytest.approx(10.0, abs=1e-3)
    # ResNet-32's 99 % target is out of LOBSTER's reach in one epoch: reported, not dropped
    d = pts[(pts.panel == "resnet32_cifar10") & (pts.method == "lobster")]
    assert list(d.reached) == [False] and list(d.target) == [99.0]
    traj = json.loads((workdir / "results/lenet300_mnist/lobster/s0/trajectory.json").read_text())
    sparsities = [e["pruned_params_pct"] for e in traj["events"]]
    assert sparsities == sorted(sparsities) and len(sparsities) >= 2
    assert not (workdir / "results/lenet300_mnist/lobster/s0/resume").exists()


def test_one_figure_builds_alone(data_mirror, tmp_path):
    """`snakemake results/figures/fig1b.pdf` plans only what that figure needs."""
    proc = snakemake("-n", "results/figures/fig1b.pdf", "--configfile", TINY,
                     "--config", f"data_mirror={data_mirror}", cwd=tmp_path)
    counts = job_counts(proc.stdout)
    # two seeds of the dense model and LOBSTER, one of GMP (seeds_per_method)
    assert counts["train_dense"] == 2 and counts["gradual"] == 3 and counts["fig1"] == 1
    assert counts["prepare_data"] == 1 and "dense_table" not in counts
    assert "lenet300_mnist" not in proc.stdout and "resnet32" not in proc.stdout


def test_tiny_run_draws_the_landscape(tiny_run):
    workdir, _ = tiny_run
    for f in ("fig2a", "fig2b", "fig3", "fig4a", "fig4b"):
        for ext in ("pdf", "png", "csv"):
            assert (workdir / f"results/figures/{f}.{ext}").stat().st_size > 0
    plane = json.loads((workdir / "results/landscape/lenet5_mnist/lobster/plane.json").read_text())
    assert abs(plane["cos_uv"]) < 1e-9 and plane["norm_v"] == pytest.approx(plane["norm_u"], rel=1e-9)
    loss = pd.read_csv(workdir / "results/figures/fig2a.csv")
    assert len(loss) == 5 * 3 and loss.loss.gt(0).all()
    psp = pd.read_csv(workdir / "results/landscape/lenet5_mnist/lobster/psp.csv").set_index(["a", "b"])
    assert psp.entropy1.between(0, 10).all() and psp.entropy2.between(0, 10).all()
    # G and 1-S are grid points of every map
    assert (0.0, 0.0) in psp.index and (1.0, 0.0) in psp.index
    hess = pd.read_csv(workdir / "results/landscape/lenet5_mnist/lobster/hessian.csv").set_index("solution")
    assert list(hess.index) == ["G", "1-S"]
    assert (hess.eig1 >= hess.eig2).all() and (hess.eig2 >= hess.eig3).all()
    meta = json.loads((workdir / "results/landscape/lenet5_mnist/lobster/psp.json").read_text())
    assert meta["n_samples"] == 200 and meta["readings"]["entropy2"] == "joint"
    # the summary table holds the same numbers as the maps and the Hessian points
    every = pd.read_csv(workdir / "results/tables/landscape.csv")
    # every landscape (panel, G's method): the paper's first
    assert list(dict.fromkeys(zip(every.panel, every.method))) == [
        ("lenet5_mnist", "lobster"), ("lenet5_mnist", "gmp"), ("lenet300_mnist", "lobster"),
        ("lenet300_mnist", "gmp")]
    sol = every[(every.panel == "lenet5_mnist") & (every.method == "lobster")].set_index("solution")
    assert list(sol.index) == ["G", "1-S"]
    assert sol.loc["G", "psp_norm"] == pytest.approx(psp.loc[(0.0, 0.0), "psp_norm"], rel=1e-5)
    assert sol.loc["1-S", "eig1"] == pytest.approx(hess.loc["1-S", "eig1"], rel=1e-5)
    # both readings of the PSP norm and both Hessian spaces at the same points
    assert (sol["psp_norm"] == sol["psp_norm_mean_square"]).all() and (sol["psp_norm_l2"] > 0).all()
    readings = pd.read_csv(workdir / "results/landscape/lenet5_mnist/lobster/hessian_readings.csv")
    assert sorted(set(readings.space)) == ["full", "mask"] and len(readings) == 4
    mask_g = readings[(readings.space == "mask") & (readings.solution == "G")].iloc[0]
    full_g = readings[(readings.space == "full") & (readings.solution == "G")].iloc[0]
    assert full_g.eig1 >= mask_g.eig1 * (1 - 1e-3)  # Cauchy interlacing
    assert mask_g.eig1 == pytest.approx(hess.loc["G", "eig1"], rel=1e-9)
    # the verdicts' numbers: G at both seeds, 1-S the rewind of each one's mask; the plane's
    # G and 1-S among them, to the last digit of the same computation
    pts = pd.read_csv(workdir / "results/tables/landscape_points.csv")
    lob = pts[(pts.panel == "lenet5_mnist") & (pts.method == "lobster")]
    assert sorted(zip(lob.solution, lob.gradual_seed, lob.seed)) == [
        ("1-S", 0, 101), ("1-S", 1, 101), ("G", 0, 0), ("G", 1, 1)]
    assert len(pts[(pts.panel == "lenet5_mnist") & (pts.method == "gmp")]) == 2  # one GMP seed
    g0 = lob[(lob.solution == "G") & (lob.gradual_seed == 0)].iloc[0]
    assert g0.psp_norm == pytest.approx(sol.loc["G", "psp_norm"], rel=1e-5)
    assert g0.entropy2 == g0.entropy2_joint and g0.entropy2_agreement > 0
    assert g0.eig1_mask == pytest.approx(mask_g.eig1, rel=1e-3)  # the same top eigenvalue
    assert (lob.eig_min <= lob.eig3 + 1e-6).all()  # the smallest algebraic one is below the top-k
    probe = pd.read_csv(workdir / "results/landscape/lenet5_mnist/lobster/probe.csv")
    assert list(probe.epoch) == [0, 1, 2]
    recipe = json.loads((workdir / "results/landscape/lenet5_mnist/lobster/probe.json").read_text())["recipe"]
    assert (recipe["lr"], recipe["batch_size"], recipe["epochs"]) == (0.02, 50, 2)  # its own recipe
    assert probe.loss.iloc[0] == pytest.approx(sol.loc["G", "loss"], rel=1e-4)


def test_tiny_run_writes_the_claims_table(tiny_run):
    workdir, _ = tiny_run
    claims = pd.read_csv(workdir / "results/tables/claims.csv")
    assert set(claims.verdict) <= {"holds", "does not hold", "unresolved at n seeds",
                                   "not testable at this scale"}
    assert claims.n_seeds.notna().all() or claims[claims.n_seeds.isna()].verdict.eq(
        "not testable at this scale").all()
    # the title claim, at two LOBSTER seeds with one rewind each: n = 2 paired differences
    narrower = claims.set_index("id").loc["landscape:lenet5_mnist:lobster:narrower"]
    assert narrower.n_seeds == 2 and "G minus 1-S" in narrower.effect
    ids = set(claims.id)
    for panel in ("lenet300_mnist", "lenet5_mnist", "resnet32_cifar10"):
        assert f"{panel}:max_sparsity" in ids and f"{panel}:neurons_at_max" in ids
    for key in ("sparsity", "eigenvalues_positive", "lower_loss", "narrower", "generalises",
                "lower_psp_norm", "entropy1_comparable", "higher_entropy2", "range_loss",
                "range_eig", "range_psp_norm", "range_entropy1", "range_entropy2"):
        assert f"landscape:lenet5_mnist:lobster:{key}" in ids, key
        assert f"landscape:lenet5_mnist:gmp:{key}" in ids, key
    for key in ("lower_loss", "narrower", "generalises", "higher_entropy2"):
        assert f"landscape:lenet300_mnist:gmp:{key}" in ids, key
    for m in ("lobster", "imp", "gmp"):
        assert f"lenet300_mnist:gradual_beats_oneshot:{m}" in ids, m
    assert claims.paper.notna().all() and claims.words.notna().all()
    # the tiny panels are at reduced scale: every colour-bar range is untestable, and says why
    ranges = claims[claims.id.str.contains(":range_")]
    assert (ranges.verdict == "not testable at this scale").all()
    assert ranges.note.str.contains("reduced scale").all()
    paper = ranges[ranges.id.str.startswith("landscape:lenet5_mnist:lobster:")]
    assert paper[paper.id.str.endswith("range_psp_norm")].note.str.contains("reading 'l2'").all()
    assert paper[paper.id.str.endswith("range_eig")].note.str.contains("reading 'full space'").all()
    # LOBSTER reached no 99.57 % here; the claim says so
    top = claims.set_index("id").loc["lenet5_mnist:max_sparsity"]
    assert top.verdict == "does not hold" and top.paper == "99.57 %"


def test_tiny_run_draws_the_features_of_every_solution(tiny_run):
    """Similarity to the dense model and the transfer probe: every solution of the panel,
    every hidden layer, both data sets; their figures and claims rows."""
    workdir, _ = tiny_run
    for f in ("similarity/lenet5_mnist", "transfer/lenet5_mnist_to_fashion_mnist",
              "entropy_transfer/lenet5_mnist_to_fashion_mnist"):
        for ext in ("pdf", "png", "csv"):
            assert (workdir / f"results/figures/{f}.{ext}").stat().st_size > 0, f
    sim = pd.read_csv(workdir / "results/lenet5_mnist/features/similarity.csv")
    fig1 = pd.read_csv(workdir / "results/figures/fig1b.csv")
    solutions = {(r.method, r.target) for r in fig1[fig1.reached].itertuples()}
    assert set(zip(sim.method, sim.target)) == solutions
    assert set(sim.layer) == {"conv1", "conv2", "fc1"}
    dense = sim[sim.method == "dense"]
    assert np.allclose(dense.svcca, 1.0) and np.allclose(dense.cka, 1.0)
    pruned = sim[sim.method != "dense"]
    assert pruned.cka.between(0, 1).all() and (pruned.svcca.dropna() <= 1 + 1e-9).all()
    runs = pd.read_csv(workdir / "results/lenet5_mnist/features/transfer_fashion_mnist.csv")
    assert set(runs.probe_data) == {"mnist", "fashion_mnist"}
    assert set(zip(runs.method, runs.target)) == solutions
    assert runs.probe_error.between(0, 100).all() and runs.entropy2.gt(0).all()
    ids = set(pd.read_csv(workdir / "results/tables/claims.csv").id)
    assert {"lenet5_mnist:transfer_better:lobster", "lenet5_mnist:transfer_better:gmp",
            "lenet5_mnist:entropy_explains_transfer"} <= ids


def test_every_method_records_its_selection(tiny_run):
    """The default rule is best_val, for every method: the metrics say which epoch each run
    reports, and it is the one with the lowest validation loss of its history."""
    workdir, _ = tiny_run
    runs = []
    methods = set()
    # dense: <panel>/dense/s0/; one-shot: <panel>/oneshot/s0/t<target>/; a retraining:
    # <panel>/<gradual method>/<kind>/s0/t<target>/
    for path in (workdir / "results").rglob("s0/**/metrics.json"):
        m = json.loads(path.read_text())
        methods.add(m["method"])
        if m["method"] == "dense":
            runs.append((path, m))
        else:
            runs += [(path, {**r, "selection": m["selection"]}) for r in m["runs"]]
    assert {"dense", "rewind", "reinit", "random", "oneshot"} <= methods, methods
    for path, r in runs:
        assert r["selection"] == "best_val", path
        val = [h["val_loss"] for h in r["history"]]
        assert r["selected_epoch"] == min(range(len(val)), key=lambda i: (val[i], i)) + 1, path


@pytest.mark.parametrize("figure, runs, skips", [
    ("fig2a", {"plane_map": 1, "plane": 1}, ["hessian", "fig2b"]),
    ("fig2b", {"hessian": 1, "plane": 1}, ["plane_map"]),
    ("fig3", {"plane_map": 1}, ["hessian"]),
    ("fig4b", {"plane_map": 1}, ["hessian"]),
])
def test_one_landscape_figure_plans_only_its_jobs(figure, runs, skips, data_mirror, tmp_path):
    proc = snakemake("-n", f"results/figures/{figure}.pdf", "--configfile", TINY,
                     "--config", f"data_mirror={data_mirror}", cwd=tmp_path)
    counts = job_counts(proc.stdout)
    for rule, n in runs.items():
        assert counts.get(rule) == n, (rule, counts)
    for rule in skips:
        assert rule not in counts
    # only the analysed panel is trained, and of its retrainings only the rewind ones
    assert "train_dense" not in counts and "oneshot" not in counts
    assert "resnet32_cifar10" not in proc.stdout and "lenet300_mnist" not in proc.stdout
    assert "/reinit/" not in proc.stdout and "/random/" not in proc.stdout


def test_report_has_every_figure(tiny_run, data_mirror):
    workdir, _ = tiny_run
    snakemake("--configfile", TINY, "--config", f"data_mirror={data_mirror}",
              "--report", "results/report.html", cwd=workdir)
    html = (workdir / "results/report.html").read_text(errors="replace")
    assert len(html) > 100_000
    for name in ("fig1a.pdf", "fig1b.pdf", "fig1d.pdf", "fig2a.pdf", "fig2b.pdf", "fig3.pdf",
                 "fig4a.pdf", "fig4b.pdf"):
        assert name in html, name
    assert "Tartaglione" in html  # the workflow description


def test_reproduction_record_of_a_panel(tiny_run):
    """python -m sharpminima.record: the Markdown of docs/reproduction.md from a run's files."""
    from sharpminima.estimate import load_config
    from sharpminima.record import record

    workdir, _ = tiny_run
    md = record("lenet300_mnist", load_config([TINY], defaults=None), workdir / "results")
    assert "| rule | jobs | wall time, sum | longest job |" in md
    # two seeds of dense, LOBSTER and one-shot; the retrainings of the first seed's masks,
    # and the rewind of the second seed's mask for the landscape's 1-S
    for rule, jobs in (("dense", 2), ("lobster", 2), ("rewind", 2), ("reinit", 1), ("random", 1), ("oneshot", 2)):
        assert f"| {rule} | {jobs} |" in md, rule
    assert "| dense | |" in md and "| 10 |" in md  # the dense row and the one target
    assert "LOBSTER reaches the paper's highest sparsity" in md and "**does not hold**" in md
    assert "code version: `" in md
    # the panel's landscapes (LOBSTER's G and GMP's): the claims table's rows of each, verdict for verdict
    import re

    import pandas as pd

    claims = pd.read_csv(workdir / "results/tables/claims.csv")
    sections = md.split("\nLandscape of ")[1:]
    assert len(sections) == 2 and "| landscape rule | jobs |" in sections[0]
    for method, section in zip(("lobster", "gmp"), sections):
        rows = claims[claims.id.str.startswith(f"landscape:lenet300_mnist:{method}:")]
        assert len(rows) > 5 and re.findall(r"\*\*(.+?)\*\*", section) == list(rows.verdict), method
    # LOBSTER's first event under each split's loss, from each G seed's event 0 (kept in snapshots.pt):
    # the search on the validation loss lands where the run's own first event did
    fe = record("lenet300_mnist", load_config([TINY], defaults=None), workdir / "results", first_event=True)
    fe = fe[fe.index("first event, from each G seed"):]
    for seed in (0, 1):
        run = re.search(rf"\| {seed} \| the run's first event \(epoch \d+\) \| ([\d.]+) \|", fe)
        ours = re.search(rf"\| {seed} \| TWT [\d.]+ on the validation loss \| ([\d.]+) \|", fe)
        assert run and ours and abs(float(run[1]) - float(ours[1])) < 0.1, (seed, fe)
        assert re.search(rf"\| {seed} \| TWT [\d.]+ on the training loss \| [\d.]+ \|", fe)
        assert re.search(rf"\| {seed} \| the paper's first point \| 40.1\d* \|", fe), fe
    assert "not kept" not in fe
    from PIL import Image

    from sharpminima.record import small_png

    small_png(workdir / "results/figures/fig1a.png", workdir / "docs/fig1a.png")
    im = Image.open(workdir / "docs/fig1a.png")
    assert im.width == 720 and len(im.getcolors()) <= 64


# -- interrupted and stale state ------------------------------------------------------------

KILL_CONFIG = """
seeds: [0]
retrain_seeds: [101]
panels:
  lenet5_mnist:
    figure: fig1b
    model: lenet5
    dataset: mnist
    train_samples: {n}
    val_samples: 300
    test_samples: 300
    dense: {{epochs: 6, batch_size: 50, lr: 0.05, momentum: 0.9}}
    lobster: {{recipe: {{epochs: 1, batch_size: 50, lr: 0.1}}, lmbda: 1.0e-3, twt: 0.1, pwe: 1}}
    targets: [10]
    oneshot_finetune: {{epochs: 1, batch_size: 50, lr: 0.01}}
landscape: {{panel: lenet5_mnist}}
"""
DENSE = "results/lenet5_mnist/dense/s0/metrics.json"


def _job_pids(workdir, script):
    """PIDs of the job processes running ``script`` from ``workdir`` (read from /proc)."""
    import os

    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if script in cmd and ".snakemake/scripts" in cmd and cwd == str(workdir):
            out.append(int(pid))
    return out


def _kill_mid_epoch(workdir, config, data_mirror, after_epoch=2):
    """Start the dense job, SIGKILL its process in the middle of epoch ``after_epoch + 1``."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), DENSE, "--cores", "1",
           "--configfile", str(config), "--config", f"data_mirror={data_mirror}"]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = workdir / "logs/lenet5_mnist/dense/s0.log"
    deadline = time.time() + 600
    while time.time() < deadline:
        if log.exists() and f"epoch={after_epoch} " in log.read_text():
            break
        time.sleep(0.05)
    else:
        proc.kill()
        raise AssertionError("the dense job never reached epoch 2")
    time.sleep(0.3)  # into the next epoch
    pids = _job_pids(workdir, "train_dense")
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert (workdir / "results/lenet5_mnist/dense/s0/train_state.ckpt").exists()
    assert not (workdir / DENSE).exists()


def _numbers(path):
    m = json.loads(path.read_text())
    strip = lambda h: [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in h]  # noqa: E731
    return {k: m[k] for k in ("test_error", "test_loss", "val_loss", "train_loss", "selected_epoch")}, \
        strip(m["history"]), m["data"]["n_train"]


@pytest.mark.slow
def test_a_killed_job_resumes_to_the_same_numbers_and_a_changed_one_starts_over(data_mirror, tmp_path):
    """A real training process SIGKILLed mid-epoch, then `snakemake --rerun-incomplete`: the
    same final numbers as an uninterrupted run. Killed again and rerun with other data
    (train_samples 1200 -> 600): the checkpoint is not resumed, the log says why, and the
    numbers are those of a clean run on 600 images."""
    runs = {}
    for name, n in (("straight", 1200), ("small", 600)):
        d = tmp_path / name
        d.mkdir()
        (d / "c.yaml").write_text(KILL_CONFIG.format(n=n))
        snakemake(DENSE, "--cores", "1", "--configfile", d / "c.yaml", "--config",
                  f"data_mirror={data_mirror}", cwd=d)
        runs[name] = _numbers(d / DENSE)
    d = tmp_path / "killed"
    d.mkdir()
    cfg = d / "c.yaml"
    cfg.write_text(KILL_CONFIG.format(n=1200))
    _kill_mid_epoch(d, cfg, data_mirror)
    snakemake(DENSE, "--rerun-incomplete", "--cores", "1", "--configfile", cfg, "--config",
              f"data_mirror={data_mirror}", cwd=d)
    log = (d / "logs/lenet5_mnist/dense/s0.log").read_text()
    assert "resumed from results/lenet5_mnist/dense/s0/train_state.ckpt after epoch 2" in log
    assert _numbers(d / DENSE) == runs["straight"]
    # killed again, then the data change: never a model trained on two data sets
    (d / DENSE).unlink()
    _kill_mid_epoch(d, cfg, data_mirror)
    cfg.write_text(KILL_CONFIG.format(n=600))
    snakemake(DENSE, "--rerun-incomplete", "--cores", "1", "--configfile", cfg, "--config",
              f"data_mirror={data_mirror}", cwd=d)
    log = (d / "logs/lenet5_mnist/dense/s0.log").read_text()
    assert "not resuming from results/lenet5_mnist/dense/s0/train_state.ckpt" in log
    assert "train_samples: 1200 -> 600" in log and "resumed" not in log
    assert _numbers(d / DENSE) == runs["small"]


def test_finished_retraining_seeds_are_reused_only_from_the_same_run(tiny_run, tmp_path, caplog):
    """resume/seed<s>.pt of another run (other settings or snapshot) is not reused: the seed is
    retrained, and the log says which file and why; a folder without a fingerprint (an older
    version's) is emptied."""
    import torch

    from sharpminima.estimate import load_config
    from sharpminima.experiments.job import run_fingerprint
    from sharpminima.experiments.train import retrain_recipe, run_retrain

    workdir, _ = tiny_run
    cfg = load_config([TINY], defaults=None)
    panel = cfg["panels"]["lenet300_mnist"]
    r = workdir / "results/lenet300_mnist"
    args = dict(retraining="rewind", panel_name="lenet300_mnist", panel=panel,
                data_dir=workdir / "resources/datasets", split_path=workdir / "results/splits/mnist.json",
                trajectory=r / "lobster/s0/trajectory.json", snapshots=r / "lobster/s0/snapshots.pt",
                init=r / "lobster/s0/init.pt", target=10.0, seeds=[101], device_spec="cpu", threads=1,
                selection="best_val")
    state = tmp_path / "resume"
    state.mkdir()
    traj = json.loads(args["trajectory"].read_text())
    snap = next(s for s in traj["snapshots"] if s["target"] == 10.0)
    fp = run_fingerprint(panel, args["data_dir"], args["split_path"],
                         {"retraining": "rewind", "target": 10.0, "selection": "best_val",
                          "recipe": retrain_recipe(panel, "lenet300_mnist", "rewind").to_dict(), "event": snap["event"]},
                         snapshots=args["snapshots"], init=args["init"])
    (state / "fingerprint.json").write_text(json.dumps(fp))
    fake = {"run": {"seed": 101, "test_error": 99.0}, "state_dict": {}, "mask": {},
            "fingerprint": {**fp, "settings": {**fp["settings"], "selection": "last"}}}
    torch.save(fake, state / "seed101.pt")
    caplog.set_level(logging.INFO)
    m = run_retrain(**args, metrics_out=tmp_path / "m.json", models_out=tmp_path / "m.pt",
                    state_dir=state)
    lines = caplog.messages
    assert any("not reusing" in x and "seed101.pt" in x and "selection" in x for x in lines), lines
    assert m["runs"][0]["test_error"] != 99.0
    ref = json.loads((r / "lobster/rewind/s0/t10/metrics.json").read_text())
    assert m["runs"][0]["test_error"] == ref["runs"][0]["test_error"]  # a clean retraining
    # an older version's folder (no fingerprint): emptied, not trusted
    state.mkdir()
    torch.save(fake, state / "seed101.pt")
    caplog.clear()
    run_retrain(**args, metrics_out=tmp_path / "m2.json", models_out=tmp_path / "m2.pt",
                state_dir=state)
    lines = caplog.messages
    assert any("not resuming from" in x and "no fingerprint" in x for x in lines), lines
    # a target the gradual run never reached: nothing trained, and a folder an earlier run left
    # at the job's state path is removed with the outputs written
    unreached = {**traj, "snapshots": [{"target": 10.0, "reached": False, "max_reached": 5.0}]}
    (tmp_path / "unreached.json").write_text(json.dumps(unreached))
    state.mkdir(exist_ok=True)
    torch.save(fake, state / "seed101.pt")
    m = run_retrain(**{**args, "trajectory": tmp_path / "unreached.json"}, metrics_out=tmp_path / "m3.json",
                    models_out=tmp_path / "m3.pt", state_dir=state)
    assert (m["reached"], m["n_seeds"]) == (False, 0) and not state.exists()


def _write_idx(path: Path, array) -> None:
    """An unsigned-byte IDX file (LeCun's format), as torchvision's MNIST-like classes read."""
    import numpy as np

    a = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes((0, 0, 0x08, a.ndim)) + np.array(a.shape, dtype=">i4").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + a.tobytes())


def test_a_data_set_a_retraining_method_and_a_landscape_figure_are_one_entry_each(data_mirror, tmp_path):
    """Extend a copy of the checkout, each extension by its registry entry alone (and the
    schema's parts written from the registries): a data set (Kuzushiji-MNIST's torchvision class,
    on a small set written here in torchvision's layout), a retraining method (re-init trained
    with the gradual run's budget: Liu et al.'s Scratch-B) and a landscape figure (the training
    error on the plane). A panel on the new data set is planned, validated and run to its
    Fig. 1, the new figure and the claims table, and each extension shows up in them."""
    import hashlib
    import shutil

    import numpy as np

    from sharpminima.gradual import GRADUAL_METHODS

    repo = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (REPO / rel).is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / rel, repo / rel)
    # a learnable toy: each class lights its own band of rows; a fifth of the labels are
    # shuffled, so that the validation loss plateaus and LOBSTER prunes within a few epochs
    rng = np.random.default_rng(0)
    mirror, md5s = tmp_path / "mirror", []
    for part, n in (("train", 600), ("t10k", 200)):
        y = rng.integers(0, 10, n)
        x = rng.integers(0, 60, (n, 28, 28))
        for i, c in enumerate(y):
            x[i, 2 * c + 4: 2 * c + 7] += 180
        noisy = rng.random(n) < 0.2
        y[noisy] = rng.integers(0, 10, int(noisy.sum()))
        _write_idx(mirror / f"KMNIST/raw/{part}-images-idx3-ubyte", x)
        _write_idx(mirror / f"KMNIST/raw/{part}-labels-idx1-ubyte", y)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        md5s.append(hashlib.md5((mirror / "KMNIST/raw" / name).read_bytes()).hexdigest())
    with open(repo / "sharpminima/datasets.py", "a") as f:  # the data set: one entry
        f.write(f"""
register(DatasetSpec(
    name="kmnist", torchvision_class="KMNIST", files=idx_files("KMNIST", {tuple(md5s)!r}),
    mean=(0.3,), std=(0.35,), num_classes=10, input_shape=(1, 28, 28),
    n_train=600, n_test=200, augment=False,
))
""")
    with open(repo / "sharpminima/retraining.py", "a") as f:  # the retraining method: one entry
        f.write("""
register(RetrainingMethod(
    "reinit_matched", "re-init, gradual's budget",
    "Liu et al., 'Rethinking the value of network pruning', ICLR 2019 (Scratch-B)",
    start="fresh", budget="gradual", paper=False))
""")
    # ... and the schema's parts written from the registries
    subprocess.run([sys.executable, "-m", "sharpminima.schema", "--write"], cwd=repo, check=True)
    assert "reinit_matched" in yaml.safe_load((repo / "schemas/config.schema.yaml").read_text())["$defs"]["method"]["enum"]
    figures = repo / "sharpminima/paper_figures.py"  # the landscape figure: one entry
    opening = "MAP_FIGURES: dict[str, MapFigure] = {\n"
    assert opening in figures.read_text()
    figures.write_text(figures.read_text().replace(
        opening, opening + '    "fig2c": MapFigure("loss", "error", "training error (%)", False),\n'))
    cfg = tmp_path / "kmnist.yaml"
    cfg.write_text("""
seeds: [0]
retrain_seeds: [101]
gradual_methods: [lobster]
methods: [rewind, reinit_matched, oneshot]
landscape:
  panel: lenet300_kmnist
  target: null
  samples: 200
  resolution: [5, 3]
  hessian: {samples: 100, k: 3, resolution: [2, 2]}
  probe_epochs: 1
panels:
  lenet300_kmnist:
    figure: fig1k
    model: lenet300
    dataset: kmnist
    train_samples: 500
    val_samples: 60
    test_samples: 200
    dense: {epochs: 1, batch_size: 50, lr: 0.1, momentum: 0.9}
    lobster:
      recipe: {epochs: 12, batch_size: 50, lr: 0.3}
      lmbda: 2.0e-3
      twt: 0.3
      pwe: 1
      tolerance: 0.0
    targets: [10]
    oneshot_finetune: {epochs: 1, batch_size: 50, lr: 0.01, momentum: 0.9}
""")
    work = tmp_path / "work"
    work.mkdir()
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--cores", "2",
           "--configfile", str(cfg), "--config", f"data_mirror={mirror}", "--",
           "results/figures/fig1k.csv", "results/figures/fig2c.pdf", "results/tables/claims.csv"]
    proc = subprocess.run(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:]
    points = pd.read_csv(work / "results/figures/fig1k.csv")
    assert {"lobster", "rewind", "reinit_matched", "oneshot"} <= set(points["method"])
    assert set(points.loc[points["method"] == "reinit_matched", "role"]) == {"retraining"}
    manifest = json.loads((work / "resources/datasets/kmnist.manifest.json").read_text())
    assert manifest["files"] == dict(zip(
        [f"KMNIST/raw/{n}" for n in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")], md5s))
    dense = json.loads((work / "results/lenet300_kmnist/dense/s0/metrics.json").read_text())
    assert dense["test_error"] < 50  # the bands are learnt in one epoch: real data flowed
    # Scratch-B: a fresh start trained for as many epochs as led to the snapshot
    run = json.loads((work / "results/lenet300_kmnist/lobster/reinit_matched/s0/t10/metrics.json").read_text())
    traj = json.loads((work / "results/lenet300_kmnist/lobster/s0/trajectory.json").read_text())
    snap = next(s for s in traj["snapshots"] if s["target"] == 10)
    assert run["runs"][0]["epochs"] == GRADUAL_METHODS["lobster"].epochs_to(traj["events"], snap["event"])
    error_map = pd.read_csv(work / "results/figures/fig2c.csv")
    assert list(error_map.columns) == ["a", "b", "error"] and len(error_map) == 15
    assert error_map["error"].between(0, 100).all() and error_map["error"].nunique() > 1
    claims = pd.read_csv(work / "results/tables/claims.csv")
    # a panel the paper did not draw is judged on the generic claims: gradual beats one-shot, and
    # its landscape's
    assert {"lenet300_kmnist:gradual_beats_oneshot:lobster",
            "landscape:lenet300_kmnist:lobster:narrower"} <= set(claims["id"])
    # and the checkout's own registries know nothing of them: the entries were the only change
    assert "kmnist" not in (REPO / "sharpminima/datasets.py").read_text()
    assert "reinit_matched" not in (REPO / "sharpminima/retraining.py").read_text()
    assert "fig2c" not in (REPO / "sharpminima/paper_figures.py").read_text()
