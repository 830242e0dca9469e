"""The plane around the sparsest solutions and the maps on it (paper Fig. 2a, 2b, 3, 4a, 4b).

Plane (docs/methods.md §3, **decision**): origin ``G`` (the LOBSTER solution),
``u = theta(1-S) - theta(G)``, ``v`` = Gaussian noise on the mask's support, made orthogonal to
``u`` (Gram-Schmidt) and scaled to ``|u|``. A point is

    theta(a, b) = theta(G) + a u + b v,   a in a_range (default [-0.5, 1.5]), b in b_range ([-1, 1])

computed in float64 as ``(1 - a) theta(G) + a theta(1-S) + b v`` (the same point), then cast
to the parameters' dtype, so that ``(0, 0)`` is ``G`` and ``(1, 0)`` is ``1-S`` *bit for bit*.

- Only the mask's parameters (the prunable ones) move. Every other entry of the state (non-
  prunable parameters and buffers) that :func:`plane_point` returns is taken from ``G``; the
  maps then replace the BatchNorm running statistics (below). ``G`` and ``1-S`` must be zero
  off the mask (they share it: 1-S retrains G's mask), so every point of the plane is zero off
  the mask too and lives in the mask's subspace.
- ``v``: one ``torch.Generator`` seeded with ``seed``, a float64 normal draw of each mask
  tensor's full shape in the mask's key order, times the mask.
- Grid: ``a_i = a0 + (a1 - a0) i / (res_a - 1)`` in float64, and likewise ``b_j``; values within
  1e-12 of 0 or 1 are snapped to exactly 0 / 1. G and 1-S are grid points when
  ``(res_a - 1)`` is a multiple of 4 with the default range (and ``res_b`` odd);
  ``meta["g_index"]`` / ``meta["s_index"]`` say where (or None).

**BatchNorm at a point** (docs/methods.md §3, **decision**, as the loss-landscape code of Li et
al. 2018): a point's BatchNorm statistics are those of the network at that point, not G's.
Before a point is evaluated (:func:`map_plane`, :func:`map_hessian`),
:func:`recalibrate_batchnorm` re-estimates the running mean and variance of every BatchNorm
layer that tracks them, on the first ``bn_samples`` samples of the map's data (default: all of
them) in consecutive batches of ``bn_batch_size`` (default: the map's ``batch_size``;
:func:`map_hessian`: one batch, as its loss); then the point is evaluated in eval mode. The
estimate depends only on the point's parameters and on the data, and ``(0, 0)`` / ``(1, 0)``
*are* G / 1-S bit for bit, so the numbers at ``(0, 0)`` and ``(1, 0)`` are exactly those of G
and 1-S after the same recalibration on the same data (not those of G and 1-S with the
statistics stored at the end of their training). A model without BatchNorm is evaluated as it
is: no extra pass, the same numbers as without the rule.

The plane is made once (:func:`make_plane`), saved (:meth:`Plane.save`, atomic), and every map
reads the same file. Maps: :func:`map_plane` (loss, error in %, PSP norm, PSP entropies, one
pass per point) and :func:`map_hessian` (top-k Hessian eigenvalues per point).

Speed: by default the maps evaluate a dead-neuron-compacted network (``compact.py``), exact for
the chain networks (LeNet-300, LeNet-5); for other architectures they fall back to the dense
point-by-point loop (``compact=False``), which is also the reference of tests and benchmarks.
Call :func:`tune_malloc` at the start of a process that evaluates large batches.
"""

from __future__ import annotations

import ctypes
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch
import torch.nn as nn

from .compact import compact_model
from .provenance import atomic_torch_save
from .psp import DEFAULT_JOINT_MAX_PAIRS, QUANTITIES, hidden_layers, measure

__all__ = ["Plane", "make_plane", "plane_point", "map_plane", "map_hessian", "tune_malloc",
           "recalibrate_batchnorm", "batchnorm_layers", "QUANTITIES", "PLANE_FORMAT"]

PLANE_FORMAT = "sharpminima.plane/1"
_log = logging.getLogger(__name__)

def tune_malloc() -> bool:
    """Keep glibc from returning large freed blocks to the OS (``M_MMAP_MAX = 0``,
    ``M_TRIM_THRESHOLD = 2**31 - 1``), as ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...`` in
    the environment would: 1.5-2x for large-batch evaluation and Hessian-vector products on
    this CPU (benchmarks/README.md, `--malloc-tuned`). Returns True when applied (glibc only)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok1 = libc.mallopt(-4, 0)  # M_MMAP_MAX
        ok2 = libc.mallopt(-1, 2**31 - 1)  # M_TRIM_THRESHOLD
        return bool(ok1) and bool(ok2)
    except (OSError, AttributeError):
        return False


# --------------------------------------------------------------------------------------------
# the plane


def _grid(lo: float, hi: float, res: int) -> torch.Tensor:
    if res < 1:
        raise ValueError("resolution must be >= 1")
    if res == 1:
        g = torch.tensor([float(lo)], dtype=torch.float64)
    else:
        i = torch.arange(res, dtype=torch.float64)
        g = lo + (hi - lo) * i / (res - 1)
    for exact in (0.0, 1.0):
        g = torch.where((g - exact).abs() < 1e-12, torch.full_like(g, exact), g)
    return g


def _index_of(g: torch.Tensor, value: float):
    hit = torch.nonzero(g == value).flatten()
    return int(hit[0]) if hit.numel() else None


@dataclass
class Plane:
    """The plane: ``origin`` = theta(G) (the full state dict: parameters and buffers),
    ``end`` = theta(1-S) on the mask's keys, ``u = end - origin`` and ``v`` (float64, mask's
    keys), ``mask``, the grid axes ``a`` and ``b`` (float64) and ``meta`` (JSON-able).

    ``origin``'s buffers are G's as stored at the end of its training. :func:`plane_point`
    returns them at every point and the maps load them, but for a model with BatchNorm the
    maps then re-estimate the running statistics at each point (:func:`recalibrate_batchnorm`),
    so G's stored statistics enter no map; they stay in the file as G's own state (what G
    computes as trained). Other buffers (none in the registry's models) are G's at every
    point."""

    origin: dict
    end: dict
    u: dict
    v: dict
    mask: dict
    a: torch.Tensor
    b: torch.Tensor
    meta: dict = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return list(self.mask)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.a.numel()), int(self.b.numel()))

    def points(self) -> list[tuple[int, int, float, float]]:
        """All grid points ``(i, j, a, b)``, rows over ``a``."""
        return [(i, j, float(a), float(b)) for i, a in enumerate(self.a) for j, b in enumerate(self.b)]

    def state_dict(self) -> dict:
        return {
            "format": PLANE_FORMAT,
            "origin": {k: v.cpu() for k, v in self.origin.items()},
            "end": {k: v.cpu() for k, v in self.end.items()},
            "u": {k: v.cpu() for k, v in self.u.items()},
            "v": {k: v.cpu() for k, v in self.v.items()},
            "mask": {k: v.cpu().bool() for k, v in self.mask.items()},
            "a": self.a.cpu(),
            "b": self.b.cpu(),
            "meta": dict(self.meta),
        }

    def save(self, path) -> None:
        atomic_torch_save(self.state_dict(), path)

    @classmethod
    def load(cls, path, map_location="cpu") -> "Plane":
        d = torch.load(Path(path), map_location=map_location, weights_only=True)
        if d.get("format") != PLANE_FORMAT:
            raise ValueError(f"{path}: not a plane file ({d.get('format')!r} != {PLANE_FORMAT!r})")
        return cls(origin=d["origin"], end=d["end"], u=d["u"], v=d["v"], mask=d["mask"],
                   a=d["a"], b=d["b"], meta=d["meta"])


def _as_state(theta) -> dict:
    if isinstance(theta, nn.Module):
        theta = theta.state_dict()
    return {k: v.detach().cpu().clone() for k, v in theta.items()}


def make_plane(theta_g: Mapping[str, torch.Tensor] | nn.Module,
               theta_s: Mapping[str, torch.Tensor] | nn.Module,
               mask: Mapping[str, torch.Tensor], seed: int, res_a: int, res_b: int,
               a_range: tuple[float, float] = (-0.5, 1.5), b_range: tuple[float, float] = (-1.0, 1.0),
               meta: dict | None = None) -> Plane:
    """Build the plane through ``G = theta_g`` and ``1-S = theta_s`` (state dicts, or modules)
    for ``mask`` (``name -> bool tensor``; the moving parameters). See the module docstring."""
    G = _as_state(theta_g)
    S = _as_state(theta_s)
    mask = {k: m.detach().cpu().bool() for k, m in mask.items()}
    missing = [k for k in mask if k not in G or k not in S]
    if missing:
        raise KeyError(f"mask entries missing from theta_g/theta_s: {missing[:5]}")
    for name, th in (("theta_g", G), ("theta_s", S)):
        off = [k for k in mask if bool((th[k][~mask[k]] != 0).any())]
        if off:
            raise ValueError(f"{name} is non-zero off the mask in {off[:5]}: not in the mask's subspace")
    gen = torch.Generator().manual_seed(int(seed))
    u = {k: S[k].double() - G[k].double() for k in mask}
    noise = {k: torch.randn(mask[k].shape, generator=gen, dtype=torch.float64) * mask[k] for k in mask}
    uu = sum(float((t * t).sum()) for t in u.values())
    if uu == 0.0:
        raise ValueError("theta_g and theta_s coincide on the mask: u = 0")
    nu = sum(float((noise[k] * u[k]).sum()) for k in mask)
    v = {k: noise[k] - (nu / uu) * u[k] for k in mask}
    # second Gram-Schmidt pass: orthogonality to float64 rounding
    vu = sum(float((v[k] * u[k]).sum()) for k in mask)
    v = {k: v[k] - (vu / uu) * u[k] for k in mask}
    vv = sum(float((t * t).sum()) for t in v.values())
    scale = math.sqrt(uu / vv)
    v = {k: t * scale for k, t in v.items()}
    a = _grid(a_range[0], a_range[1], res_a)
    b = _grid(b_range[0], b_range[1], res_b)
    norm_u = math.sqrt(uu)
    norm_v = math.sqrt(sum(float((t * t).sum()) for t in v.values()))
    dot = sum(float((v[k] * u[k]).sum()) for k in mask)
    gi, gj = _index_of(a, 0.0), _index_of(b, 0.0)
    si = _index_of(a, 1.0)
    m = {
        "format": PLANE_FORMAT,
        "seed": int(seed),
        "res_a": int(res_a),
        "res_b": int(res_b),
        "a_range": [float(a_range[0]), float(a_range[1])],
        "b_range": [float(b_range[0]), float(b_range[1])],
        "keys": list(mask),
        "support": int(sum(int(t.sum()) for t in mask.values())),
        "params_total": int(sum(t.numel() for t in mask.values())),
        "norm_u": norm_u,
        "norm_v": norm_v,
        "cos_uv": dot / (norm_u * norm_v),
        "g_index": None if gi is None or gj is None else [gi, gj],
        "s_index": None if si is None or gj is None else [si, gj],
        "point_formula": "(1-a)*G + a*S + b*v in float64, cast to the parameter dtype",
        "non_prunable": "taken from G (origin)",
    }
    if meta:
        m.update(meta)
    return Plane(origin=G, end={k: S[k] for k in mask}, u=u, v=v, mask=mask, a=a, b=b, meta=m)


def plane_point(plane: Plane, a: float, b: float, device=None) -> dict[str, torch.Tensor]:
    """The full state dict at ``theta(a, b)`` (the mask's entries move; the rest, buffers
    included, is G: the maps re-estimate BatchNorm statistics after loading it)."""
    a = float(a)
    b = float(b)
    out = {}
    for k, g in plane.origin.items():
        if k in plane.mask:
            s = plane.end[k]
            t = (1.0 - a) * g.double() + a * s.double() + b * plane.v[k]
            t = t.to(g.dtype)
        else:
            t = g
        out[k] = t if device is None else t.to(device)
    return out


# --------------------------------------------------------------------------------------------
# BatchNorm statistics at a point


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers of ``model`` that keep running statistics (the ones eval mode
    reads, and :func:`recalibrate_batchnorm` re-estimates)."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int | None = None) -> int:
    """Re-estimate the running statistics of every BatchNorm layer of ``model`` (those of
    :func:`batchnorm_layers`) from the samples ``x``, at the model's current parameters.

    Definition: each such layer's running statistics are reset (mean 0, variance 1, counter
    0) and its momentum set to ``None`` (cumulative average); with the BatchNorm layers in
    train mode and every other module in eval mode (so that dropout and the like stay off),
    ``x`` is passed forward without gradients in consecutive batches of ``batch_size``
    samples (``None``: one batch). The running mean is then the mean over the batches of the
    batch means, the running variance the mean over the batches of the (unbiased) batch
    variances; with one batch, the sample mean and unbiased variance of ``x``. Momenta and
    every module's train/eval mode are restored afterwards. Deterministic: the same
    parameters and ``x`` give the same statistics. (``torch.optim.swa_utils.update_bn`` does
    the same with the whole model in train mode.)

    Returns the number of layers re-estimated; 0, and nothing is run, for a model without
    BatchNorm."""
    bns = batchnorm_layers(model)
    if not bns:
        return 0
    n = int(x.shape[0])
    if n == 0:
        raise ValueError("recalibrate_batchnorm: no samples")
    bs = n if batch_size is None else int(batch_size)
    modes = [(m, m.training) for m in model.modules()]
    momenta = [(bn, bn.momentum) for bn in bns]
    try:
        model.eval()
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        for i in range(0, n, bs):
            model(x[i:i + bs])
    finally:
        for bn, mom in momenta:
            bn.momentum = mom
        for m, t in modes:
            m.training = t
    return len(bns)


def _bn_data(x: torch.Tensor, bn_samples: int | None) -> torch.Tensor:
    if bn_samples is None:
        return x
    if not 0 < int(bn_samples) <= x.shape[0]:
        raise ValueError(f"bn_samples={bn_samples} must be in [1, {x.shape[0]}] (the map's samples)")
    return x[:int(bn_samples)]


# --------------------------------------------------------------------------------------------
# maps


def _resolve_model(model_or_builder) -> nn.Module:
    if isinstance(model_or_builder, nn.Module):
        return model_or_builder
    if callable(model_or_builder):
        m = model_or_builder()
        if not isinstance(m, nn.Module):
            raise TypeError("the model builder must return an nn.Module")
        return m
    raise TypeError("model must be an nn.Module or a callable returning one")


def _num_classes(model: nn.Module, y: torch.Tensor) -> int:
    lin = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if lin:
        return int(lin[-1].out_features)
    return int(y.max()) + 1


def _select_points(plane: Plane, points):
    allp = plane.points()
    if points is None:
        return allp
    want = {(int(i), int(j)) for i, j in points}
    return [p for p in allp if (p[0], p[1]) in want]


class _Progress:
    def __init__(self, points, what):
        self.rows = sorted({p[0] for p in points})
        self.left = {i: sum(1 for p in points if p[0] == i) for i in self.rows}
        self.total = len(points)
        self.done = 0
        self.t0 = time.perf_counter()
        self.what = what

    def tick(self, i):
        self.done += 1
        self.left[i] -= 1
        if self.left[i] == 0:
            el = time.perf_counter() - self.t0
            eta = el / self.done * (self.total - self.done)
            k = self.rows.index(i) + 1
            _log.info(f"{self.what}: row {k}/{len(self.rows)} (a index {i}) done, "
                      f"{self.done}/{self.total} points, elapsed {el:.1f} s, ETA {eta:.1f} s")


def map_plane(model, plane: Plane, x: torch.Tensor, y: torch.Tensor,
              quantities: Sequence[str] = ("loss", "psp_norm_mean_square", "entropy1", "entropy2_agreement"),
              batch_size: int = 1000, compact: bool = True, num_classes: int | None = None,
              joint_max_pairs: int = DEFAULT_JOINT_MAX_PAIRS, seed: int = 0,
              points: Iterable[tuple[int, int]] | None = None, per_layer: bool = False,
              bn_samples: int | None = None, bn_batch_size: int | None = None):
    """Evaluate ``quantities`` (any of :data:`QUANTITIES`) at every grid point (or at
    ``points``, a subset of ``(i, j)`` indices), one pass over ``(x, y)`` per point.

    ``model``: an ``nn.Module`` of the plane's architecture, or a callable building one. Its
    state is overwritten (``origin`` is loaded first, so buffers and non-prunable parameters
    come from G); it is moved to ``x.device`` and put in eval mode.
    BatchNorm (module docstring): for a model with BatchNorm, each point's running
    statistics are re-estimated by :func:`recalibrate_batchnorm` on ``x[:bn_samples]``
    (``None``: all of ``x``) in batches of ``bn_batch_size`` (``None``: ``batch_size``) before
    the point's pass; the values at ``(0, 0)`` / ``(1, 0)`` are G's / 1-S's after that same
    recalibration. A model without BatchNorm: no extra pass, the numbers are unchanged.
    ``compact=True`` uses the dead-neuron-compacted network where the architecture allows
    (exact; never with BatchNorm); otherwise, or with ``compact=False``, the dense
    point-by-point loop.
    Progress goes to ``logging`` (logger ``sharpminima.landscape``, level INFO): one line per
    grid row with the ETA.

    Returns a pandas DataFrame with columns ``i, j, a, b`` and one per quantity (plus
    ``"<quantity>:<layer>"`` per hidden layer with ``per_layer=True``); ``df.attrs`` holds
    ``compacted``, ``compact_info``, ``seconds``, ``n_samples``, ``batchnorm`` (``None``
    without BatchNorm, else the layers, samples and batch size of the recalibration), and for
    ``entropy2_joint`` the pairs used per layer.
    """
    import pandas as pd

    q = list(dict.fromkeys(quantities))
    unknown = set(q) - set(QUANTITIES)
    if unknown:
        raise ValueError(f"unknown quantities {sorted(unknown)}; known: {QUANTITIES}")
    model = _resolve_model(model).to(x.device)
    model.load_state_dict({k: v.to(x.device) for k, v in plane.origin.items()})
    model.eval()
    if num_classes is None:
        num_classes = _num_classes(model, y)
    needs_psp = any(k not in ("loss", "error") for k in q)
    n_bn = len(batchnorm_layers(model))
    x_bn = _bn_data(x, bn_samples) if n_bn else None
    bn_bs = batch_size if bn_batch_size is None else int(bn_batch_size)
    net, info = (None, {"supported": False, "reason": "compact=False"})
    if compact and n_bn:
        # the compacted net has no BatchNorm: its statistics must move with the point
        info = {"supported": False, "reason": "BatchNorm: statistics re-estimated per point"}
    elif compact:
        net, info = compact_model(model, plane.mask, keep_unused=needs_psp)
        if net is None:
            _log.info(f"map_plane: compaction unsupported ({info.get('reason')}); dense loop")
        else:
            _log.info(f"map_plane: compacted network, {info['alive_units']}/{info['units']} units computed")
    # the PSP layers once, not once per point (finding them traces the model)
    layers = hidden_layers(model) if needs_psp and net is None else None
    pts = _select_points(plane, points)
    prog = _Progress(pts, "map_plane")
    rows = []
    joint_info = None
    t0 = time.perf_counter()
    with torch.no_grad():
        for i, j, a, b in pts:
            theta = plane_point(plane, a, b, device=x.device)
            if net is not None:
                net.load(theta)
                target = net
            else:
                model.load_state_dict(theta)
                if n_bn:
                    recalibrate_batchnorm(model, x_bn, bn_bs)
                target = model
            r = measure(target, x, y, num_classes, batch_size, q, joint_max_pairs, seed, layers)
            row = {"i": i, "j": j, "a": a, "b": b}
            for k in q:
                row[k] = r[k]
            if per_layer and "per_layer" in r:
                for lname, d in r["per_layer"].items():
                    for k in q:
                        if k in d:
                            row[f"{k}:{lname}"] = d[k]
            if "entropy2_joint" in q and joint_info is None:
                joint_info = {ln: {"pairs": d["joint_pairs"], "exact": d["joint_exact"]}
                              for ln, d in r["per_layer"].items()}
            rows.append(row)
            prog.tick(i)
    df = pd.DataFrame(rows)
    df.attrs.update({
        "compacted": net is not None,
        "compact_info": info,
        "seconds": time.perf_counter() - t0,
        "n_samples": int(x.shape[0]),
        "quantities": q,
        "batchnorm": None if not n_bn else {
            "layers": n_bn, "recalibration_samples": int(x_bn.shape[0]), "batch_size": int(bn_bs)},
    })
    if joint_info is not None:
        df.attrs["joint_pairs"] = joint_info
    return df


HESSIAN_SPACES = ("mask", "full")


def map_hessian(model, plane: Plane, x: torch.Tensor, y: torch.Tensor, k: int = 5,
                points: Iterable[tuple[int, int]] | None = None, solver: str = "lanczos",
                seed: int = 0, tol: float = 1e-3, compact: bool = True, space: str = "mask",
                bn_samples: int | None = None, bn_batch_size: int | None = None):
    """Top-``k`` Hessian eigenvalues at grid points (all, or ``points``: e.g. G's and 1-S's
    indices, ``plane.meta["g_index"]``, ``["s_index"]``, or a coarse sub-grid). Returns a
    DataFrame ``i, j, a, b, eig1..eigk (descending), eig_mean, n_hvp`` (``df.attrs
    ["batchnorm"]`` as :func:`map_plane`'s).

    BatchNorm: as in :func:`map_plane`, each point's running statistics are re-estimated
    (:func:`recalibrate_batchnorm` on ``x[:bn_samples]``, in batches of ``bn_batch_size``,
    ``None``: one batch, as the Hessian's loss takes ``x``) before its Hessian, which is then
    that of the loss in eval mode with those statistics held fixed; the values at G's and
    1-S's points are those of G and 1-S after the same recalibration. Without BatchNorm
    nothing changes.

    ``space``: ``mask`` (default) differentiates with respect to the kept parameters only
    (``mask . H . mask``, the sparse subspace); ``full`` with respect to every prunable
    parameter at the same (pruned) point, as a Hessian tool that knows nothing of the mask
    does (pytorch-hessian-eigenthings, the paper's reference [17]). By Cauchy interlacing the
    ``mask`` eigenvalues never exceed the ``full`` ones."""
    if space not in HESSIAN_SPACES:
        raise ValueError(f"hessian space must be one of {HESSIAN_SPACES}, got {space!r}")
    import pandas as pd

    from .hessian import top_eigenvalues

    model = _resolve_model(model).to(x.device)
    model.load_state_dict({kk: v.to(x.device) for kk, v in plane.origin.items()})
    n_bn = len(batchnorm_layers(model))
    x_bn = _bn_data(x, bn_samples) if n_bn else None
    pts = _select_points(plane, points)
    prog = _Progress(pts, "map_hessian")
    mask = plane.mask
    if space == "full":  # every entry free; nothing is dead, so there is nothing to compact
        mask = {n: torch.ones_like(m, dtype=torch.bool) for n, m in plane.mask.items()}
        compact = False
    rows = []
    for i, j, a, b in pts:
        model.load_state_dict(plane_point(plane, a, b, device=x.device))
        if n_bn:
            recalibrate_batchnorm(model, x_bn, bn_batch_size)
        vals, n = top_eigenvalues(model, mask, x, y, k=k, solver=solver, seed=seed,
                                  tol=tol, compact=compact)
        row = {"i": i, "j": j, "a": a, "b": b}
        row.update({f"eig{t + 1}": v for t, v in enumerate(vals)})
        row["eig_mean"] = sum(vals) / len(vals) if vals else float("nan")
        row["n_hvp"] = n
        rows.append(row)
        prog.tick(i)
    df = pd.DataFrame(rows)
    df.attrs["batchnorm"] = None if not n_bn else {
        "layers": n_bn, "recalibration_samples": int(x_bn.shape[0]),
        "batch_size": int(x_bn.shape[0] if bn_batch_size is None else bn_batch_size)}
    return df


# --------------------------------------------------------------------------------------------
# the landscape's point quantities at one solution (no plane): every seed of G and of 1-S


def measure_solution(model: nn.Module, mask: Mapping[str, torch.Tensor], x: torch.Tensor,
                     y: torch.Tensor, num_classes: int, hessian_batches: Sequence, *, k: int = 5,
                     solver: str = "lanczos", seed: int = 0, tol: float = 1e-3, compact: bool = True,
                     batch_size: int = 1000, joint_max_pairs: int = DEFAULT_JOINT_MAX_PAIRS,
                     noise_seed: int = 0, spaces: Sequence[str] = HESSIAN_SPACES,
                     smallest: str | None = "mask") -> dict:
    """Every point quantity of the landscape (Fig. 2-4's values at G and 1-S) at one
    solution, measured as the maps measure a plane point: training loss and error, both
    readings of the PSP norm (``psp_norm_mean_square``, ``psp_norm_l2``), the first-order and
    both second-order PSP entropies (``entropy2_joint``, ``entropy2_agreement``) on ``(x, y)``;
    per Hessian space the top-``k`` eigenvalues by magnitude (``eig1_<space>`` ...,
    ``eig_mean_<space>``) and, in the space ``smallest`` (None: none), the smallest algebraic
    one (``eig_min_<space>``), on the first of ``hessian_batches`` (``(x, y)`` pairs); on each
    further batch the mean of the top-``k`` again (``eig_mean_<space>_batches``: one value per
    batch, the spread of the estimate over batches). A network with BatchNorm is measured on a
    copy whose statistics are re-estimated on ``x`` (:func:`recalibrate_batchnorm`)."""
    import copy

    from .hessian import top_eigenvalues
    from .psp import SECOND_ORDER, psp_statistics

    if batchnorm_layers(model):
        model = copy.deepcopy(model)
        recalibrate_batchnorm(model, x, batch_size)
    model.eval()
    s = psp_statistics(model, x, y, num_classes, batch_size=batch_size, second_order=SECOND_ORDER,
                       joint_max_pairs=joint_max_pairs, seed=noise_seed)
    row = {"loss": s["loss"], "train_error": s["error"],
           **{q: s[q] for q in ("psp_norm_mean_square", "psp_norm_l2", "entropy1")},
           **{f"entropy2_{d}": s[f"entropy2_{d}"] for d in SECOND_ORDER}}
    for space in spaces:
        m = mask if space == "mask" else {n: torch.ones_like(t, dtype=torch.bool) for n, t in mask.items()}
        kw = dict(solver=solver, seed=seed, tol=tol, compact=compact and space == "mask")
        means = []
        for b, (xh, yh) in enumerate(hessian_batches):
            vals, _ = top_eigenvalues(model, m, xh, yh, k=k, **kw)
            means.append(sum(vals) / len(vals))
            if b == 0:
                row.update({f"eig{i + 1}_{space}": v for i, v in enumerate(vals)})
                row[f"eig_mean_{space}"] = means[0]
                # one space only: in the full space Lanczos needs ~1.6x the top-k's time for it
                # (LeNet-5 at 99.57 %), and the verdicts read the figure's space alone
                if space == smallest and solver == "lanczos":
                    row[f"eig_min_{space}"] = top_eigenvalues(model, m, xh, yh, k=1, which="SA", **kw)[0][0]
        row[f"eig_mean_{space}_batches"] = ";".join(f"{v:.8g}" for v in means)
    return row
