"""The record's estimate-against-run table: each estimated job finds its run's own times."""

import json

from sharpminima.record import estimate_lines, run_times


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
