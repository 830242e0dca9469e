#!/usr/bin/env python
"""Training throughput of sharpminima's engine against the usual torchvision DataLoader loop.

For each model (LeNet-300-100 and LeNet-5 on MNIST, ResNet-32 on CIFAR-10), in one process:

(a) ours: one ``Trainer.train_epoch()`` of :mod:`sharpminima.training` over the first N training
    images (whole-data-set tensors, index batches, batched crop + flip for CIFAR-10), exactly
    the code path of the workflow's training jobs; no validation or test pass is timed;
(b) the usual loop: ``torchvision.datasets.MNIST`` / ``CIFAR10`` read from the same prepared
    folder, ``ToTensor`` + ``Normalize`` (+ ``RandomCrop(32, padding=4)`` and
    ``RandomHorizontalFlip`` for CIFAR-10), ``DataLoader(batch_size, shuffle=True,
    num_workers=0)`` over the same N images, the same model and initial weights, the same SGD
    recipe, the same per-batch loss / error bookkeeping (``.item()`` per batch);
(c) the compute ceiling: fp32 ``torch.mm`` of two large square matrices, same thread count,
    measured at the start and at the end of the run (MKL). Beside it, for reference only, the
    rate of one oneDNN 3x3 convolution of ResNet-32's shape: on an AVX-512 AMD CPU the two
    libraries differ by 2.5x, so a conv net can exceed 100 % of the torch.mm "ceiling";
(d) the achieved FLOP rate of each loop: 3 x forward FLOPs x samples/s, as a fraction of (c).
    "3 x forward" is the usual convention (backward = gradient w.r.t. inputs + w.r.t. weights,
    each about one forward). Only Linear and Conv2d layers are counted
    (``models.forward_flops``); autograd does not compute the input gradient of the first
    layer, so the convention overstates the work where the first layer dominates (LeNet-300:
    the exact count is 0.71 x the convention). The JSON holds both counts.

Samples/s are medians over ``--repeats`` timed epochs after a short warm-up; the two loops
alternate (ABBA...) so that drift of a shared machine hits both. Each timed epoch starts from
the same initial weights and a fresh optimizer.

Run from the repository root::

    python benchmarks/bench_training.py                       # all three models, ~3 min
    python benchmarks/bench_training.py --models lenet300 --samples 60000

The data sets are prepared (md5-checked) into ``--data-dir`` from ``--mirror`` (default: the
offline mirror ``../shared/datasets`` when it exists, else torchvision's download).
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from sharpminima.provenance import cpu_sample, others_fraction  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
_log = logging.getLogger("benchmarks.bench_training")

# The dense recipes of config.yaml's panels (batch size and optimiser are what matter here).
MODELS = {
    "lenet300": dict(dataset="mnist", samples=30000,
                     recipe=dict(epochs=1, batch_size=100, lr=0.1, momentum=0.9, weight_decay=0.0)),
    "lenet5": dict(dataset="mnist", samples=6000,
                   recipe=dict(epochs=1, batch_size=100, lr=0.1, momentum=0.9, weight_decay=0.0)),
    "resnet32": dict(dataset="cifar10", samples=2048,
                     recipe=dict(epochs=1, batch_size=128, lr=0.1, momentum=0.9, weight_decay=1e-4)),
}

# The targets on the 2-core development CPU.
TARGETS = {
    "lenet300": ("ratio", 5.0),
    "lenet5": ("ceiling_fraction", 0.60),
    "resnet32": ("ceiling_fraction", 0.80),
}


# --------------------------------------------------------------------------------------------
# Load of other processes (the development machine is shared)
# --------------------------------------------------------------------------------------------


def wait_quiet(max_wait: float, limit: float = 0.1) -> float | None:
    """Wait (at most max_wait s) until other processes use < limit of the CPUs over 1 s."""
    frac, end = None, time.time() + max_wait
    while True:
        b = cpu_sample()
        time.sleep(1.0)
        frac = others_fraction(b, cpu_sample(), 1.0)
        if frac is None or frac < limit or time.time() >= end:
            return frac


# --------------------------------------------------------------------------------------------
# Ceiling
# --------------------------------------------------------------------------------------------


def mm_ceiling(n: int = 2048, repeats: int = 10) -> dict:
    """fp32 GFLOP/s of torch.mm on two n x n matrices (2 n^3 FLOPs per product), product by
    product on the benchmark's own threads: the ceiling a training loop's rate is a share of.
    Not ``provenance.mm_gflops``, the day's speed stated beside every timing (1024^2 on two
    threads, one mean), which stays comparable from day to day whatever a benchmark sets."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g)
    b = torch.randn(n, n, generator=g)
    c = torch.empty(n, n)
    for _ in range(3):
        torch.mm(a, b, out=c)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        rates.append(2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return {"n": n, "gflops_median": statistics.median(rates), "gflops_max": max(rates),
            "gflops_all": [round(r, 2) for r in rates]}


def conv_reference(repeats: int = 20) -> dict:
    """fp32 GFLOP/s of one forward 3x3 convolution of ResNet-32's last stage (batch 128,
    64 -> 64 channels, 8 x 8), channels_last: what oneDNN reaches on a conv-friendly shape.
    Recorded beside the torch.mm ceiling because the two use different libraries (MKL for
    torch.mm, oneDNN for convolutions), which need not reach the same rate on a given CPU."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 64, 8, 8, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 3, 3, generator=g).contiguous(memory_format=torch.channels_last)
    flops = 2 * 128 * 64 * 64 * 8 * 8 * 9
    with torch.no_grad():
        for _ in range(3):
            F.conv2d(x, w, padding=1)
        rates = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            F.conv2d(x, w, padding=1)
            rates.append(flops / (time.perf_counter() - t0) / 1e9)
    return {"shape": "128x64x8x8, 64x64x3x3, pad 1, channels_last",
            "gflops_median": statistics.median(rates)}


# --------------------------------------------------------------------------------------------
# The two loops
# --------------------------------------------------------------------------------------------


def our_epoch(model, data, recipe, seed: int, info: dict | None = None) -> float:
    """Seconds of one Trainer.train_epoch() over data.train (the engine's code path)."""
    from sharpminima.training import Trainer

    trainer = Trainer(model, data, recipe, seed=seed, device="cpu",
                      augment=data.augment_batch if data.augment else None)
    t0 = time.perf_counter()
    trainer.train_epoch()
    dt = time.perf_counter() - t0
    if info is not None:  # the layout the engine trains conv weights in
        w = [p for p in trainer.model.parameters() if p.dim() == 4]
        info["engine_conv_weights"] = None if not w else (
            "channels_last" if not w[0].is_contiguous()
            and w[0].is_contiguous(memory_format=torch.channels_last) else "contiguous")
    return dt


def torchvision_dataset(dataset: str, data_dir: Path, n: int):
    import torchvision.datasets as tvd
    import torchvision.transforms as T
    from torch.utils.data import Subset

    from sharpminima.data import DATASETS

    spec = DATASETS[dataset]
    norm = [T.ToTensor(), T.Normalize(spec.mean, spec.std)]
    if dataset == "mnist":
        ds = tvd.MNIST(str(data_dir), train=True, download=False, transform=T.Compose(norm))
    elif dataset == "cifar10":
        aug = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]
        ds = tvd.CIFAR10(str(data_dir), train=True, download=False, transform=T.Compose(aug + norm))
    else:
        raise ValueError(dataset)
    return Subset(ds, range(n))


def dataloader_epoch(model, dataset, recipe, seed: int) -> float:
    """Seconds of one epoch of the textbook loop: DataLoader(shuffle, num_workers=0) + SGD."""
    from torch.utils.data import DataLoader

    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    loader = DataLoader(dataset, batch_size=recipe.batch_size, shuffle=True, num_workers=0,
                        generator=torch.Generator().manual_seed(seed))
    model.train()
    t0 = time.perf_counter()
    loss_sum, wrong, n = 0.0, 0, 0
    for xb, yb in loader:
        opt.zero_grad(set_to_none=True)
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(yb)
        wrong += (out.argmax(1) != yb).sum().item()
        n += len(yb)
    if not math.isfinite(loss_sum / n):
        raise RuntimeError("the DataLoader loop diverged")
    return time.perf_counter() - t0


# --------------------------------------------------------------------------------------------
# One model
# --------------------------------------------------------------------------------------------


def exact_train_flops(model, input_shape) -> int:
    """3 x forward FLOPs minus the input-gradient of the first Linear/Conv layer, which
    autograd skips (the input needs no gradient)."""
    from sharpminima.models import forward_flops

    first = next(m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)))
    flops_first = []
    h = first.register_forward_hook(lambda m, i, o: flops_first.append(
        2 * m.in_features * m.out_features if isinstance(m, torch.nn.Linear)
        else 2 * m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups * o[0].numel()))
    try:
        fwd = forward_flops(model, input_shape)
    finally:
        h.remove()
    return 3 * fwd - flops_first[0]


def bench_model(name: str, n: int, args, data_dir: Path) -> dict:
    from sharpminima.data import DATASETS, PanelData, load_dataset
    from sharpminima.models import build_model, forward_flops
    from sharpminima.training import Recipe, seed_everything

    cfg = MODELS[name]
    spec = DATASETS[cfg["dataset"]]
    recipe = Recipe.from_dict(cfg["recipe"])
    x, y, _, _ = load_dataset(cfg["dataset"], data_dir)
    if n > len(x):
        raise SystemExit(f"--samples {n} for {name}: {cfg['dataset']} has {len(x)} training images")

    def panel(k: int) -> PanelData:
        empty = (x[:0], y[:0])
        return PanelData((x[:k].clone(), y[:k].clone()), empty, empty, spec.num_classes,
                         spec.name, spec.augment,
                         torch.tensor(spec.fill, dtype=torch.float32))

    data = panel(n)
    tv_data = torchvision_dataset(cfg["dataset"], data_dir, n)
    seed_everything(args.seed)
    init = build_model(name, num_classes=spec.num_classes)
    fwd = forward_flops(init, spec.input_shape)
    exact = exact_train_flops(init, spec.input_shape)

    # Warm-up: a few batches of each loop (allocator, oneDNN primitive caches, lazy imports).
    k = min(n, args.warmup_batches * recipe.batch_size)
    our_epoch(copy.deepcopy(init), panel(k), recipe, args.seed)
    dataloader_epoch(copy.deepcopy(init), torchvision_dataset(cfg["dataset"], data_dir, k),
                     recipe, args.seed)

    info: dict = {}
    ours, theirs = [], []
    others = {"ours": [], "dataloader": []}
    for r in range(args.repeats):
        runs = [("ours", ours), ("dataloader", theirs)]
        if r % 2:
            runs.reverse()
        for which, acc in runs:
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
            model = copy.deepcopy(init)
            before = cpu_sample()
            if which == "ours":
                dt = our_epoch(model, data, recipe, args.seed + r, info)
            else:
                dt = dataloader_epoch(model, tv_data, recipe, args.seed + r)
            busy = others_fraction(before, cpu_sample(), dt)
            others[which].append(None if busy is None else round(busy, 3))
            acc.append(n / dt)
            _log.info(f"  {name} repeat {r + 1}/{args.repeats} {which:<10} {dt:7.2f} s "
                      f"{n / dt:9.0f} samples/s"
                      + ("" if busy is None else f"  (other processes: {100 * busy:.0f} % of the CPUs)"))
    return {
        "dataset": cfg["dataset"],
        "samples": n,
        "recipe": recipe.to_dict(),
        "forward_flops_per_sample": fwd,
        "train_flops_per_sample": 3 * fwd,
        "train_flops_per_sample_exact": exact,
        "ours_samples_per_s": statistics.median(ours),
        "dataloader_samples_per_s": statistics.median(theirs),
        "ours_all": [round(v, 1) for v in ours],
        "dataloader_all": [round(v, 1) for v in theirs],
        "other_processes_cpu_fraction": others,
        **info,
    }


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse_samples(text: str | None, models: list[str]) -> dict[str, int]:
    out = {m: MODELS[m]["samples"] for m in models}
    if not text:
        return out
    if "=" not in text:
        return {m: int(text) for m in models}
    for part in text.split(","):
        key, _, val = part.partition("=")
        if key not in out:
            raise SystemExit(f"--samples: {key!r} is not among --models {models}")
        out[key] = int(val)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated subset of %(default)s")
    p.add_argument("--samples", default=None,
                   help="training images per timed epoch: one number for every model, or "
                   "name=N,... (defaults: " + ", ".join(f"{k}={v['samples']}" for k, v in MODELS.items()) + ")")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per loop (median; default %(default)s)")
    p.add_argument("--warmup-batches", type=int, default=5, help="untimed batches per loop first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                   help="before each timed epoch wait up to S seconds for other processes to "
                   "use < 10 %% of the CPUs (default: no wait; their load is recorded anyway)")
    p.add_argument("--mm-size", type=int, default=2048, help="matrix size of the ceiling")
    p.add_argument("--malloc-tuned", action="store_true",
                   help="mallopt(M_MMAP_MAX=0, M_TRIM_THRESHOLD=2^31-1) at start "
                   "(sharpminima.landscape.tune_malloc)")
    p.add_argument("--data-dir", type=Path, default=REPO / "resources" / "benchmark-data")
    default_mirror = REPO.parent / "shared" / "datasets"
    p.add_argument("--mirror", type=Path, default=default_mirror if default_mirror.is_dir() else None,
                   help="offline mirror of the data sets (default %(default)s)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "training.json")
    args = p.parse_args(argv)
    from sharpminima import LOG_DATEFMT, LOG_FORMAT

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt=LOG_DATEFMT)  # stderr

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; known: {list(MODELS)}")
    samples = parse_samples(args.samples, models)

    from sharpminima.landscape import tune_malloc

    start = time.perf_counter()
    malloc = tune_malloc() if args.malloc_tuned else False
    torch.set_num_threads(args.threads)

    from sharpminima.data import prepare_dataset
    from sharpminima.provenance import atomic_write_json, provenance

    for ds in sorted({MODELS[m]["dataset"] for m in models}):
        prepare_dataset(ds, args.data_dir, mirror=args.mirror)

    _log.info(f"ceiling: torch.mm {args.mm_size}^2 fp32, {torch.get_num_threads()} threads")
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    ceil_start = mm_ceiling(args.mm_size)
    conv_ref = conv_reference()
    results = {}
    for m in models:
        _log.info(f"{m}: {samples[m]} samples, {args.repeats} repeats")
        results[m] = bench_model(m, samples[m], args, args.data_dir)
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    ceil_end = mm_ceiling(args.mm_size)
    ceiling = statistics.median(ceil_start["gflops_all"] + ceil_end["gflops_all"])

    for name, r in results.items():
        r["ratio"] = r["ours_samples_per_s"] / r["dataloader_samples_per_s"]
        for which in ("ours", "dataloader"):
            gf = r["train_flops_per_sample"] * r[f"{which}_samples_per_s"] / 1e9
            r[f"{which}_gflops"] = gf
            r[f"{which}_ceiling_fraction"] = gf / ceiling
            r[f"{which}_ceiling_fraction_exact"] = (
                r["train_flops_per_sample_exact"] * r[f"{which}_samples_per_s"] / 1e9 / ceiling)
        kind, target = TARGETS[name]
        value = r["ratio"] if kind == "ratio" else r["ours_ceiling_fraction"]
        r["target"] = {"metric": kind, "at_least": target, "value": value, "met": value >= target}

    # Table
    print(f"\nceiling: torch.mm fp32 {args.mm_size}x{args.mm_size}, {torch.get_num_threads()} threads: "
          f"{ceiling:.1f} GFLOP/s (start {ceil_start['gflops_median']:.1f}, "
          f"end {ceil_end['gflops_median']:.1f}){'; malloc tuned' if malloc else ''}")
    print(f"reference: oneDNN 3x3 conv (ResNet-32 stage 3 shape) {conv_ref['gflops_median']:.1f} "
          "GFLOP/s (not the ceiling; see benchmarks/README.md)")
    print("training FLOPs = 3 x forward (Linear + Conv2d); samples/s = median of "
          f"{args.repeats} epochs\n")
    head = (f"{'model':<9} {'samples':>7} {'ours/s':>9} {'DataLoader/s':>12} {'ratio':>6} "
            f"{'ours GF/s':>9} {'ours %ceil':>10} {'DL %ceil':>8}  target")
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        t = r["target"]
        tgt = (f"ratio>={t['at_least']:g}" if t["metric"] == "ratio"
               else f">={100 * t['at_least']:.0f}% ceil")
        print(f"{name:<9} {r['samples']:>7} {r['ours_samples_per_s']:>9.0f} "
              f"{r['dataloader_samples_per_s']:>12.0f} {r['ratio']:>5.2f}x "
              f"{r['ours_gflops']:>9.1f} {100 * r['ours_ceiling_fraction']:>9.1f}% "
              f"{100 * r['dataloader_ceiling_fraction']:>7.1f}%  "
              f"{tgt} {'met' if t['met'] else 'MISSED'}")

    doc = {
        "benchmark": "training_throughput",
        "ceiling": {"gflops": ceiling, "start": ceil_start, "end": ceil_end,
                    "what": "fp32 torch.mm of two n x n matrices, 2 n^3 FLOPs"},
        "conv_reference": conv_ref,
        "flop_convention": "training FLOPs per sample = 3 x forward FLOPs of Linear and Conv2d "
                           "layers; *_exact omits the first layer's input gradient",
        "models": results,
        "provenance": provenance(
            settings={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
            | {"samples": samples, "malloc_tuned": malloc, "threads": torch.get_num_threads()},
            seed=args.seed, device="cpu", wall_time_s=time.perf_counter() - start),
    }
    atomic_write_json(args.out, doc)
    busy = [b for r in results.values() for v in r["other_processes_cpu_fraction"].values()
            for b in v if b is not None]
    if busy and max(busy) > 0.1:
        print(f"\nWARNING: other processes used up to {100 * max(busy):.0f} % of the CPUs during "
              "timed epochs; the numbers are unreliable (rerun on a quiet machine or with "
              "--wait-quiet 120)")
    print(f"\nwrote {args.out} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
