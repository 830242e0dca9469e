"""The workflow through its CLI: lint, dry runs of the default and paper configurations,
config errors before any job, and one real tiny end-to-end run."""

import json
import re

import pandas as pd
import pytest
import torch

from conftest import REPO, TINY, snakemake

pytestmark = pytest.mark.workflow


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    table = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_lint_is_clean():
    proc = snakemake("--lint", cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout
    assert "Lints for" not in proc.stdout


@pytest.mark.parametrize("configs, targets", [
    (["config.yaml"], 4 + 4 + 3 + 2),
    (["config.yaml", "presets/paper.yaml"], 6 + 7 + 4 + 3),
], ids=["default", "paper"])
def test_dry_run_plans_every_panel(configs, targets, tmp_path):
    proc = snakemake("-n", "--configfile", *[REPO / c for c in configs], cwd=tmp_path)
    counts = job_counts(proc.stdout)
    assert counts["train_dense"] == 4 and counts["lobster"] == 4
    assert counts["prepare_data"] == 3 and counts["split"] == 3
    assert counts["dense_table"] == 1 and counts["fig1"] == 4 and counts["fig1_table"] == 1
    # one retraining job per (method, target): seeds are batched inside it
    assert counts["retrain"] == 3 * targets and counts["oneshot"] == targets


@pytest.mark.parametrize("override, words", [
    ("epochs_typo=3", ["epochs_typo", "was unexpected"]),
    ("device=gpu", ["device", "gpu"]),
    ("val_fraction=1.5", ["val_fraction", "1.5"]),
])
def test_bad_config_fails_before_any_job_naming_the_key(override, words, tmp_path):
    proc = snakemake("-n", "--configfile", TINY, "--config", override, cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "Error validating config file" in proc.stdout
    for w in words:
        assert w in proc.stdout
    assert not (tmp_path / "results").exists()


def test_tiny_run_trains_every_panel_with_provenance(tiny_run):
    workdir, _ = tiny_run
    table = pd.read_csv(workdir / "results/tables/dense.csv")
    assert sorted(table.panel) == ["lenet300_mnist", "lenet5_mnist", "resnet32_cifar10"]
    assert table.test_error.between(0, 100).all()
    # device: auto takes the GPU where the job sees one: assert the device it really found
    found = "cuda" if torch.cuda.is_available() else "cpu"
    assert (table.device.str.startswith(found)).all()
    assert table.code_version.notna().all()
    # training beats chance on MNIST even on 400 images and one epoch
    assert table.set_index("panel").loc["lenet300_mnist", "test_error"] < 60
    m = json.loads((workdir / "results/lenet5_mnist/dense/s0/metrics.json").read_text())
    prov = m["provenance"]
    assert {"settings", "seed", "device", "code_version", "libraries", "wall_time_s"} <= set(prov)
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
    assert counts.get("train_dense") == 1
    assert "results/lenet5_mnist/dense/s0/model.pt" in proc.stdout


def test_tiny_run_draws_fig1_with_every_method(tiny_run):
    workdir, _ = tiny_run
    for f in ("fig1a", "fig1b", "fig1d"):
        for ext in ("pdf", "png", "csv"):
            assert (workdir / f"results/figures/{f}.{ext}").stat().st_size > 0
    pts = pd.read_csv(workdir / "results/tables/fig1.csv")
    a = pts[pts.panel == "lenet300_mnist"].set_index("method")
    assert set(a.index) == {"dense", "lobster", "rewind", "reinit", "random", "oneshot"}
    assert a.reached.all()
    # the retrained masks are the LOBSTER snapshot's: same sparsity, to the parameter
    for m in ("rewind", "reinit", "random"):
        assert a.loc[m, "pruned_params_pct"] == pytest.approx(a.loc["lobster", "pruned_params_pct"], abs=1e-9)
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
    assert counts["train_dense"] == 1 and counts["lobster"] == 1 and counts["fig1"] == 1
    assert counts["prepare_data"] == 1 and "dense_table" not in counts
    assert "lenet300_mnist" not in proc.stdout and "resnet32" not in proc.stdout


def test_tiny_run_draws_the_landscape(tiny_run):
    workdir, _ = tiny_run
    for f in ("fig2a", "fig2b", "fig3", "fig4a", "fig4b"):
        for ext in ("pdf", "png", "csv"):
            assert (workdir / f"results/figures/{f}.{ext}").stat().st_size > 0
    plane = json.loads((workdir / "results/landscape/lenet5_mnist/plane.json").read_text())
    assert abs(plane["cos_uv"]) < 1e-9 and plane["norm_v"] == pytest.approx(plane["norm_u"], rel=1e-9)
    loss = pd.read_csv(workdir / "results/figures/fig2a.csv")
    assert len(loss) == 5 * 3 and loss.loss.gt(0).all()
    psp = pd.read_csv(workdir / "results/landscape/lenet5_mnist/psp.csv").set_index(["a", "b"])
    assert psp.entropy1.between(0, 10).all() and psp.entropy2.between(0, 10).all()
    # G and 1-S are grid points of every map
    assert (0.0, 0.0) in psp.index and (1.0, 0.0) in psp.index
    hess = pd.read_csv(workdir / "results/landscape/lenet5_mnist/hessian.csv").set_index("solution")
    assert list(hess.index) == ["G", "1-S"]
    assert (hess.eig1 >= hess.eig2).all() and (hess.eig2 >= hess.eig3).all()
    meta = json.loads((workdir / "results/landscape/lenet5_mnist/psp.json").read_text())
    assert meta["n_samples"] == 200 and meta["entropy2_definition"] == "agreement"
    # the summary table holds the same numbers as the maps and the Hessian points
    sol = pd.read_csv(workdir / "results/tables/landscape.csv").set_index("solution")
    assert list(sol.index) == ["G", "1-S"]
    assert sol.loc["G", "psp_norm"] == pytest.approx(psp.loc[(0.0, 0.0), "psp_norm"], rel=1e-5)
    assert sol.loc["1-S", "eig1"] == pytest.approx(hess.loc["1-S", "eig1"], rel=1e-5)
    # both readings of the PSP norm and both Hessian spaces at the same points
    assert (sol["psp_norm"] == sol["psp_norm_mean_square"]).all() and (sol["psp_norm_l2"] > 0).all()
    readings = pd.read_csv(workdir / "results/landscape/lenet5_mnist/hessian_readings.csv")
    assert sorted(set(readings.space)) == ["full", "mask"] and len(readings) == 4
    mask_g = readings[(readings.space == "mask") & (readings.solution == "G")].iloc[0]
    full_g = readings[(readings.space == "full") & (readings.solution == "G")].iloc[0]
    assert full_g.eig1 >= mask_g.eig1 * (1 - 1e-3)  # Cauchy interlacing
    assert mask_g.eig1 == pytest.approx(hess.loc["G", "eig1"], rel=1e-9)
    probe = pd.read_csv(workdir / "results/landscape/lenet5_mnist/probe.csv")
    assert list(probe.epoch) == [0, 1, 2]
    assert probe.loss.iloc[0] == pytest.approx(sol.loc["G", "loss"], rel=1e-4)


def test_tiny_run_writes_the_claims_table(tiny_run):
    workdir, _ = tiny_run
    claims = pd.read_csv(workdir / "results/tables/claims.csv")
    assert set(claims.verdict) <= {"holds", "does not hold", "not testable at this scale"}
    ids = set(claims.id)
    for panel in ("lenet300_mnist", "lenet5_mnist", "resnet32_cifar10"):
        assert f"{panel}:max_sparsity" in ids and f"{panel}:neurons_at_max" in ids
    for key in ("sparsity", "eigenvalues_positive", "lower_loss", "narrower", "generalises",
                "lower_psp_norm", "entropy1_comparable", "higher_entropy2", "range_loss",
                "range_eig", "range_psp_norm", "range_entropy1", "range_entropy2"):
        assert f"landscape:lenet5_mnist:{key}" in ids, key
    assert claims.paper.notna().all() and claims.words.notna().all()
    # the tiny panels are at reduced scale: every colour-bar range is untestable, and says why
    ranges = claims[claims.id.str.contains(":range_")]
    assert (ranges.verdict == "not testable at this scale").all()
    assert ranges.note.str.contains("reduced scale").all()
    assert ranges[ranges.id.str.endswith("range_psp_norm")].note.str.contains("reading 'l2'").all()
    assert ranges[ranges.id.str.endswith("range_eig")].note.str.contains("reading 'full space'").all()
    # LOBSTER reached no 99.57 % here; the claim says so
    top = claims.set_index("id").loc["lenet5_mnist:max_sparsity"]
    assert top.verdict == "does not hold" and top.paper == "99.57 %"


def test_every_method_records_its_selection(tiny_run):
    """The default rule is best_val, for every method: the metrics say which epoch each run
    reports, and it is the one with the lowest validation loss of its history."""
    workdir, _ = tiny_run
    runs = []
    for path in (workdir / "results").glob("*/*/s0/**/metrics.json"):
        m = json.loads(path.read_text())
        if m["method"] == "dense":
            runs.append((path, m))
        else:
            runs += [(path, {**r, "selection": m["selection"]}) for r in m["runs"]]
    methods = {p.parts[-4] if p.parent.name.startswith("t") else p.parts[-3] for p, _ in runs}
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
    md = record("lenet300_mnist", load_config([TINY]), workdir / "results")
    assert "| rule | jobs | wall time, sum | longest job |" in md
    for rule in ("dense", "lobster", "rewind", "reinit", "random", "oneshot"):
        assert f"| {rule} | 1 |" in md, rule
    assert "| dense | |" in md and "| 10 |" in md  # the dense row and the one target
    assert "LOBSTER reaches the paper's highest sparsity" in md and "**does not hold**" in md
    assert "code version: `" in md
