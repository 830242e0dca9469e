"""The record's estimate-against-run table: each estimated job finds its run's own times."""

import json
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from sharpminima import paths
from sharpminima.estimate import load_config
from sharpminima.lobster import PACE_EVENTS, LobsterSettings, projected_stop, pruning_events, run_lobster
from sharpminima.record import estimate_lines, main, progress, record, run_times
from sharpminima.training import Callback, Recipe, seed_everything

ROOT = Path(__file__).resolve().parents[1]


def _bench(path, wall, cpu):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                    f"{wall}\t0:00:00\t1\t1\t1\t1\t0\t0\t100\t{cpu}\n")


def _history(path, records):
    path.mkdir(parents=True, exist_ok=True)
    (path / "metrics.json").write_text(json.dumps({"runs": [{"history": records}]}))


def test_each_estimated_job_meets_its_own_times_paused_epochs_and_resumes_accounted(tmp_path):
    results = tmp_path / "results"
    # a dense job resumed after a stop: its benchmark holds the last attempt, its history every
    # epoch (one paused for 300 s), no CPU time per epoch (a run from before it was recorded)
    _bench(results / "benchmarks/p/dense/s0.tsv", wall=320, cpu=20)
    _history(results / "p/dense/s0", [{"epoch_time_s": t} for t in (10, 12, 310, 10)])
    # a one-shot job whose epochs record their CPU time (two threads)
    _bench(results / "benchmarks/p/oneshot/s0/t98.tsv", wall=30, cpu=40)
    _history(results / "p/oneshot/s0/t98", [{"epoch_time_s": 6, "epoch_cpu_s": 9}] * 2)
    # a retraining without a history beside its benchmark: its CPU time over two threads
    _bench(results / "benchmarks/p/lobster/rewind/s101/t98.tsv", wall=80, cpu=100)
    wc = {"panel": "p", "gradual": "lobster", "retraining": "rewind", "seed": "101", "target": "98"}
    est = {"jobs": [
        {"panel": "p", "job": "train_dense", "wildcards": {"panel": "p", "seed": "0"}, "seconds": 40.0},
        {"panel": "p", "job": "retrain", "wildcards": wc, "seconds": 60.0},
        {"panel": "p", "job": "oneshot", "wildcards": {"panel": "p", "seed": "0", "target": "98"}, "seconds": 10.0},
        {"panel": "p", "job": "oneshot", "wildcards": {"panel": "p", "seed": "0", "target": "99"}, "seconds": 9.0},
        {"panel": "q", "job": "train_dense", "wildcards": {"panel": "q", "seed": "0"}, "seconds": 5.0},
        {"panel": "p", "job": "fig1", "wildcards": {"figure": "fig1a"}, "seconds": 2.5},
    ]}
    t = run_times(est, "p", results, threads=2).set_index("kind")
    assert list(t.index) == ["dense", "rewind", "oneshot"]  # unfinished jobs, other panels, figures: out
    assert t.loc["dense", "wall_s"] == 10 + 12 + 11 + 10  # the paused epoch at the median (11)
    assert t.loc["dense", "cpu_s"] == 10 and t.loc["dense", "partial"]  # the last attempt's, over 2 threads
    assert t.loc["oneshot", "wall_s"] == 12 and t.loc["oneshot", "cpu_s"] == 9 and not t.loc["oneshot", "partial"]
    assert t.loc["rewind", "wall_s"] == 80 and t.loc["rewind", "cpu_s"] == 50
    md = "\n".join(estimate_lines(est, "p", results, threads=2))
    assert "| dense | 1 | 0.7 min | 0.7 min | 1.07 | 0.2 min (1 partial) | 0.25 |" in md
    assert "| all finished | 3 | 1.8 min | 2.2 min | 1.23 | 1.1 min (1 partial) | 0.63 |" in md


class _StopAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def after_epoch(self, trainer, record):
        if trainer.epoch == self.epoch:
            raise KeyboardInterrupt


def test_progress_reads_a_run_under_way_and_the_record_refuses_it(tmp_path, capsys):
    """A panel whose dense runs are done and whose first LOBSTER seed stopped mid-run (the
    engine's own checkpoint): the progress names each kind's jobs and LOBSTER's epoch, events
    and projected stop; the record refuses, naming the missing trajectories."""
    cfg = load_config([str(ROOT / "config.yaml")], [])
    panel, results = "lenet5_mnist", tmp_path / "results"
    at = lambda d: results / Path(d).relative_to(paths.RESULTS)  # noqa: E731
    dense = paths.dense_runs(cfg, panel)
    for d in dense:
        at(d).mkdir(parents=True)
        (at(d) / "metrics.json").write_text("{}")
    lob = paths.gradual_runs(cfg, panel, "lobster")
    g = torch.Generator().manual_seed(0)  # a learnable rule, and an MLP that plateaus on it
    x = torch.randn(3072, 32, generator=g)
    y = (x @ torch.randn(32, 4, generator=g)).argmax(1)
    data = SimpleNamespace(train=(x[:2048], y[:2048]), val=(x[2048:2560], y[2048:2560]),
                           test=(x[2560:], y[2560:]), num_classes=4)
    seed_everything(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.BatchNorm1d(64), nn.ReLU(),
                          nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4))
    ckpt = at(lob[0]) / "resume" / "train_state.ckpt"
    with pytest.raises(KeyboardInterrupt):  # stopped at epoch 18 of 200, as a session's end stops it
        run_lobster(model, data, Recipe(epochs=200, batch_size=64, lr=0.05, momentum=0.9),
                    LobsterSettings(lmbda=1e-3, twt=0.05, pwe=2, bisection_steps=12, stop_at_sparsity=99.9),
                    seed=0, checkpoint=ckpt, evaluate_test=False, callbacks=[_StopAt(18)])
    state = torch.load(ckpt, weights_only=False)
    ev, epoch = pruning_events(state["history"]), state["epoch"]
    stop = 60.0  # the panel's stop, set where the events' pace reaches it within the budget
    cfg["panels"][panel]["lobster"]["stop_at_sparsity"] = stop
    end = projected_stop(ev, stop)
    assert len(ev) > PACE_EVENTS and ev[-1][1] < stop and epoch < end < 200
    md = progress(panel, cfg, results)
    assert f"| dense | {len(dense)} | 0 | 0 |" in md
    assert f"| lobster | 0 | 1 | {len(lob) - 1} |" in md
    assert "| landscape of lobster's G (loss, psp, hessian, probe, points) | 0 | | 5 |" in md
    row = next(line for line in md.splitlines() if line.startswith("| lobster/s0 |"))
    assert row.startswith(f"| lobster/s0 | {epoch} of 200 |")
    assert f"{len(ev)} pruning events, the last at epoch {ev[-1][0]}: {ev[-1][1]:.2f} % pruned" in row
    assert f"stop at {stop:g} %: epoch ~{end:.0f} at the pace of its last {PACE_EVENTS} events" in row
    pace = statistics.median(r["epoch_time_s"] for r in state["history"][-20:])
    assert f"Left of the 1 under way: {(end - epoch) * pace / 3600:.2f} h at their own pace" in md
    with pytest.raises(FileNotFoundError, match="lobster/s0/trajectory.json"):
        record(panel, cfg, results)
    # the command: without --panel, every panel the run has begun (here the one); a record needs one
    args = ["--configfile", str(ROOT / "config.yaml"), "--results", str(results)]
    assert main([*args, "--progress"]) == 0
    out = capsys.readouterr().out
    assert [line.split(" run ")[0] for line in out.splitlines() if line.startswith("State of")] == [
        "State of lenet5_mnist's"]
    with pytest.raises(SystemExit):
        main([*args, "--panel", panel])  # not finished
    assert "lenet5_mnist is not finished" in capsys.readouterr().err
