"""How similar a pruned network's layers are to the dense network's: SVCCA and linear CKA.

Zullich et al. (ICPRAM 2020) compare the layers of pruned and dense networks by CCA; here
every hidden layer of every solution of a panel is compared with the same layer of the
panel's dense model, on the activations of one fixed evaluation set.

Definitions (docs/methods.md §7):

- **Activations** of a hidden layer: what its ReLU puts out, ``relu(z)`` for the PSPs ``z``
  of ``psp.hidden_layers`` (before pooling). Neurons are the columns: for a fully connected
  layer its units, one row per sample; for a conv layer its channels, one row per (sample,
  position), as Zullich et al. do. When that gives more rows than ``max_rows``, a seeded
  subset of rows is taken: the *same* rows for both networks.
- **SVCCA** (Raghu et al., NeurIPS 2017): each side centred, reduced by SVD to the fewest
  directions that keep ``keep`` (99 %) of its variance; then CCA between the two reduced
  sides: the canonical correlations are the singular values of ``Qx^T Qy`` (``Qx``, ``Qy``
  orthonormal bases of the centred reduced columns). Summarised by their mean over the
  ``min(dx, dy)`` pairs. Invariant to any invertible linear map of either side.
- **Linear CKA** (Kornblith et al., ICML 2019): ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``
  for centred ``X``, ``Y``. Invariant to orthogonal maps and isotropic scaling (not to every
  invertible map).

A layer whose activations are constant on the evaluation set (every neuron dead) has no
direction to correlate: its similarity is NaN, said so rather than guessed. Computed in
float64.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .psp import _psp_hook, hidden_layers

__all__ = ["layer_activations", "data_points", "svcca", "linear_cka", "compare_layers"]


@torch.no_grad()
def layer_activations(model: nn.Module, x: torch.Tensor, batch_size: int = 500,
                      layers: list[str] | None = None) -> dict[str, torch.Tensor]:
    """The post-ReLU activations of every hidden layer (``psp.hidden_layers``) on ``x``, in
    eval mode, on the CPU: ``{layer: (n, neurons)}`` or ``(n, channels, h, w)``."""
    model.eval()
    names = layers or hidden_layers(model)
    modules = dict(model.named_modules())
    out: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    handles = [_psp_hook(modules[n], lambda z, n=n: out[n].append(torch.relu(z).detach().cpu()))
               for n in names]
    try:
        for i in range(0, len(x), batch_size):
            model(x[i : i + batch_size])
    finally:
        for h in handles:
            h.remove()
    return {n: torch.cat(v) for n, v in out.items()}


def data_points(a: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """A layer's activations as (data points x neurons), float64: a conv layer's channels
    are its neurons and its (sample, position) pairs its data points; ``rows`` selects data
    points (the same for every network compared)."""
    if a.dim() == 4:
        a = a.permute(0, 2, 3, 1).reshape(-1, a.shape[1])
    elif a.dim() != 2:
        raise ValueError(f"activations of shape {tuple(a.shape)}: expected (n, f) or (n, c, h, w)")
    a = a.double()
    return a if rows is None else a[rows]


def row_subset(n_rows: int, max_rows: int | None, seed: int) -> torch.Tensor | None:
    """``max_rows`` data points drawn once (seeded) from ``n_rows``; None keeps them all."""
    if max_rows is None or n_rows <= max_rows:
        return None
    return torch.randperm(n_rows, generator=torch.Generator().manual_seed(seed))[:max_rows].sort().values


def _centre(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(0, keepdim=True)


def _reduce(x: torch.Tensor, keep: float) -> torch.Tensor | None:
    """The centred ``x`` projected on its top singular directions that keep ``keep`` of the
    variance (None when ``x`` has no variance)."""
    x = _centre(x)
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    var = s**2
    total = float(var.sum())
    if total <= 1e-24 * max(1, x.numel()):
        return None
    k = int(torch.searchsorted(torch.cumsum(var, 0) / total, torch.tensor(keep, dtype=var.dtype)).item()) + 1
    k = min(k, int((s > s[0] * 1e-10).sum()))
    return u[:, :k] * s[:k]


def canonical_correlations(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The canonical correlations of the columns of ``x`` and ``y`` (data points as rows),
    largest first: the singular values of ``Qx^T Qy`` for orthonormal bases of their centred
    column spaces (rank-deficient columns dropped)."""
    qs = []
    for m in (_centre(x), _centre(y)):
        q, r = torch.linalg.qr(m)
        d = r.diagonal().abs()
        qs.append(q[:, d > d.max() * 1e-10] if len(d) and d.max() > 0 else q[:, :0])
    if qs[0].shape[1] == 0 or qs[1].shape[1] == 0:
        return torch.empty(0, dtype=x.dtype)
    return torch.linalg.svdvals(qs[0].T @ qs[1]).clamp(0.0, 1.0)


def svcca(x: torch.Tensor, y: torch.Tensor, keep: float = 0.99) -> float:
    """SVCCA similarity (module docstring): the mean canonical correlation of the two sides
    each reduced to ``keep`` of its variance; NaN when either side has no variance."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"svcca: {x.shape[0]} and {y.shape[0]} data points; expected the same")
    rx, ry = _reduce(x.double(), keep), _reduce(y.double(), keep)
    if rx is None or ry is None:
        return math.nan
    rho = canonical_correlations(rx, ry)
    return float(rho.mean()) if len(rho) else math.nan


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA (module docstring); NaN when either side has no variance."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"linear_cka: {x.shape[0]} and {y.shape[0]} data points; expected the same")
    x, y = _centre(x.double()), _centre(y.double())
    xx, yy = torch.linalg.matrix_norm(x.T @ x), torch.linalg.matrix_norm(y.T @ y)
    if float(xx) == 0.0 or float(yy) == 0.0:
        return math.nan
    return float(torch.linalg.matrix_norm(y.T @ x) ** 2 / (xx * yy))


def compare_layers(reference: dict[str, torch.Tensor], other: dict[str, torch.Tensor], *,
                   keep: float = 0.99, max_rows: int | None = 20_000, seed: int = 0) -> list[dict]:
    """SVCCA and linear CKA of every layer of ``other`` with the same layer of
    ``reference`` (both from :func:`layer_activations` on the same inputs): one row per
    layer with its depth index, neurons and data points used."""
    rows = []
    for i, (name, a) in enumerate(reference.items()):
        b = other[name]
        if a.shape != b.shape:
            raise ValueError(f"layer {name}: activations {tuple(a.shape)} and {tuple(b.shape)} differ")
        xa = data_points(a)
        sel = row_subset(xa.shape[0], max_rows, seed + i)
        xa, xb = (xa if sel is None else xa[sel]), data_points(b, sel)
        rows.append({"layer": name, "depth": i, "neurons": int(xa.shape[1]), "points": int(xa.shape[0]),
                     "svcca": svcca(xa, xb, keep), "cka": linear_cka(xa, xb)})
    return rows
