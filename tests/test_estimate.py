"""The cost estimate: its jobs are the workflow's jobs, its sample counts the recipes'."""

import json
import os
from collections import Counter

import pytest

from conftest import REPO, TINY, snakemake
from sharpminima.estimate import JOB_START_SECONDS, Costs, StepTimes, load_config, main, parse_plan, parser, plan
from test_workflow import job_counts


def test_the_estimate_costs_snakemakes_own_plan(data_mirror, tmp_path):
    """The estimate's jobs are the dry run's, one row each (no copy of the job graph)."""
    planned = plan([TINY], [f"data_mirror={data_mirror}"], cwd=tmp_path)
    proc = snakemake("-n", "--forceall", "--configfile", TINY, "--config", f"data_mirror={data_mirror}",
                     cwd=tmp_path)
    assert Counter(j["rule"] for j in planned) == job_counts(proc.stdout)
    gradual = [j for j in planned if j["rule"] == "gradual"]
    assert {j["wildcards"]["gradual"] for j in gradual} == {"lobster", "imp", "gmp"}
    assert all(set(j["wildcards"]) == {"panel", "gradual", "seed"} for j in gradual)
    cfg = load_config([TINY], defaults=None)
    cost = Costs(cfg, {name: StepTimes(train=1.0, lobster=1.0, forward=0.0) for name in cfg["panels"]})
    rows = [cost(j) for j in planned]
    assert all(r["seconds"] >= JOB_START_SECONDS for r in rows if r["job"] != "all")
    assert all(r["samples"] > 0 for r in rows if r["job"].split(":")[0] in ("train_dense", "gradual", "retrain"))
    # targets and a resumed run: only what the target needs and its outputs lack
    split = plan([TINY], [f"data_mirror={data_mirror}"], ["results/splits/mnist.json"], remaining=True,
                 cwd=tmp_path)
    assert [j["rule"] for j in split] == ["prepare_data", "split"]


def test_a_dry_run_is_read_whole_or_refused():
    text = """rule train_dense:
    output: results/a/dense/s0/model.pt
    wildcards: panel=a, seed=0
localrule all:
    input: x
Job stats:
job            count
-----------  -------
all                1
train_dense        1
total              2
"""
    assert parse_plan(text) == [{"rule": "train_dense", "wildcards": {"panel": "a", "seed": "0"}},
                                {"rule": "all", "wildcards": {}}]
    with pytest.raises(ValueError, match="read 2 jobs, its 'Job stats' say 3"):
        parse_plan(text.replace("total              2", "total              3"))


def _costs(cfg, name, times):
    cost = Costs(cfg, {name: times})
    return lambda rule, **wc: cost({"rule": rule, "wildcards": {"panel": name, **wc}})


def test_samples_follow_the_recipes():
    cfg = load_config([TINY], ["retrain_seeds=[101, 102, 103]"], defaults=None)
    p = cfg["panels"]["lenet300_mnist"]
    job = _costs(cfg, "lenet300_mnist", StepTimes(train=2.0, lobster=3.0, forward=0.0))
    n = p["train_samples"]
    dense = job("train_dense", seed="0")
    assert dense["samples"] == p["dense"]["epochs"] * n
    assert dense["seconds"] == pytest.approx(2.0 * p["dense"]["epochs"] * n + JOB_START_SECONDS)
    lobster = job("gradual", gradual="lobster", seed="0")
    assert lobster["job"] == "gradual:lobster"
    assert lobster["seconds"] == pytest.approx(3.0 * p["lobster"]["recipe"]["epochs"] * n + JOB_START_SECONDS)
    # IMP: rounds 0..1 to 10 % at 20 % per round, each the dense recipe; GMP: its recipe
    assert job("gradual", gradual="imp", seed="0")["samples"] == 2 * p["dense"]["epochs"] * n
    assert job("gradual", gradual="gmp", seed="0")["samples"] == p["gmp"]["recipe"]["epochs"] * n
    # one retraining job trains every retraining seed; Scratch-E: the dense budget
    rewind = job("retrain", gradual="lobster", retraining="reinit", seed="0", target="10")
    assert rewind["samples"] == 3 * p["dense"]["epochs"] * n
    # the whole training split when train_samples is null (MNIST: 60,000 - 10 % validation)
    cfg["panels"]["lenet300_mnist"]["train_samples"] = None
    assert job("train_dense", seed="0")["samples"] == p["dense"]["epochs"] * 54_000
    # a job that trains nothing costs its start-up
    assert job("fig1")["seconds"] == JOB_START_SECONDS and job("fig1")["samples"] == 0


def test_command_prints_and_writes_the_estimate(tmp_path, capsys):
    out = tmp_path / "estimate.json"
    assert main(["--configfile", str(TINY), "--batches", "2", "--jobs", "2", "--device", "cpu",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "total" in text and "with 2 parallel jobs" in text and "GFLOP/s" in text
    est = json.loads(out.read_text())
    assert set(est["panels"]) >= {"lenet300_mnist", "lenet5_mnist", "resnet32_cifar10"}
    t = est["total"]
    assert 0 < t["hours_parallel"] <= t["hours_serial"]
    assert t["hours_parallel"] >= t["hours_longest_chain"] - 1e-12
    assert len(est["mm_gflops"]) == 2 and min(est["mm_gflops"]) > 0  # the machine's speed meanwhile
    for v in [*est["panels"].values()]:  # the range of the host's spells brackets the planning figure
        lo, hi = v["hours_quartiles"]
        assert 0 < lo <= v["hours"] <= hi
    lo, hi = t["hours_serial_quartiles"]
    assert lo <= t["hours_serial"] <= hi and "quartiles" in text
    steps = est["step_times_us"]["lenet5_mnist"]
    assert steps["lobster"] > 0 and steps["train"] > 0 and steps["forward"] > 0
    assert all(v["threads"] is None or 1 <= v["threads"] <= os.cpu_count() for v in est["panels"].values())


def test_a_job_is_timed_on_no_more_threads_than_the_machine_has():
    """Snakemake scales a rule's threads down to --cores; the estimate's rounds do the same, not
    oversubscribe (the paper preset's ResNet-32 asks 4 threads; this machine may have 2)."""
    import torch

    from sharpminima.estimate import StepTimer

    timer = StepTimer(torch.device("cpu"), batches=1, repeats=1)
    many = timer.add("lenet300", "mnist", 50, threads=os.cpu_count() + 3)
    one = timer.add("lenet300", "mnist", 100, threads=1)
    assert timer._prepare(**timer.setups[many])["threads"] == os.cpu_count()
    assert timer._prepare(**timer.setups[one])["threads"] == 1


def test_presets_are_layered_on_the_default_as_snakemake_layers_them():
    """`--configfile presets/extended.yaml` from the repository's root: config.yaml first, the
    preset merged over it key by key (several files after one flag, as Snakemake takes them)."""
    assert parser().parse_args(["--configfile", "a.yaml", "b.yaml"]).configfile == ["a.yaml", "b.yaml"]
    cfg = load_config([REPO / "presets/extended.yaml"])
    assert cfg["landscape"]["probe_epochs"] == 3  # config.yaml's, kept
    assert cfg["landscape"]["methods"] == ["lobster", "gmp", "imp"]  # the preset's
    assert cfg["panels"]["lenet5_mnist"]["lobster"]["stop_at_sparsity"] == 99.57
    # the smoke panel is the default's (LOBSTER only); the preset adds IMP and GMP to it
    assert load_config()["panels"]["resnet32_cifar10"]["gradual_methods"] == ["lobster"]
    assert cfg["panels"]["resnet32_cifar10"]["gradual_methods"] == ["lobster", "imp", "gmp"]


def test_masked_jobs_are_costed_at_their_own_masks():
    from sharpminima.estimate import SparseTimes

    def st(x):
        return StepTimes(train=x, lobster=2 * x, forward=0.0)

    s = SparseTimes(dense=st(10.0), lobster_masks=[(92.0, st(4.0)), (98.3, st(2.0))],
                    magnitude_masks=[(80.0, st(8.0)), (98.0, st(5.0))],
                    phases=[(0.5, 0.0), (0.25, 92.0), (0.25, 98.3)])
    # a retraining trains the first LOBSTER mask at or above its target; beyond reach, below
    assert s.retrain(90.0).train == 4.0 and s.retrain(98.0).train == 2.0 and s.retrain(99.5).train == 2.0
    assert s.oneshot(98.0).train == 5.0 and s.at_most(50.0).train == 10.0 and s.at_most(95.0).train == 4.0
    assert s.over_phases().lobster == pytest.approx(0.5 * 20 + 0.25 * 8 + 0.25 * 4)
    cfg = load_config([TINY], defaults=None)
    dense_only, sparse = _costs(cfg, "x", st(10.0)), _costs(cfg, "x", s)
    cfg["panels"]["x"] = cfg["panels"]["lenet300_mnist"]
    assert sparse("train_dense", seed="0") == dense_only("train_dense", seed="0")
    at = dict(gradual="lobster", retraining="rewind", seed="0", target="10")
    assert sparse("retrain", **at)["seconds"] < dense_only("retrain", **at)["seconds"]


def test_identical_set_ups_are_timed_once_in_interleaved_rounds():
    import torch

    from sharpminima.estimate import StepTimer
    from sharpminima.models import build_model
    from sharpminima.pruning import magnitude_mask

    timer = StepTimer(torch.device("cpu"), batches=2, repeats=2)
    a = timer.add("lenet300", "mnist", 50, threads=1)
    b = timer.add("lenet300", "fashion_mnist", 50, threads=1)  # the same shape and classes
    c = timer.add("lenet300", "mnist", 100, threads=1)
    assert a == b and a != c and len(timer.setups) == 2
    model = build_model("lenet300")
    mask = magnitude_mask(model, 0.99)
    m = timer.add("lenet300", "mnist", 50, threads=1, mask=mask, state=model.state_dict(), compact="always",
                  key="masked")
    timer.run()
    assert timer.times(a) is timer.times(b)
    for key in (a, c):
        t = timer.times(key)
        assert t.train > 0 and t.lobster > 0 and t.forward > 0 and t.multiply_add_ratio == 1.0
    assert timer.times(m).multiply_add_ratio < 0.2  # the compacted path's, known once it trained


def _scripted_timer(rounds: list[tuple[float, float | None]], repeats=3):
    """A StepTimer whose rounds return the scripted (seconds per sample, busy share), the
    same for every kind; it counts the fresh instances it builds."""
    import torch

    from sharpminima.estimate import StepTimer

    class Scripted(StepTimer):
        built = 0

        def _prepare(self, **kw):
            Scripted.built += 1
            return {"n": 1, "threads": None, "fns": {}, "ratio": 1.0}

        def _round(self, key, calls):
            self._prepare(**self.setups[key])
            t, busy = rounds.pop(0)
            return {k: t for k in self.KINDS}, busy, 1.0

    timer = Scripted(torch.device("cpu"), batches=1, repeats=repeats)
    return timer, timer.add("lenet300", "mnist", 10), Scripted


def test_a_set_up_is_the_median_of_fresh_instances_until_it_settles(monkeypatch):
    """Rounds that differ (LeNet-300 on this host: 13 to 34 us per sample over a minute)
    are timed afresh until the standard error of their mean falls to 2.5 % of it; the
    set-up's time is their median, its range their quartiles; a steady set-up stops at
    ``repeats`` rounds."""
    from sharpminima.estimate import MAX_ROUNDS_PER_REPEAT

    steady = [(10.0, 0.0)] * 3
    timer, key, cls = _scripted_timer(list(steady))
    timer.run()
    t = timer.times(key)
    assert (t.train, t.rounds, t.kept, cls.built) == (10.0, 3, 3, 3)

    modes = [(10.0, 0.0), (20.0, 0.0)] * (MAX_ROUNDS_PER_REPEAT * 2)
    timer, key, cls = _scripted_timer(modes)
    timer.run()
    t = timer.times(key)
    # 5 / sqrt(n) <= 0.025 * 15 -> n >= 178, beyond the cap of MAX_ROUNDS_PER_REPEAT x 3 rounds
    assert t.rounds == MAX_ROUNDS_PER_REPEAT * 3 == cls.built
    assert t.train == 15.0 and t.spread == 1.0
    assert (timer.times(key, 0.25).train, timer.times(key, 0.75).train) == (10.0, 20.0)

    # a slow round among steady ones barely moves the median
    timer, key, _ = _scripted_timer([(10.0, 0.0), (13.0, 0.0), (10.2, 0.0)] + [(10.1, 0.0)] * 30)
    timer.run()
    assert timer.times(key).train < 10.2

    # past its time budget a set-up stops at its ``repeats`` rounds, settled or not
    import sharpminima.estimate as estimate

    monkeypatch.setattr(estimate, "SETUP_SECONDS", 0.0)
    timer, key, _ = _scripted_timer([(15.0, 0.0), (20.0, 0.0)] * 2)
    timer.run()
    assert timer.times(key).rounds == 3


def test_busy_rounds_are_set_aside_unless_all_are_busy():
    timer, key, _ = _scripted_timer([(30.0, 0.6), (10.0, 0.0), (10.0, 0.05), (10.0, 0.0)])
    timer.run()
    t = timer.times(key)
    assert (t.train, t.rounds, t.kept, t.busy) == (10.0, 4, 3, 0.05)

    timer, key, _ = _scripted_timer([(30.0, 0.6)] * 3)  # all busy: kept, and reported busy
    timer.run()
    t = timer.times(key)
    assert (t.train, t.rounds, t.kept, t.busy) == (30.0, 3, 3, 0.6)


def test_a_recipe_with_another_batch_or_optimizer_costs_its_own_step():
    """Frankle & Carbin's rewinding (Adam, batch 60) costs its own step, not the dense
    recipe's (SGD, batch 100): its factor, timed dense, applies at its mask."""
    from sharpminima.estimate import SparseTimes, _recipes, _step_kind

    cfg = load_config([REPO / "presets/paper.yaml"])
    panel = cfg["panels"]["lenet300_mnist"]
    assert {_step_kind(r) for r in _recipes(panel, cfg)} == {(100, "sgd"), (60, "adam")}
    n = 54_000
    s = SparseTimes(dense=StepTimes(train=1.0, lobster=1.0, forward=0.0), lobster_masks=[], magnitude_masks=[],
                    phases=[], factors={(60, "adam"): 2.5})
    job = _costs(cfg, "lenet300_mnist", s)
    at = dict(gradual="lobster", seed="0", target="98")
    epochs, seeds = panel["rewind"]["recipe"]["epochs"], len(cfg["retrain_seeds"])
    assert job("retrain", retraining="rewind", **at)["seconds"] == pytest.approx(
        2.5 * epochs * n * seeds + JOB_START_SECONDS)
    assert job("retrain", retraining="reinit", **at)["seconds"] == pytest.approx(
        panel["dense"]["epochs"] * n * seeds + JOB_START_SECONDS)


def test_a_costly_set_up_is_timed_on_shorter_epochs(monkeypatch):
    """A set-up whose timed epoch takes over twice the shortest timing window (ResNet-32's:
    11 s on a CPU) is timed on fewer batches, so that it gets rounds as a cheap one does."""
    import torch

    import sharpminima.estimate as estimate

    monkeypatch.setattr(estimate, "MIN_REPEAT_SECONDS", 1e-4)  # every epoch is costly now
    timer = estimate.StepTimer(torch.device("cpu"), batches=8, repeats=2)
    key = timer.add("lenet300", "mnist", 50, threads=1)
    timer.run()
    assert timer.batches_of[key] == 2 and timer.times(key).train > 0
