"""Top Hessian eigenvalues of the training loss in the sparse subspace (paper Fig. 2b).

The Hessian is taken with respect to the parameters on the mask's support only: reparametrise
``w = w_free * mask``, so the matrix is ``mask . H . mask`` restricted to the kept entries
(parameters outside the mask dict, non-prunable ones, are held fixed; for the registry models
every parameter is prunable). The loss is the mean cross-entropy over the ``N`` samples given,
in one batch (as pyhessian's ``data=(x, y)``), with the model in eval mode (as pyhessian sets
it: BatchNorm uses its running statistics, held fixed). On the plane
(``landscape.map_hessian``) those statistics are first re-estimated at each point
(``landscape.recalibrate_batchnorm``); here they are the model's as given.

Solvers:

- ``"lanczos"`` (default): ``scipy.sparse.linalg.eigsh(k, which="LM", tol)`` (implicitly
  restarted Lanczos, ARPACK) over an autograd Hessian-vector product on the flattened vector of
  kept parameters; ``v0`` drawn from ``numpy.random.RandomState(seed)``. The gradient graph is
  built once (``create_graph=True``) and every product is one double-backward through it.
  For chain networks (LeNet-300, LeNet-5) the forward runs through the dead-neuron-compacted
  network (``compact.py``, ``keep_unused=False``), which is exact: it is the same function of
  the kept parameters. ``which="LM"`` = largest in magnitude, as the paper's reference tool
  (pytorch-hessian-eigenthings, [17]) returns them: a large negative eigenvalue is among them,
  so "the top eigenvalues are all positive" is a finding, not a consequence of the solver
  (with ``"LA"``, largest algebraic, it nearly is). ``"SA"`` gives the smallest algebraic
  eigenvalues (how negative the curvature gets), reported beside the top ones.
- ``"pyhessian"`` (reference; pyhessian 0.1): a copy of the model with
  ``torch.nn.utils.prune.custom_from_mask`` masks (pyhessian then differentiates with respect
  to ``weight_orig``, giving ``mask . H . mask``), ``hessian(model, CrossEntropyLoss(),
  data=(x, y), cuda=(device is cuda)).eigenvalues(top_n=k, tol, maxIter)``; the global torch RNG
  is seeded with ``seed`` inside a forked RNG state, gradients are zeroed before and after.
  Its power iteration returns the largest-|lambda| eigenvalues; a negative one can appear.

Both return ``(eigenvalues, number of Hessian-vector products)``, the eigenvalues ordered
by descending magnitude for ``"LM"`` (``eig1`` is the largest |lambda|) and descending
otherwise.
"""

from __future__ import annotations

import copy
import warnings
from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .compact import compact_model

# The eigen-solvers (config landscape.hessian.solver).
SOLVERS = ("lanczos", "pyhessian")

__all__ = ["top_eigenvalues", "SubspaceHVP"]


class SubspaceHVP:
    """Hessian-vector products of ``criterion(model(x), y)`` with respect to the kept entries
    of the masked parameters (a flat vector of length ``dim``)."""

    def __init__(self, model: nn.Module, mask: Mapping[str, torch.Tensor], x, y,
                 criterion: Callable | None = None, compact: bool = True):
        self.criterion = criterion or F.cross_entropy
        params = dict(model.named_parameters())
        unknown = [n for n in mask if n not in params]
        if unknown:
            raise KeyError(f"mask names not parameters of the model: {unknown[:5]}")
        self.names = [n for n in params if n in mask]
        dev = next(model.parameters()).device
        self.index, self.shapes = {}, {}
        pieces = []
        for n in self.names:
            keep = mask[n].to(dev).reshape(-1).bool()
            idx = torch.nonzero(keep).flatten()
            self.index[n] = idx
            self.shapes[n] = params[n].shape
            pieces.append(params[n].detach().reshape(-1).index_select(0, idx))
        self.theta0 = torch.cat(pieces) if pieces else torch.zeros(0, device=dev)
        self.dim = int(self.theta0.numel())
        self.fixed = {n: p.detach() for n, p in params.items() if n not in mask}
        self.buffers = {n: b for n, b in model.named_buffers()}
        self.model = model
        self.net = None
        if compact:
            self.net, self.compact_info = compact_model(model, mask, keep_unused=False)
        else:
            self.compact_info = {"supported": False, "reason": "compaction disabled"}
        self.n_hvp = 0
        theta = self.theta0.clone().requires_grad_(True)
        loss = self._loss(theta, x, y)
        self.loss = float(loss.detach())
        (self.grad,) = torch.autograd.grad(loss, theta, create_graph=True)
        self.theta = theta

    def full_params(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        out = dict(self.fixed)
        off = 0
        for n in self.names:
            idx = self.index[n]
            k = idx.numel()
            numel = int(np.prod(self.shapes[n])) if len(self.shapes[n]) else 1
            full = theta.new_zeros(numel).index_put((idx,), theta[off:off + k])
            out[n] = full.view(self.shapes[n])
            off += k
        return out

    def _loss(self, theta, x, y):
        p = self.full_params(theta)
        if self.net is not None:
            logits = self.net.functional(p, x)
        else:
            logits = torch.func.functional_call(self.model, {**p, **self.buffers}, (x,))
        return self.criterion(logits, y)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        self.n_hvp += 1
        (hv,) = torch.autograd.grad(self.grad, self.theta, grad_outputs=v, retain_graph=True)
        return hv

    def close(self):
        self.grad = None
        self.theta = None


def _lanczos(model, mask, x, y, k, seed, tol, max_iter, compact, which, criterion):
    from scipy.sparse.linalg import LinearOperator, eigsh

    op = SubspaceHVP(model, mask, x, y, criterion=criterion, compact=compact)
    try:
        n = op.dim
        dtype = op.theta0.dtype
        dev = op.theta0.device
        if n == 0:
            return [], 0
        if n <= k + 1 or n <= 32:
            # tiny problem: the exact Hessian column by column
            eye = torch.eye(n, dtype=dtype, device=dev)
            H = torch.stack([op(eye[i]) for i in range(n)]).double().cpu().numpy()
            H = 0.5 * (H + H.T)
            w = np.linalg.eigvalsh(H)
            w = {"LM": lambda: w[np.argsort(-np.abs(w))][:k], "SA": lambda: w[:k]}.get(which, lambda: w[-k:])()
            return _ordered(w, which), op.n_hvp

        def matvec(v):
            t = torch.as_tensor(np.asarray(v, dtype=np.float64).reshape(-1), device=dev).to(dtype)
            return op(t).double().cpu().numpy()

        A = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
        v0 = np.random.RandomState(seed).standard_normal(n)
        w = eigsh(A, k=k, which=which, tol=tol, v0=v0, maxiter=max_iter, return_eigenvectors=False)
        return _ordered(w, which), op.n_hvp
    finally:
        op.close()


def _ordered(w, which: str) -> list[float]:
    """Descending magnitude for ``"LM"``, descending value otherwise."""
    w = np.asarray(w, dtype=np.float64)
    w = w[np.argsort(-np.abs(w), kind="stable")] if which == "LM" else np.sort(w)[::-1]
    return [float(v) for v in w]


def _pyhessian(model, mask, x, y, k, seed, tol, max_iter, criterion):
    import importlib

    # ``pyhessian.hessian`` as an attribute is the class (the package re-exports it): take the module
    ph = importlib.import_module("pyhessian.hessian")
    from torch.nn.utils import prune

    m = copy.deepcopy(model)
    mods = dict(m.named_modules())
    for name, p in list(m.named_parameters()):
        if name not in mask:
            p.requires_grad_(False)
    for name, keep in mask.items():
        mod_name, _, pname = name.rpartition(".")
        prune.custom_from_mask(mods[mod_name], pname, keep.to(x.device).bool())
    m.zero_grad(set_to_none=True)
    count = {"n": 0}
    orig = ph.hessian_vector_product

    def counting(gradsH, params, v):
        count["n"] += 1
        return orig(gradsH, params, v)

    ph.hessian_vector_product = counting
    devices = [x.device] if x.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), warnings.catch_warnings():
            # pyhessian's loss.backward(create_graph=True) leaves a grad <-> graph cycle: we
            # zero the copy's gradients afterwards, so torch's warning about it is moot
            warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
            torch.manual_seed(seed)
            h = ph.hessian(m, criterion or nn.CrossEntropyLoss(), data=(x, y),
                           cuda=(x.device.type == "cuda"))
            vals, _ = h.eigenvalues(maxIter=max_iter or 100, tol=tol, top_n=k)
    finally:
        ph.hessian_vector_product = orig
        m.zero_grad(set_to_none=True)
    del h, m
    return _ordered(vals, "LM"), count["n"]


def top_eigenvalues(model: nn.Module, mask: Mapping[str, torch.Tensor], x: torch.Tensor,
                    y: torch.Tensor, k: int = 5, solver: str = "lanczos", seed: int = 0,
                    tol: float = 1e-3, max_iter: int | None = None, compact: bool = True,
                    which: str = "LM", criterion: Callable | None = None) -> tuple[list[float], int]:
    """Top-``k`` eigenvalues of the sparse-subspace Hessian of the training loss at the model's
    current parameters (masked: ``w * mask``), on ``(x, y)`` as one batch.

    ``solver``: ``"lanczos"`` (``which`` = ``"LM"`` largest in magnitude, the default and
    the reference tool's; ``"LA"`` largest algebraic; ``"SA"`` smallest algebraic) or
    ``"pyhessian"`` (largest |lambda| by power iteration; ``max_iter`` per eigenvalue, default
    100). ``max_iter`` for Lanczos is ARPACK's ``maxiter`` (default ``10 * dim``).
    Returns ``(values, Hessian-vector products used)``, by descending magnitude for ``"LM"``
    and the power iteration, descending otherwise. The model is left in its original
    train/eval mode with no gradients.
    """
    was = model.training
    model.eval()
    try:
        if solver == "lanczos":
            if which not in ("LA", "LM", "SA"):
                raise ValueError(f"which must be 'LM', 'LA' or 'SA', got {which!r}")
            return _lanczos(model, mask, x, y, k, seed, tol, max_iter, compact, which, criterion)
        if solver == "pyhessian":
            return _pyhessian(model, mask, x, y, k, seed, tol, max_iter, criterion)
        raise ValueError(f"unknown solver {solver!r}: one of {SOLVERS}")
    finally:
        model.train(was)
        model.zero_grad(set_to_none=True)
