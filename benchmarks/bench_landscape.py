"""Benchmark of the landscape analyses at the paper's highest sparsity (LeNet-5, MNIST, 99.57 %).

Measures, in one run and as ratios (this machine is shared and noisy: the two sides of every
ratio are interleaved, ``--repeats`` times, and the medians compared):

- each plane map, compacted (default path) vs the dense point-by-point loop:
  ``loss``; ``psp_norm_mean_square + entropy1 + entropy2_agreement``; the maps must agree;
- PSP statistics at G: the vectorised one-pass accumulator (compacted, and dense) vs a
  straightforward per-layer-per-class loop (``psp.psp_statistics_loop``);
- Hessian top-5 at G on ``--hessian-samples`` training images: Lanczos (``eigsh``, compacted
  HVP) vs pyhessian 0.1 power iteration: time, Hessian-vector products, relative difference.

The sparse network: LeNet-5 trained briefly on real MNIST (``--mnist``, read from the gzip IDX
files with numpy; random data if missing), then global magnitude pruning of all prunable
parameters (weights and biases) to 99.57 %, which kills ~85 % of the neurons (the paper's
LOBSTER mask: 83.45 %); G = that network fine-tuned with the mask, 1-S = the mask rewound to
the initial weights and retrained (a short Frankle-and-Carbin). The trained networks are
cached in ``--cache`` (git-ignored) and reused unless ``--retrain``.

Usage: python benchmarks/bench_landscape.py --samples 5000 --grid 5 --hessian-samples 1000
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sharpminima import LOG_DATEFMT, LOG_FORMAT, quiet_logs  # noqa: E402
from sharpminima.compact import compact_model  # noqa: E402
from sharpminima.hessian import top_eigenvalues  # noqa: E402
from sharpminima.landscape import make_plane, map_plane, tune_malloc  # noqa: E402
from sharpminima.masks import Mask, prunable_parameters, sparsity_report  # noqa: E402
from sharpminima.models import build_model  # noqa: E402
from sharpminima.provenance import atomic_write_json, provenance  # noqa: E402
from sharpminima.psp import psp_statistics, psp_statistics_loop  # noqa: E402

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
PAPER_SPARSITY = 0.9957


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_mnist(root: Path):
    try:
        x = read_idx(root / "train-images-idx3-ubyte.gz")
        y = read_idx(root / "train-labels-idx1-ubyte.gz")
    except (OSError, ValueError) as exc:
        print(f"MNIST not readable under {root} ({exc}); random data instead", flush=True)
        g = torch.Generator().manual_seed(0)
        return torch.randn(20000, 1, 28, 28, generator=g), torch.randint(0, 10, (20000,), generator=g), False
    x = torch.from_numpy(x.copy()).float().div_(255).sub_(MNIST_MEAN).div_(MNIST_STD).unsqueeze(1)
    return x, torch.from_numpy(y.astype(np.int64)), True


def train(model, x, y, steps, lr=0.1, batch=100, mask=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    perm = torch.randperm(x.shape[0], generator=g)
    pos = 0
    for _ in range(steps):
        if pos + batch > perm.numel():
            perm = torch.randperm(x.shape[0], generator=g)
            pos = 0
        b = perm[pos:pos + batch]
        pos += batch
        loss = F.cross_entropy(model(x[b]), y[b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if mask is not None:
            mask.apply_to_grads(model)
        opt.step()
        if mask is not None:
            mask.apply(model)
    model.eval()
    return float(loss.detach())


def magnitude_mask(model, sparsity: float) -> Mask:
    params = prunable_parameters(model)
    allw = torch.cat([p.detach().abs().flatten() for p in params.values()])
    keep = int(round(allw.numel() * (1 - sparsity)))
    thr = torch.topk(allw, keep).values[-1]
    return Mask({n: p.detach().abs() >= thr for n, p in params.items()})


PAPER_PRUNED_NEURONS = 484  # 83.45 % of LeNet-5's 580 neurons at 99.57 % (paper Fig. 1b)
HIDDEN = ("conv1", "conv2", "fc1")
NEXT = {"conv1": "conv2", "conv2": "fc1", "fc1": "fc2"}


def kill_neurons(model, mask: Mask, target_pruned: int) -> Mask:
    """Prune whole hidden neurons (rows: incoming weights, bias, and their outgoing weights)
    with the smallest saliency ||w_in|| * ||w_out|| until ``target_pruned`` neurons of the
    network have no incoming weight."""
    mods = dict(model.named_modules())
    mask = Mask({k: v.clone() for k, v in mask.items()})
    scores, ids = [], []
    for name in HIDDEN:
        W = mods[name].weight.detach() * mask[f"{name}.weight"]
        Wn = mods[NEXT[name]].weight.detach() * mask[f"{NEXT[name]}.weight"]
        units = W.shape[0]
        if Wn.dim() == 4:
            out_norm = Wn.transpose(0, 1).flatten(1).norm(dim=1)
        else:
            out_norm = Wn.view(Wn.shape[0], units, -1).transpose(0, 1).reshape(units, -1).norm(dim=1)
        scores.append(W.flatten(1).norm(dim=1) * out_norm)
        ids += [(name, o) for o in range(units)]
    score = torch.cat(scores)
    pruned_now = sum(int((~mask[f"{n}.weight"].flatten(1).any(1)).sum()) for n in HIDDEN + ("fc2",))
    need = max(target_pruned - pruned_now, 0)
    order = torch.argsort(score)
    for t in order.tolist():
        if need <= 0:
            break
        name, o = ids[t]
        if not bool(mask[f"{name}.weight"][o].any()):
            continue
        mask[f"{name}.weight"][o] = False
        mask[f"{name}.bias"][o] = False
        nxt = NEXT[name]
        mw = mask[f"{nxt}.weight"]
        units = mask[f"{name}.weight"].shape[0]
        if mw.dim() == 4:
            mw[:, o] = False
        else:
            mw.view(mw.shape[0], units, -1)[:, o] = False
        need -= 1
    return mask


def magnitude_within(model, mask: Mask, sparsity: float) -> Mask:
    """Global magnitude pruning to ``sparsity`` among the entries ``mask`` keeps."""
    params = prunable_parameters(model)
    vals = torch.cat([(p.detach().abs() * mask[n]).flatten() for n, p in params.items()])
    keep = int(round(vals.numel() * (1 - sparsity)))
    thr = torch.topk(vals, keep).values[-1]
    return Mask({n: mask[n] & (p.detach().abs() >= thr) for n, p in params.items()})


def build_networks(args, x, y):
    cache = Path(args.cache.replace("{mask}", args.mask))
    if cache.exists() and not args.retrain:
        d = torch.load(cache, weights_only=True)
        G, S = build_model("lenet5"), build_model("lenet5")
        G.load_state_dict(d["G"])
        S.load_state_dict(d["S"])
        print(f"networks from the cache {cache}", flush=True)
        return G, S, Mask({k: v.bool() for k, v in d["mask"].items()}), d["info"]
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    model = build_model("lenet5")
    init = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, x, y, args.train_steps, seed=args.seed)
    if args.mask == "oneshot":
        # one-shot global magnitude pruning of all prunable parameters (weights and biases)
        mask = magnitude_mask(model, PAPER_SPARSITY)
        mask.apply(model)
        how = "one-shot global magnitude pruning to 99.57 % of all prunable parameters"
    else:
        # gradual global magnitude pruning, then whole neurons to the paper's neuron count
        mask = Mask.ones(model)
        for r, sp in enumerate((0.9, 0.97, 0.99, 0.994)):
            mask = magnitude_within(model, mask, sp)
            mask.apply(model)
            train(model, x, y, args.round_steps, lr=0.05, mask=mask, seed=args.seed + 10 + r)
        before = sparsity_report(model)["pruned_neurons_pct"]
        mask = kill_neurons(model, mask, PAPER_PRUNED_NEURONS)
        mask = magnitude_within(model, mask, PAPER_SPARSITY)
        mask.apply(model)
        how = ("gradual global magnitude pruning (90, 97, 99, 99.4 %, "
               f"{args.round_steps} steps each; {before:.1f} % neurons pruned at 99.4 %), then whole "
               f"hidden neurons of least saliency |w_in||w_out| to the paper's {PAPER_PRUNED_NEURONS}/580, "
               "then global magnitude to 99.57 %")
    report = sparsity_report(model)
    print(f"{how}: {report['pruned_params_pct']:.2f} % parameters, "
          f"{report['pruned_neurons_pct']:.2f} % neurons pruned", flush=True)
    G = model
    train(G, x, y, args.finetune_steps, lr=0.05, mask=mask, seed=args.seed + 1)
    S = build_model("lenet5")
    S.load_state_dict(init)
    mask.apply(S)
    train(S, x, y, args.train_steps, mask=mask, seed=args.seed + 2)
    info = {"mask": args.mask, "pruning": how, "train_steps": args.train_steps,
            "finetune_steps": args.finetune_steps, "train_seconds": time.perf_counter() - t0,
            "sparsity_G": sparsity_report(G), "sparsity_S": sparsity_report(S)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"G": G.state_dict(), "S": S.state_dict(), "mask": mask.state_dict(), "info": info}, cache)
    return G, S, mask, info


def wait_quiet(max_s: float, below: float = 1.5) -> float:
    """Wait up to ``max_s`` seconds for the 1-minute load average to drop below ``below``
    (other jobs on a shared 2-core machine distort every timing); returns the load then."""
    t0 = time.time()
    while max_s > 0 and os.getloadavg()[0] >= below and time.time() - t0 < max_s:
        time.sleep(5)
    return os.getloadavg()[0]


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def interleaved(fns: dict, repeats: int) -> tuple[dict, dict, dict]:
    """One untimed warm-up call of every function, then ``repeats`` timed calls, round robin.
    Returns (best time, median time, last outputs). Ratios use the best times: on a shared
    machine the minimum is the measurement least disturbed by other processes."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    outs = {}
    for _ in range(repeats):
        for k, fn in fns.items():
            t, outs[k] = timed(fn)
            times[k].append(t)
    return ({k: min(v) for k, v in times.items()},
            {k: statistics.median(v) for k, v in times.items()}, outs)


def max_rel_diff(df1, df2, cols):
    out = {}
    for c in cols:
        a = df1[c].to_numpy(dtype=float)
        b = df2[c].to_numpy(dtype=float)
        out[c] = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=5000, help="training images for the maps")
    ap.add_argument("--grid", type=int, default=5, help="grid resolution (grid x grid points)")
    ap.add_argument("--hessian-samples", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats (medians)")
    ap.add_argument("--hessian-repeats", type=int, default=2)
    ap.add_argument("--wait-quiet", type=float, default=0.0,
                    help="before each block, wait up to this many seconds for load average < 1.5")
    ap.add_argument("--train-steps", type=int, default=600, help="SGD steps (batch 100) before pruning")
    ap.add_argument("--finetune-steps", type=int, default=600)
    ap.add_argument("--round-steps", type=int, default=150, help="fine-tuning steps per gradual pruning round")
    ap.add_argument("--mask", choices=("paper", "oneshot"), default="paper",
                    help="paper: gradual magnitude pruning + whole neurons to the paper's 83.45 %% "
                         "neurons; oneshot: one-shot global magnitude pruning")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--mnist", default=str(ROOT.parent / "shared/datasets/MNIST/raw"))
    ap.add_argument("--cache", default=str(ROOT / "benchmarks/results/lenet5_99.57_{mask}_cache.pt"))
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--no-malloc-tune", action="store_true")
    ap.add_argument("--skip-pyhessian", action="store_true")
    ap.add_argument("--blocks", default="maps,psp,hessian",
                    help="comma-separated subset of maps, psp, hessian to measure")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/landscape.json"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt=LOG_DATEFMT)  # stderr

    t_start = time.perf_counter()
    malloc = False if args.no_malloc_tune else tune_malloc()
    if args.threads:
        torch.set_num_threads(args.threads)
    x, y, real = load_mnist(Path(args.mnist))
    G, S, mask, net_info = build_networks(args, x, y)
    xs, ys = x[: args.samples], y[: args.samples]
    rep = sparsity_report(G)
    cnet, cinfo = compact_model(G, mask)
    with torch.no_grad():
        acc_g = sum(int((G(xs[i:i + 1000]).argmax(1) == ys[i:i + 1000]).sum())
                    for i in range(0, xs.shape[0], 1000)) / xs.shape[0]
    print(f"G: {rep['pruned_params_pct']:.2f} % params, {rep['pruned_neurons_pct']:.2f} % neurons pruned; "
          f"units computed after compaction {cinfo['alive_units']}/{cinfo['units']}; "
          f"train acc on the map samples {acc_g}", flush=True)

    results = {"setting": {
        "model": "lenet5", "data": "MNIST train" if real else "random", "samples": args.samples,
        "grid": args.grid, "hessian_samples": args.hessian_samples, "batch_size": args.batch_size,
        "repeats": args.repeats, "malloc_tuned": malloc, "threads": torch.get_num_threads(),
        "sparsity": rep, "compaction": cinfo, "networks": net_info, "train_accuracy_G": acc_g,
        "load_average_start": list(os.getloadavg()), "timing": "best of --repeats interleaved runs after a warm-up"}}

    plane = make_plane(G.state_dict(), S.state_dict(), mask, seed=args.seed, res_a=args.grid, res_b=args.grid)

    blocks = set(args.blocks.split(","))
    maps, loads, hess = {}, {}, {}
    if "maps" in blocks:
        # ---- maps: compacted vs dense loop
        for label, q in (("loss", ("loss",)),
                         ("psp", ("psp_norm_mean_square", "entropy1", "entropy2_agreement"))):
            loads[f"map_{label}"] = wait_quiet(args.wait_quiet)
            with quiet_logs("sharpminima.landscape"):  # no per-row progress lines while timed
                med, median, outs = interleaved({
                    "compact": lambda q=q: map_plane(build_model("lenet5"), plane, xs, ys, q,
                                                     args.batch_size, compact=True),
                    "dense": lambda q=q: map_plane(build_model("lenet5"), plane, xs, ys, q,
                                                   args.batch_size, compact=False),
                }, args.repeats)
            diff = max_rel_diff(outs["compact"], outs["dense"], list(q))
            maps[label] = {"quantities": list(q), "compact_s": med["compact"], "dense_s": med["dense"],
                           "speedup": med["dense"] / med["compact"], "max_rel_diff": diff,
                           "median_s": median, "points": args.grid * args.grid}
            print(f"map {label}: compact {med['compact']:.2f} s, dense {med['dense']:.2f} s, "
                  f"x{med['dense'] / med['compact']:.1f}; max rel diff {diff}", flush=True)
        results["maps"] = maps

    if "psp" in blocks:
        # ---- PSP statistics at G: vectorised one pass vs per-layer-per-class loop
        loads["psp_stats"] = wait_quiet(args.wait_quiet)
        med, median, outs = interleaved({
            "vectorised_compact": lambda: psp_statistics(cnet, xs, ys, 10, args.batch_size),
            "vectorised_dense": lambda: psp_statistics(G, xs, ys, 10, args.batch_size),
            "loop": lambda: psp_statistics_loop(G, xs, ys, 10, args.batch_size),
        }, args.repeats)
        keys = ("psp_norm_mean_square", "entropy1", "entropy2_agreement")
        pdiff = {k: abs(outs["vectorised_compact"][k] - outs["loop"][k]) / max(abs(outs["loop"][k]), 1e-12)
                 for k in keys}
        results["psp_entropy"] = {
            "loop_s": med["loop"], "vectorised_compact_s": med["vectorised_compact"],
            "vectorised_dense_s": med["vectorised_dense"],
            "speedup_compact": med["loop"] / med["vectorised_compact"],
            "speedup_dense": med["loop"] / med["vectorised_dense"],
            "max_rel_diff": pdiff, "median_s": median,
            "values": {k: outs["vectorised_compact"][k] for k in keys}}
        print(f"PSP stats: loop {med['loop']:.2f} s, vectorised dense {med['vectorised_dense']:.2f} s "
              f"(x{med['loop'] / med['vectorised_dense']:.1f}), vectorised compact "
              f"{med['vectorised_compact']:.3f} s (x{med['loop'] / med['vectorised_compact']:.1f}); rel diff {pdiff}",
              flush=True)

    if "hessian" in blocks:
        # ---- Hessian top-5 at G
        xh, yh = x[: args.hessian_samples], y[: args.hessian_samples]
        fns = {"lanczos": lambda: top_eigenvalues(G, mask, xh, yh, k=5, solver="lanczos", seed=args.seed),
               "lanczos_dense": lambda: top_eigenvalues(G, mask, xh, yh, k=5, solver="lanczos", seed=args.seed,
                                                        compact=False)}
        if not args.skip_pyhessian:
            fns["pyhessian"] = lambda: top_eigenvalues(G, mask, xh, yh, k=5, solver="pyhessian", seed=args.seed)
        # no warm-up run for the Hessian (pyhessian alone takes ~1 min): a small untimed call first
        for fn in (lambda: top_eigenvalues(G, mask, xh[:50], yh[:50], k=5, seed=args.seed),
                   lambda: top_eigenvalues(G, mask, xh[:50], yh[:50], k=5, seed=args.seed, compact=False)):
            fn()
        loads["hessian"] = wait_quiet(args.wait_quiet)
        times = {k: [] for k in fns}
        outs = {}
        for _ in range(args.hessian_repeats):
            for k, fn in fns.items():
                t, outs[k] = timed(fn)
                times[k].append(t)
        med = {k: min(v) for k, v in times.items()}
        for k in fns:
            hess[k] = {"seconds": med[k], "values": outs[k][0], "n_hvp": outs[k][1]}
        if "pyhessian" in hess:
            lv = np.array(hess["lanczos"]["values"])
            pv = np.array(hess["pyhessian"]["values"])
            hess["speedup"] = med["pyhessian"] / med["lanczos"]
            hess["speedup_dense_hvp"] = med["pyhessian"] / med["lanczos_dense"]
            hess["rel_diff_top5"] = [float(v) for v in np.abs(lv - pv) / np.abs(lv)]
            hess["max_rel_diff_top5"] = float(np.max(np.abs(lv - pv) / np.abs(lv)))
        results["hessian"] = hess
        for k in fns:
            print(f"Hessian {k}: {med[k]:.2f} s, {outs[k][1]} HVPs, top-5 {np.round(outs[k][0], 4).tolist()}",
                  flush=True)

    # ---- table
    print()
    print(f"{'measure':44s} {'ours (s)':>10s} {'reference (s)':>14s} {'ratio':>7s} {'target':>7s}")
    rows = []
    if maps:
        rows += [
            ("loss map (compact vs dense loop)", maps["loss"]["compact_s"], maps["loss"]["dense_s"], 5),
            ("PSP maps (norm+H1+H2; compact vs dense)", maps["psp"]["compact_s"], maps["psp"]["dense_s"], 5),
        ]
    if "psp_entropy" in results:
        pe = results["psp_entropy"]
        rows += [
            ("PSP stats (vectorised compact vs loop)", pe["vectorised_compact_s"], pe["loop_s"], 10),
            ("PSP stats (vectorised dense vs loop)", pe["vectorised_dense_s"], pe["loop_s"], None),
        ]
    if "pyhessian" in hess:
        rows.append(("Hessian top-5 (lanczos vs pyhessian)", hess["lanczos"]["seconds"],
                     hess["pyhessian"]["seconds"], 3))
    for name, ours, ref, target in rows:
        print(f"{name:44s} {ours:10.3f} {ref:14.3f} {ref / ours:7.1f} {('>=' + str(target)) if target else '':>7s}")
    if "pyhessian" in hess:
        print(f"Hessian HVPs: lanczos {hess['lanczos']['n_hvp']}, pyhessian {hess['pyhessian']['n_hvp']}; "
              f"max rel diff of top-5 {hess['max_rel_diff_top5']:.2e}")
    results["load_average_end"] = list(os.getloadavg())
    results["load_average_before_blocks"] = loads
    results["provenance"] = provenance(settings=vars(args), seed=args.seed, device="cpu",
                                       wall_time_s=time.perf_counter() - t_start)
    atomic_write_json(args.out, results)
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
