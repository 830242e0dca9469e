"""Post-synaptic potentials (PSP) and PSP entropy (paper Sec. 4, Eq. 4-5; Fig. 3, 4a, 4b).

Definitions used here (docs/methods.md §3; the decisions are ours):

- **PSP** of a neuron: what its ReLU sees, the input ``z`` of its ReLU (before pooling).
  The neurons of a layer are the entries of that input: the ``(channel, y, x)`` positions of a
  conv layer, as in the authors' code. State: ``phi'(z) = 1 if z > 0 else 0``.
- **Hooked (hidden) layers**, two cases:

  - *chain networks* (LeNet-300, LeNet-5: ``Linear/Conv2d -> ReLU [-> max-pool]``;
    :func:`compact.trace_sequential` reads the chain from the graph): every Linear/Conv2d
    whose output goes through a ReLU, and ``z`` is its affine output (which is the ReLU's
    input). LeNet-300: ``fc1, fc2``; LeNet-5: ``conv1, conv2, fc1``.
  - *every other architecture* (ResNet-32: BatchNorm, residual additions): every ``nn.ReLU``
    module, and ``z`` is the module's input (a forward pre-hook). For ResNet-32 that is
    ``bn1(conv1(x))`` for the stem's ``relu`` and for each block's ``relu1`` (after
    BatchNorm, with its running statistics in eval mode), and
    ``bn2(conv2(h)) + shortcut(x)`` for each block's ``relu2`` (after the residual
    addition): 31 layers, named by their ReLU modules. Each ReLU must be its own module,
    called once per forward; a model that also applies a functional ReLU (``F.relu``) that
    no module stands for is rejected (:func:`hidden_layers` raises ``ValueError``), since
    its PSPs could not be read.

  The output layer (the classifier) feeds no ReLU and is excluded from every statistic, the
  PSP norm included (**decision**). An explicit ``layers=`` list may name ReLU modules (their
  input is read) or any other module (its output is read).
- **First-order PSP entropy** (Eq. 4-5): for neuron ``i`` and class ``c``,
  ``p = P[z_i > 0 | c]`` over the evaluation set, ``H(z_i | c)`` = binary entropy of ``p`` in
  bits, ``H(z_i) = sum_c H(z_i | c)`` (range [0, n_classes]). The mapped scalar is the mean of
  ``H(z_i)`` over *all neurons of the hidden layers pooled* (**decision**, as the authors' code).
  Dead or pruned neurons have entropy 0 (no clamping). A class with no sample contributes 0.
- **Second-order PSP entropy, ``agreement``** (default): per hidden layer ``l`` and class ``c``,
  ``f = P[two distinct neurons of l are in the same state | c]``, computed per sample as
  ``(k^2 + (n-k)^2 - n) / (n (n-1))`` with ``k`` active neurons of ``n`` and averaged over
  the class's samples (O(n) per sample, never an n x n matrix). ``H2_l = sum_c h(f)``;
  the scalar is the mean of ``H2_l`` over hidden layers. A layer with one neuron has ``f = 1``.
- **Second-order PSP entropy, ``joint``**: per pair of distinct neurons ``(i, j)`` of a layer
  and class ``c``, the entropy (bits) of the joint state in ``{0,1}^2``; summed over classes,
  averaged over the pairs of the layer, then over hidden layers. Exact (all pairs, through a
  per-class Gram matrix of states) when ``n(n-1)/2 <= joint_max_pairs``; otherwise every
  pair among a fixed sample of ``m`` neurons drawn once per layer from ``seed``, ``m`` the
  fewest whose pairs number at least ``joint_max_pairs`` (reported in
  ``per_layer[l]["joint_pairs"]`` and ``"joint_exact"``). **Decision**: sampling neurons,
  not pairs, keeps every pair equally likely (the mean over pairs stays unbiased) and turns
  the counting into one ``m x m`` matrix product per class and batch: measured on LeNet-5's
  conv1 (11,520 neurons, 200,000 pairs), the psp map of the default run took 3,083 s with
  independently drawn pairs (two gathered ``B x P`` state tensors per batch).
- **PSP L2 norm** (Fig. 3; **decision**): the mean of ``z^2`` over samples and neurons of a
  layer, summed over the hidden layers (``psp_norm_mean_square``, the ``mean_square`` reading). (The
  authors' code summed per-batch means, which scales with the number of batches.) The
  literal reading of "L2 norm" is offered beside it (``psp_norm_l2``, the ``l2`` reading): per
  sample the Euclidean norm ``sqrt(sum_i z_i^2)`` of a layer's PSP vector, averaged over
  samples, summed over the hidden layers. ``l2 = sqrt(n) * rms`` per sample, so it grows with
  the layer widths (LeNet-5: 11,520 + 3,200 + 500 hidden neurons) where ``mean_square`` does
  not; ``docs/methods.md`` says which one lands in the paper's range.

Everything is accumulated in one forward pass over the data: per-class counts of active
states (``one_hot(y).T @ (z > 0)``, computed as an ``index_add`` over the batch: the same
numbers, several times faster here), per-sample active counts for ``agreement``; no
per-neuron Python loop. Counts are exact (fp32 per batch, fp64 across batches); sums of
``z^2`` are fp32 per sample and fp64 across samples. :class:`PSPAccumulator` is the piece that the plane maps (``landscape.py``) feed from the
same pass as the loss; it also accepts *compacted* layers (a subset of computed neurons plus
constant neurons with a known PSP, see ``compact.py``), whose contribution is exact in closed
form: a constant neuron has a constant state (entropy 0) and ``z^2 = const^2``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .compact import CompactNet, trace_sequential
from .paper_figures import READINGS

__all__ = [
    "SECOND_ORDER",
    "QUANTITIES",
    "hidden_layers",
    "binary_entropy_bits",
    "PSPAccumulator",
    "psp_statistics",
    "psp_statistics_loop",
    "measure",
]

# The second-order definitions and the readings of Fig. 3's "PSP L2 norm" (-> their column):
# the registry's (paper_figures.READINGS)
SECOND_ORDER = tuple(READINGS["entropy2"][1])
PSP_NORM_READINGS = READINGS["psp_norm"][1]
QUANTITIES = ("loss", "error", "psp_norm_mean_square", "psp_norm_l2", "entropy1", "entropy2_agreement",
              "entropy2_joint")
DEFAULT_JOINT_MAX_PAIRS = 200_000


_FUNCTIONAL_RELUS = {F.relu, F.relu_, torch.relu, torch.relu_}


def hidden_layers(model: nn.Module) -> list[str]:
    """Names of the hooked layers (see the module docstring): for a chain network its
    Linear/Conv2d layers followed by a ReLU, otherwise its ``nn.ReLU`` modules (in
    registration order). Raises ``ValueError`` for a non-chain model with a ReLU that is not
    a module of its own, or none at all."""
    if isinstance(model, CompactNet):
        return model.hidden_layers
    plan, reason = trace_sequential(model)
    if plan is not None:
        return plan.hidden
    names = [n for n, m in model.named_modules() if isinstance(m, nn.ReLU)]
    # a functional ReLU has no module to hook: its PSPs would be silently missing
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # noqa: BLE001 - untraceable: the call counts of neurons() still check
        graph = None
    if graph is not None:
        functional = [nd.name for nd in graph.nodes
                      if (nd.op == "call_function" and nd.target in _FUNCTIONAL_RELUS)
                      or (nd.op == "call_method" and nd.target in ("relu", "relu_"))]
        if functional:
            raise ValueError(
                f"not a chain network ({reason}) and ReLU applied functionally at {functional[:5]}: "
                "the PSPs of a non-chain network are the inputs of its nn.ReLU modules; "
                "use one nn.ReLU module per ReLU")
    if not names:
        raise ValueError(f"not a chain network ({reason}) and no nn.ReLU module: no PSP to read")
    return names


def _psp_hook(module: nn.Module, fn):
    """Call ``fn(z)`` with the PSP tensor at ``module``: the input of an ``nn.ReLU``, the output
    of any other module. Returns the hook handle."""
    if isinstance(module, nn.ReLU):
        # pre-hook: runs before the ReLU; an in-place one then overwrites its input, so copy it
        if module.inplace:
            return module.register_forward_pre_hook(lambda m, args: fn(args[0].clone()))
        return module.register_forward_pre_hook(lambda m, args: fn(args[0]))
    return module.register_forward_hook(lambda m, args, out: fn(out))


def binary_entropy_bits(p: torch.Tensor) -> torch.Tensor:
    """``-p log2 p - (1-p) log2 (1-p)`` with ``0 log 0 = 0``."""
    p = p.clamp(0.0, 1.0)
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(1 - p, 1 - p)) / math.log(2.0)


def _entropy_bits(*ps: torch.Tensor) -> torch.Tensor:
    out = 0.0
    for p in ps:
        p = p.clamp(0.0, 1.0)
        out = out - torch.special.xlogy(p, p)
    return out / math.log(2.0)


class PSPAccumulator:
    """Accumulates PSP statistics over batches, then :meth:`result`.

    Use::

        acc = PSPAccumulator(num_classes, second_order=("agreement",))
        acc.set_layer(name, n)                    # per hidden layer (dense), or with a layout
        for xb, yb in batches:
            acc.begin_batch(yb)
            ... acc.observe(name, z)              # z: (batch, computed neurons) per hidden layer
        stats = acc.result()

    ``set_layer(name, n, alive_index, const_index, const_z)`` describes a compacted layer: the
    columns of ``z`` are the full-layer neurons ``alive_index``; the neurons ``const_index``
    have the constant PSP ``const_z`` on every sample.
    """

    def __init__(self, num_classes: int, second_order: Sequence[str] = ("agreement",),
                 joint_max_pairs: int = DEFAULT_JOINT_MAX_PAIRS, seed: int = 0,
                 device="cpu", first_order: bool = True):
        bad = set(second_order) - set(SECOND_ORDER)
        if bad:
            raise ValueError(f"unknown second-order definitions {sorted(bad)}; known: {SECOND_ORDER}")
        self.C = int(num_classes)
        self.second_order = tuple(second_order)
        self.joint_max_pairs = int(joint_max_pairs)
        self.seed = int(seed)
        self.device = torch.device(device)
        self.first_order = first_order
        self.layers: dict[str, dict] = {}
        self.class_counts = torch.zeros(self.C, dtype=torch.float64, device=self.device)
        self._onehot = None

    # -- set-up ---------------------------------------------------------------------------------
    def set_layer(self, name: str, n: int, alive_index=None, const_index=None, const_z=None):
        dev = self.device
        n = int(n)
        if alive_index is None:
            alive_index = torch.arange(n, device=dev)
        alive_index = alive_index.to(dev)
        const_index = (torch.zeros(0, dtype=torch.long, device=dev) if const_index is None
                       else const_index.to(dev))
        const_z = (torch.zeros(0, device=dev) if const_z is None else const_z.detach().to(dev))
        if alive_index.numel() + const_index.numel() != n:
            raise ValueError(f"layer {name}: computed + constant neurons != n")
        const_state = (const_z > 0).to(torch.float32)
        st = {
            "n": n,
            "n_alive": int(alive_index.numel()),
            "alive_index": alive_index,
            "const_index": const_index,
            "const_z2": float(const_z.double().square().sum()) if const_z.numel() else 0.0,
            "const_k": float(const_state.sum()),
            "sum_z2": torch.zeros((), dtype=torch.float64, device=dev),
            "sum_l2": torch.zeros((), dtype=torch.float64, device=dev),
            "pos": torch.zeros(self.C, int(alive_index.numel()), dtype=torch.float64, device=dev)
            if self.first_order else None,
            "agree": torch.zeros(self.C, dtype=torch.float64, device=dev),
        }
        if "joint" in self.second_order:
            n_pairs = n * (n - 1) // 2
            # full-layer state of every neuron: position in z or a constant
            where = torch.full((n,), -1, dtype=torch.long, device=dev)
            where[alive_index] = torch.arange(alive_index.numel(), device=dev)
            cstate = torch.zeros(n, device=dev)
            if const_index.numel():
                cstate[const_index] = const_state
            st["where"], st["cstate"] = where, cstate
            st["joint_exact"] = n_pairs <= self.joint_max_pairs
            units = None if st["joint_exact"] else self._sample_units(name, n)
            m = n if units is None else int(units.numel())
            st["units"] = None if units is None else units.to(dev)
            st["joint_pairs"] = m * (m - 1) // 2
            st["gram"] = torch.zeros(self.C, m, m, dtype=torch.float64, device=dev)
        self.layers[name] = st

    def _sample_units(self, name: str, n: int) -> torch.Tensor:
        """The neurons whose pairs stand for a large layer's: the fewest ``m`` with
        ``m(m-1)/2 >= joint_max_pairs``, a fixed function of (seed, layer name, n), sorted."""
        m = math.ceil((1 + math.sqrt(1 + 8 * self.joint_max_pairs)) / 2)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + sum(map(ord, name)) * 7919 + n)
        return torch.randperm(n, generator=g)[: min(m, n)].sort().values

    def joint_pairs(self, name: str) -> list[tuple[int, int]]:
        """The pairs ``(i, j)``, ``i < j``, the joint entropy of a layer is averaged over."""
        st = self.layers[name]
        units = range(st["n"]) if st["units"] is None else st["units"].tolist()
        units = list(units)
        return [(a, b) for k, a in enumerate(units) for b in units[k + 1:]]

    # -- accumulation ---------------------------------------------------------------------------
    def begin_batch(self, y: torch.Tensor) -> None:
        self._y = y.to(self.device)
        self._onehot = None
        self.class_counts += torch.bincount(self._y, minlength=self.C)[: self.C].double()

    def _class_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Per-class sums of the rows of ``t``: ``one_hot(y).T @ t`` as an index_add (same
        values, several times faster for a 10-row result on this CPU)."""
        return t.new_zeros((self.C,) + tuple(t.shape[1:])).index_add_(0, self._y, t)

    @torch.no_grad()
    def observe(self, name: str, z: torch.Tensor) -> None:
        st = self.layers[name]
        z = z.detach().flatten(1)
        B = z.shape[0]
        # per-sample sums in fp32 (cascade summation), across samples in fp64
        per_sample = (z.square().sum(1).double() if z.shape[1]
                      else torch.zeros(B, dtype=torch.float64, device=z.device))
        st["sum_z2"] += per_sample.sum()
        st["sum_l2"] += (per_sample + st["const_z2"]).sqrt().sum()
        s = torch.gt(z, 0, out=torch.empty(z.shape, dtype=torch.float32, device=z.device))  # one pass
        if st["pos"] is not None and z.shape[1]:
            st["pos"] += self._class_sum(s).double()
        if "agreement" in self.second_order:
            n = st["n"]
            if n > 1:
                # fp32 sums of 0/1 are exact (n < 2**24); fp64 from there on
                k = s.sum(1).double() + st["const_k"] if z.shape[1] else \
                    torch.full((B,), st["const_k"], dtype=torch.float64, device=z.device)
                f = (k * k + (n - k) ** 2 - n) / (n * (n - 1))
            else:
                f = torch.ones(B, dtype=torch.float64, device=z.device)
            st["agree"] += self._class_sum(f)
        if "joint" in self.second_order:
            S = self._full_states(st, s) if st["units"] is None else self._states_at(st, s, st["units"])
            # per-class Gram matrix of states (C, m, m): one matrix product per class present;
            # fp32 sums of 0/1 are exact (batch < 2**24), fp64 across batches
            for c in torch.unique(self._y).tolist():
                Sc = S[self._y == c]
                st["gram"][c] += (Sc.T @ Sc).double()

    @staticmethod
    def _full_states(st, s):
        B = s.shape[0]
        full = st["cstate"].unsqueeze(0).expand(B, -1).clone()
        if s.shape[1]:
            full[:, st["alive_index"]] = s
        return full

    @staticmethod
    def _states_at(st, s, idx):
        w = st["where"][idx]
        alive = w >= 0
        out = st["cstate"][idx].unsqueeze(0).expand(s.shape[0], -1)
        if s.shape[1] and bool(alive.any()):
            out = torch.where(alive.unsqueeze(0), s[:, w.clamp(min=0)], out)
        return out

    # -- results --------------------------------------------------------------------------------
    def result(self) -> dict:
        N = float(self.class_counts.sum())
        if N == 0:
            raise ValueError("no samples")
        Nc = self.class_counts
        present = Nc > 0
        Ncs = Nc.clamp(min=1).unsqueeze(1)
        per_layer = {}
        h1_sum = 0.0
        n_tot = 0
        for name, st in self.layers.items():
            n = st["n"]
            d = {"neurons": n, "computed_neurons": st["n_alive"]}
            sum_z2 = float(st["sum_z2"]) + N * st["const_z2"]
            d["psp_norm_mean_square"] = sum_z2 / (N * n) if n else 0.0
            d["psp_norm_l2"] = float(st["sum_l2"]) / N
            if st["pos"] is not None:
                p = st["pos"] / Ncs
                h = (binary_entropy_bits(p) * present.unsqueeze(1)).sum(0)  # per neuron, bits
                hs = float(h.sum())
                d["entropy1"] = hs / n if n else 0.0
                h1_sum += hs
                n_tot += n
            if "agreement" in self.second_order:
                f = st["agree"] / Nc.clamp(min=1)
                d["entropy2_agreement"] = float((binary_entropy_bits(f) * present).sum())
            if "joint" in self.second_order:
                d["joint_exact"] = st["joint_exact"]
                d["joint_pairs"] = st["joint_pairs"]
                if n < 2:
                    d["entropy2_joint"] = 0.0
                else:
                    g = st["gram"]
                    m = g.shape[1]
                    iu = torch.triu_indices(m, m, 1, device=g.device)
                    n11 = g[:, iu[0], iu[1]]
                    diag = torch.diagonal(g, dim1=1, dim2=2)
                    n1i, n1j = diag[:, iu[0]], diag[:, iu[1]]
                    p11 = n11 / Ncs
                    p10 = (n1i - n11) / Ncs
                    p01 = (n1j - n11) / Ncs
                    p00 = 1.0 - p11 - p10 - p01
                    H = _entropy_bits(p11, p10, p01, p00) * present.unsqueeze(1)
                    d["entropy2_joint"] = float(H.sum(0).mean())
            per_layer[name] = d
        L = max(len(per_layer), 1)
        out = {
            "n_samples": int(N),
            "layers": list(per_layer),
            "psp_norm_mean_square": sum(d["psp_norm_mean_square"] for d in per_layer.values()),
            "psp_norm_l2": sum(d["psp_norm_l2"] for d in per_layer.values()),
        }
        if self.first_order:
            out["entropy1"] = h1_sum / n_tot if n_tot else 0.0
        for so in self.second_order:
            out[f"entropy2_{so}"] = sum(
                d[f"entropy2_{so}"] for d in per_layer.values()) / L
        out["per_layer"] = per_layer
        return out


# --------------------------------------------------------------------------------------------
# one pass over the data: loss, accuracy and PSP statistics


class _DenseObserved:
    """Hooks on the hidden layers of a plain model; same protocol as :class:`CompactNet`."""

    def __init__(self, model: nn.Module, layers: Sequence[str] | None = None):
        self.model = model
        self.hidden_layers = list(layers) if layers is not None else hidden_layers(model)
        mods = dict(model.named_modules())
        missing = [n for n in self.hidden_layers if n not in mods]
        if missing:
            raise KeyError(f"no such layers {missing}")
        self._mods = {n: mods[n] for n in self.hidden_layers}
        self._sizes: dict = {}

    def forward(self, x, observe=None):
        if observe is None:
            return self.model(x)
        handles = [_psp_hook(m, lambda z, n=n: observe(n, z.flatten(1))) for n, m in self._mods.items()]
        try:
            return self.model(x)
        finally:
            for h in handles:
                h.remove()

    def neurons(self, input_shape, device) -> dict[str, int]:
        """Neurons per hooked layer, in the order of the forward pass, from one dry run (in
        eval mode, so that no BatchNorm statistic moves). Each layer must be reached exactly
        once per forward."""
        key = tuple(input_shape)
        if key not in self._sizes:
            sizes: dict = {}
            calls = {n: 0 for n in self.hidden_layers}

            def seen(n, z):
                calls[n] += 1
                sizes[n] = int(z.shape[1])

            modes = [(m, m.training) for m in self.model.modules()]
            self.model.eval()
            try:
                with torch.no_grad():
                    self.forward(torch.zeros(1, *key, device=device), seen)
            finally:
                for m, t in modes:
                    m.training = t
            bad = {n: c for n, c in calls.items() if c != 1}
            if bad:
                raise ValueError(f"each hooked layer must run once per forward; calls: {bad}")
            self._sizes[key] = sizes
        return self._sizes[key]


@torch.no_grad()
def measure(model, x: torch.Tensor, y: torch.Tensor, num_classes: int, batch_size: int = 1000,
             quantities: Sequence[str] = ("loss",),
             joint_max_pairs: int = DEFAULT_JOINT_MAX_PAIRS, seed: int = 0,
             layers: Sequence[str] | None = None) -> dict:
    """One pass over ``(x, y)``: mean cross-entropy ``loss``, ``error`` (% misclassified, the unit
    of every error in this package), and, when any of
    ``psp_norm_mean_square``, ``psp_norm_l2``, ``entropy1``, ``entropy2_agreement``,
    ``entropy2_joint`` is in ``quantities``, the PSP statistics of :class:`PSPAccumulator`
    (each under its quantity's name, as :func:`psp_statistics`).

    ``model``: an ``nn.Module`` (dense path, hooks on the PSP layers, ``layers`` or
    :func:`hidden_layers`; call ``.eval()`` yourself) or a loaded :class:`compact.CompactNet`
    (compacted path, exact full-network statistics)."""
    q = set(quantities)
    unknown = q - set(QUANTITIES)
    if unknown:
        raise ValueError(f"unknown quantities {sorted(unknown)}; known: {QUANTITIES}")
    so = tuple(s for s in SECOND_ORDER if f"entropy2_{s}" in q)
    want_psp = bool(q & {"psp_norm_mean_square", "psp_norm_l2", "entropy1"}) or bool(so)
    dev = x.device
    if isinstance(model, CompactNet):
        net = model
        fwd = net.forward
    elif want_psp:
        net = _DenseObserved(model, layers)
        fwd = net.forward
    else:  # loss / error only: no PSP layer needed (finding them traces the model)
        net = None
        fwd = model
    acc = None
    if want_psp:
        acc = PSPAccumulator(num_classes, second_order=so, joint_max_pairs=joint_max_pairs,
                             seed=seed, device=dev, first_order="entropy1" in q)
        if isinstance(net, CompactNet):
            for name, lay in net.psp_layouts(x.shape[1:]).items():
                acc.set_layer(name, lay["n"], lay["alive_index"], lay["const_index"], lay["const_z"])
        else:
            for name, n in net.neurons(x.shape[1:], dev).items():
                acc.set_layer(name, n)
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    correct = 0
    N = x.shape[0]
    for i in range(0, N, batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        if acc is not None:
            acc.begin_batch(yb)
            logits = fwd(xb, acc.observe)
        else:
            logits = fwd(xb)
        if "loss" in q:
            loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
        if "error" in q:
            correct += int((logits.argmax(1) == yb).sum())
    out: dict = {"n_samples": N}
    if "loss" in q:
        out["loss"] = float(loss_sum) / N
    if "error" in q:
        out["error"] = 100.0 * (N - correct) / N
    if acc is not None:
        out.update(acc.result())
    return out


def psp_statistics(model, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                   batch_size: int = 1000, second_order: Sequence[str] = ("agreement",),
                   joint_max_pairs: int = DEFAULT_JOINT_MAX_PAIRS, seed: int = 0,
                   layers: Sequence[str] | None = None) -> dict:
    """PSP statistics of ``model`` on ``(x, y)`` in one pass.

    Returns ``psp_norm_mean_square``, ``entropy1``, ``entropy2_<def>`` for each
    definition in ``second_order`` (``agreement``, ``joint``), ``per_layer`` (the same per
    hidden layer, plus ``neurons``, and for ``joint`` the number of pairs and whether they are
    all of them), ``layers``, ``n_samples``, and ``loss`` / ``error`` (free in the same pass).
    ``model`` is an ``nn.Module`` (put in eval mode here and restored; BatchNorm uses the
    running statistics the model holds, which the plane maps re-estimate at each point
    first, ``landscape.recalibrate_batchnorm``) or a loaded :class:`compact.CompactNet`.
    """
    bad = set(second_order) - set(SECOND_ORDER)
    if bad:
        raise ValueError(f"unknown second-order definitions {sorted(bad)}; known: {SECOND_ORDER}")
    quantities = (["loss", "error", "psp_norm_mean_square", "psp_norm_l2", "entropy1"]
                  + [f"entropy2_{s}" for s in second_order])
    if isinstance(model, nn.Module):
        was = model.training
        model.eval()
        try:
            return measure(model, x, y, num_classes, batch_size, quantities,
                            joint_max_pairs, seed, layers)
        finally:
            model.train(was)
    return measure(model, x, y, num_classes, batch_size, quantities,
                    joint_max_pairs, seed, layers)


@torch.no_grad()
def psp_statistics_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                        batch_size: int = 1000) -> dict:
    """The straightforward reference (benchmark baseline, as the authors' code is organised):
    for every hidden layer, for every class, a pass over that class's samples with a hook on
    that layer; first-order entropy, ``agreement`` second-order entropy and PSP norm.
    Same definitions and outputs as :func:`psp_statistics` (no ``joint``)."""
    was = model.training
    model.eval()
    mods = dict(model.named_modules())
    per_layer = {}
    h1_total, n_total = 0.0, 0
    N = x.shape[0]
    try:
        for name in hidden_layers(model):
            h1 = None
            h2 = 0.0
            z2 = 0.0
            l2 = 0.0
            n = None
            for c in range(num_classes):
                xc = x[y == c]
                if xc.shape[0] == 0:
                    continue
                pos = None
                agree = 0.0
                for i in range(0, xc.shape[0], batch_size):
                    got = {}
                    h = _psp_hook(mods[name], lambda z: got.__setitem__("z", z))
                    try:
                        model(xc[i:i + batch_size])
                    finally:
                        h.remove()
                    z = got["z"].flatten(1)
                    n = z.shape[1]
                    s = (z > 0).double()
                    pos = s.sum(0) if pos is None else pos + s.sum(0)
                    k = s.sum(1)
                    agree += float(((k * k + (n - k) ** 2 - n) / (n * (n - 1))).sum()) if n > 1 else z.shape[0]
                    z2 += float(z.double().square().sum())
                    l2 += float(z.double().square().sum(1).sqrt().sum())
                p = pos / xc.shape[0]
                hc = binary_entropy_bits(p)
                h1 = hc if h1 is None else h1 + hc
                h2 += float(binary_entropy_bits(torch.tensor(agree / xc.shape[0], dtype=torch.float64)))
            per_layer[name] = {
                "neurons": n,
                "psp_norm_mean_square": z2 / (N * n),
                "psp_norm_l2": l2 / N,
                "entropy1": float(h1.sum()) / n,
                "entropy2_agreement": h2,
            }
            h1_total += float(h1.sum())
            n_total += n
    finally:
        model.train(was)
    return {
        "n_samples": N,
        "layers": list(per_layer),
        "psp_norm_mean_square": sum(d["psp_norm_mean_square"] for d in per_layer.values()),
        "psp_norm_l2": sum(d["psp_norm_l2"] for d in per_layer.values()),
        "entropy1": h1_total / n_total,
        "entropy2_agreement": sum(
            d["entropy2_agreement"] for d in per_layer.values()) / len(per_layer),
        "per_layer": per_layer,
    }
