"""Training through the compacted network against the dense, masked computation: seconds per
training epoch of each path at each of the paper's targets, LeNet-300-100 and LeNet-5 on
MNIST-sized data, interleaved in one run (ratios are what to compare on a shared machine).

The masks are those the workflow trains at: for each target, the first snapshot of a LOBSTER
run (``--run``: a results directory; seed 0) at or above it, the mask its retrainings retrain
and its phase trains with. A target beyond the run's reach takes the sparsest snapshot pruned
further by global magnitude (a lower bound: LOBSTER's own events leave more dead units);
without a run, the initialisation pruned by magnitude (no dead units to speak of: the lower
bound of the speed-up). The weights are the snapshot's; the inputs are random images of the
data set's shape (the time does not depend on their values).

    python benchmarks/bench_compact_training.py --run results           # after a default run
    python benchmarks/bench_compact_training.py --samples 54000 --repeats 3
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import mm_ceiling  # noqa: E402

from sharpminima.provenance import cpu_sample, others_fraction  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
_log = logging.getLogger("benchmarks.bench_compact_training")

#: the paper's targets (presets/paper.yaml) and the issue's bar: speed-up at least x from y %
PANELS = {
    "lenet300": dict(panel="lenet300_mnist", targets=[40.15, 60.64, 80.06, 90.07, 95.0, 98.0],
                     bar=(95.0, 2.0)),
    "lenet5": dict(panel="lenet5_mnist", targets=[63.05, 80.14, 90.01, 95.06, 98.0, 99.02, 99.57],
                   bar=(98.0, 3.0)),
}
RECIPE = dict(epochs=1, batch_size=100, lr=0.1, momentum=0.9, weight_decay=0.0)  # the paper preset's


def masks_at_targets(model_name: str, targets, snapshots: Path | None):
    """``[(target, state_dict, mask, source)]`` (module docstring)."""
    from sharpminima.masks import Mask
    from sharpminima.models import build_model
    from sharpminima.pruning import magnitude_mask

    torch.manual_seed(0)
    base = build_model(model_name, num_classes=10)
    snaps = []
    if snapshots is not None and snapshots.exists():
        for ev, s in sorted(torch.load(snapshots, map_location="cpu", weights_only=False).items()):
            snaps.append((ev, 100.0 * Mask(s["mask"]).pruned_fraction, s))
    out = []
    for t in targets:
        above = [(ev, p, s) for ev, p, s in snaps if p >= t - 1e-9]
        model = build_model(model_name, num_classes=10)
        if above:
            ev, p, s = min(above, key=lambda e: e[1])
            model.load_state_dict(s["state_dict"])
            mask, source = Mask({k: v.bool() for k, v in s["mask"].items()}), f"LOBSTER event {ev}"
        else:
            if snaps:
                ev, p, s = max(snaps, key=lambda e: e[1])
                model.load_state_dict(s["state_dict"])
                old, source = Mask({k: v.bool() for k, v in s["mask"].items()}), f"LOBSTER event {ev} + magnitude"
            else:
                model.load_state_dict(base.state_dict())
                old, source = None, "initialisation + magnitude"
            mask = magnitude_mask(model, t / 100.0, mask=old)
        mask.apply(model)
        out.append((t, {k: v.clone() for k, v in model.state_dict().items()}, mask, source))
    return out


def epoch_seconds(model_name, state, mask, data, mode: str) -> tuple[float, dict | None]:
    from sharpminima.models import build_model
    from sharpminima.training import Recipe, Trainer

    model = build_model(model_name, num_classes=10)
    model.load_state_dict(state)
    trainer = Trainer(model, data, Recipe(**RECIPE, compact_training=mode), seed=0, device="cpu",
                      mask=mask)
    t0 = time.perf_counter()
    trainer.train_epoch()
    return time.perf_counter() - t0, trainer.compaction.info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="lenet300,lenet5")
    p.add_argument("--samples", type=int, default=54000, help="training images per epoch (MNIST's "
                   "training split less 10 %% validation: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved epochs per path (median)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--run", type=Path, default=REPO / "results",
                   help="a run's results directory: its seed-0 LOBSTER snapshots give the masks")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "compact_training.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    from types import SimpleNamespace

    from sharpminima.provenance import atomic_write_json, provenance

    start = time.perf_counter()
    ceil0 = mm_ceiling(1024)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.samples, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (args.samples,), generator=g)
    data = SimpleNamespace(train=(x, y), val=None, test=None)
    rows = []
    for name in args.models.split(","):
        cfg = PANELS[name]
        snaps = args.run / cfg["panel"] / "lobster" / "s0" / "snapshots.pt"
        for t, state, mask, source in masks_at_targets(name, cfg["targets"], snaps):
            times = {"never": [], "always": []}
            busy, info = [], None
            for _ in range(args.repeats):
                for mode in times:
                    b = cpu_sample()
                    t0 = time.perf_counter()
                    dt, i = epoch_seconds(name, state, mask, data, mode)
                    busy.append(others_fraction(b, cpu_sample(), time.perf_counter() - t0))
                    times[mode].append(dt)
                    info = i if mode == "always" else info
            dense, comp = statistics.median(times["never"]), statistics.median(times["always"])
            row = {"model": name, "target": t, "mask_from": source,
                   "pruned_pct": round(100 * mask.pruned_fraction, 3),
                   "alive_units": info.get("alive_units"), "multiply_add_ratio": info.get("multiply_add_ratio"),
                   "dense_s": round(dense, 3), "compacted_s": round(comp, 3),
                   "speedup": round(dense / comp, 2), "times": times,
                   "others_cpu_max": max((b for b in busy if b is not None), default=None)}
            rows.append(row)
            print(f"{name:<9} {t:>6.2f} % ({source}): dense {dense:7.2f} s, compacted {comp:6.2f} s, "
                  f"{row['speedup']:5.2f}x; alive {row['alive_units']}; multiply-adds "
                  f"{row['multiply_add_ratio']:.3f}", flush=True)
    ceil1 = mm_ceiling(1024)
    gf = statistics.median(ceil0["gflops_all"] + ceil1["gflops_all"])
    print(f"\ntorch.mm fp32 1024^2, {args.threads} threads: {gf:.0f} GFLOP/s; {args.samples} samples "
          f"per epoch, batch {RECIPE['batch_size']}, median of {args.repeats} interleaved epochs")
    bars = []
    for name in args.models.split(","):
        at, x_ = PANELS[name]["bar"]
        worst = min(r["speedup"] for r in rows if r["model"] == name and r["target"] >= at)
        bars.append({"model": name, "from_pct": at, "at_least": x_, "worst": worst, "met": worst >= x_})
        print(f"{name}: at {at:g} % and above, at least {x_:g}x asked, worst {worst:.2f}x: "
              f"{'met' if worst >= x_ else 'MISSED'}")
    atomic_write_json(args.out, {
        "benchmark": "compact_training", "rows": rows, "bars": bars,
        "mm_gflops": {"median": gf, "start": ceil0, "end": ceil1},
        "provenance": provenance(settings={k: str(v) for k, v in vars(args).items()} | {"recipe": RECIPE},
                                 seed=0, device="cpu", wall_time_s=time.perf_counter() - start)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
