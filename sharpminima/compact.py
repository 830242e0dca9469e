"""Dead-neuron compaction of sparse sequential networks (exact, not an approximation).

At high sparsity most neurons of LeNet-5 have no kept incoming weight (83 % of them at
99.57 % pruned parameters). Everything the landscape analyses evaluate lives in the mask's
subspace (the plane around the sparsest solutions, the Hessian restricted to the mask's
support), so a neuron that the *mask* kills is dead at every point they visit. This module
builds, once per mask, a smaller network that computes exactly the same logits and lets the
PSP statistics of the full network be recovered exactly.

Definitions (all decided from the mask, never from the current values):

- A *unit* is an output row of a Linear weight or an output channel of a Conv2d weight.
- A unit is **constant** when every kept (mask True) incoming weight comes from a constant input
  unit; in particular a unit with no kept incoming weight at all (a *pruned neuron*, as
  :func:`masks.pruned_neurons` counts it) is constant, and so is every unit of a layer whose
  inputs are all constant ("a whole layer-input is dead"). Its pre-activation is then the same
  for every sample: ``z = bias + sum(W[:, constant inputs] * their constant outputs)`` (for a
  conv unit, the same at every spatial position: convolutions without padding only).
  Its output after ReLU and max-pooling is the constant ``relu(z)``.
- The other units are **alive**. The compacted network keeps only alive units; the constant
  outputs of the previous layer are folded into the bias of the next
  (``b_eff = b + W[:, constant inputs] @ constants``; for a conv, the kernel summed over its
  positions), and the next layer's input columns/channels that only ever see constant inputs
  are removed. Input features (pixels, input channels) with no kept outgoing weight are
  dropped too.
- With ``keep_unused=False`` (loss and Hessian only) alive units with no kept outgoing weight
  to a used unit of the next layer are also dropped (they cannot change the logits). With the
  default ``keep_unused=True`` every hidden unit is either computed or constant, so the PSP
  statistics of the *full* network are exact (:meth:`CompactNet.psp_layouts`).

Assumption: the parameters evaluated are zero wherever the mask is False (true on the plane
and under the ``w = w_free * mask`` reparametrisation). Parameters outside the mask
(non-prunable) are used as they are.

Other exact speed-ups of the compacted forward (same values up to fp32 summation order):
ReLU applied after max-pooling (they commute, and the pooled tensor is 4x smaller); max-pool
with non-overlapping windows as maxima of strided slices when autograd is off (``max_pool2d``
is ~10x slower on this CPU; under autograd ``max_pool2d`` is kept: cheaper backward, same
gradient routing); a conv whose kept taps are at most ``sparse_conv_density`` of its kernel
positions is computed as a gather of those taps and one matmul.

Supported architectures: a chain ``[flatten] -> (Linear | Conv2d) -> [ReLU] [max_pool2d]
[flatten] -> ... -> Linear`` as ``torch.fx`` traces it (LeNet-300-100, LeNet-5); Conv2d with
groups 1 and dilation 1, and padding 0 wherever a constant input channel reaches it. For any
other architecture (ResNet-32: BatchNorm, residual additions) :func:`compact_model` returns
``(None, info)`` with ``info["reason"]``; callers then use the dense path (the plain model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["CompactNet", "compact_model", "trace_sequential", "SequentialPlan"]


# --------------------------------------------------------------------------------------------
# tracing a sequential network


@dataclass
class _Step:
    kind: str  # "linear" | "conv"
    name: str  # module name
    module: nn.Module
    post: list = field(default_factory=list)  # [("relu", None) | ("pool", fn) | ("flatten", None)]

    @property
    def relu(self) -> bool:
        return any(k == "relu" for k, _ in self.post)


@dataclass
class SequentialPlan:
    pre: list  # ops before the first layer: [("flatten", None)]
    steps: list  # list[_Step]

    @property
    def hidden(self) -> list[str]:
        """Layers whose output goes through a ReLU (the PSP layers)."""
        return [s.name for s in self.steps if s.relu]


_RELU_FUNCS = {F.relu, torch.relu}


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class _MaxPool:
    """``F.max_pool2d`` with given settings; without autograd, non-overlapping windows without
    padding run as element-wise maxima of strided slices (exactly the same values, ~10x faster
    than ``max_pool2d`` on this CPU)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        self.k = _pair(kernel_size)
        self.s = _pair(stride) if stride is not None and stride != [] else self.k
        self.p = _pair(padding)
        self.d = _pair(dilation)
        self.ceil = bool(ceil_mode)
        self.fast = self.k == self.s and self.p == (0, 0) and self.d == (1, 1) and not self.ceil

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        # under autograd, max_pool2d: its backward (one index per window) is much cheaper than
        # that of torch.maximum, and it routes gradients exactly as the original model does
        if not self.fast or (t.requires_grad and torch.is_grad_enabled()):
            return F.max_pool2d(t, self.k, self.s, self.p, self.d, self.ceil)
        (kh, kw), (H, W) = self.k, t.shape[-2:]
        Ho, Wo = H // kh, W // kw
        # reduce along x, then along y: k-1 maxima each, on shrinking tensors
        out = t[..., 0:Wo * kw:kw]
        for j in range(1, kw):
            out = torch.maximum(out, t[..., j:Wo * kw:kw])
        rows = out
        out = rows[..., 0:Ho * kh:kh, :]
        for i in range(1, kh):
            out = torch.maximum(out, rows[..., i:Ho * kh:kh, :])
        return out


_POOL_ARGS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")


def _is_flatten_node(node, modules) -> bool:
    """``x.flatten(1)``, ``torch.flatten(x, 1)`` or ``nn.Flatten()`` (start 1, end -1)."""
    if node.op == "call_method" and node.target == "flatten":
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        return start == 1 and end == -1
    if node.op == "call_function" and node.target is torch.flatten:
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        return start == 1 and end == -1
    if node.op == "call_module" and isinstance(modules.get(node.target), nn.Flatten):
        m = modules[node.target]
        return m.start_dim == 1 and m.end_dim == -1
    return False


def _classify(node, modules):
    """``(kind, payload)`` for a supported node, else None."""
    if node.op == "call_module":
        mod = modules[node.target]
        if isinstance(mod, nn.Linear):
            return ("linear", mod)
        if isinstance(mod, nn.Conv2d):
            return ("conv", mod)
        if isinstance(mod, nn.ReLU):
            return ("relu", None)
        if isinstance(mod, nn.MaxPool2d):
            if mod.return_indices:
                return None
            return ("pool", _MaxPool(mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode))
        if isinstance(mod, (nn.Identity, nn.Dropout)):
            return ("identity", None)
        if _is_flatten_node(node, modules):
            return ("flatten", None)
        return None
    if node.op == "call_function":
        if node.target in _RELU_FUNCS:
            return ("relu", None)
        if node.target is F.max_pool2d:
            if node.kwargs.get("return_indices", False):
                return None
            if any(isinstance(a, fx.Node) for a in list(node.args[1:]) + list(node.kwargs.values())):
                return None
            kw = dict(zip(_POOL_ARGS, node.args[1:]))
            kw.update(node.kwargs)
            kw.pop("return_indices", None)
            return ("pool", _MaxPool(**kw))
        if _is_flatten_node(node, modules):
            return ("flatten", None)
        return None
    if node.op == "call_method":
        if node.target == "relu" and len(node.args) == 1:
            return ("relu", None)
        if _is_flatten_node(node, modules):
            return ("flatten", None)
        return None
    return None


def trace_sequential(model: nn.Module) -> tuple[SequentialPlan | None, str]:
    """Trace ``model`` with torch.fx into a chain of Linear/Conv2d layers with ReLU, max-pool and
    flatten between them. Returns ``(plan, "")`` or ``(None, reason)``."""
    try:
        gm = fx.symbolic_trace(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means "not sequential"
        return None, f"torch.fx cannot trace the model: {type(exc).__name__}: {exc}"
    modules = dict(gm.named_modules())
    pre: list = []
    steps: list[_Step] = []
    prev = None
    seen = set()
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if prev is not None:
                return None, "more than one input"
            prev = node
            continue
        if node.op == "output":
            if node.args[0] is not prev:
                return None, "the output is not the end of the chain"
            break
        if len(node.users) > 1:
            return None, f"node {node.name} feeds more than one node (branching)"
        ins = [a for a in list(node.args) + list(node.kwargs.values()) if isinstance(a, fx.Node)]
        if ins != [prev]:
            return None, f"node {node.name} is not a link of a single chain"
        cls = _classify(node, modules)
        if cls is None:
            return None, f"unsupported operation {node.op} {node.target}"
        kind, payload = cls
        if kind in ("linear", "conv"):
            if node.target in seen:
                return None, f"module {node.target} is called twice"
            seen.add(node.target)
            if kind == "conv" and (payload.groups != 1 or tuple(payload.dilation) != (1, 1)
                                   or payload.padding_mode != "zeros" or isinstance(payload.padding, str)):
                return None, f"conv {node.target}: groups/dilation/padding mode unsupported"
            steps.append(_Step(kind, node.target, payload))
        elif kind == "identity":
            pass
        else:
            if not steps:
                if kind != "flatten":
                    return None, f"{kind} before the first layer is unsupported"
                pre.append((kind, payload))
            else:
                steps[-1].post.append((kind, payload))
        prev = node
    if not steps:
        return None, "no Linear/Conv2d layer"
    if steps[-1].kind != "linear" or steps[-1].relu:
        return None, "the last layer must be a Linear without ReLU (the logits)"
    # a flatten must separate conv and linear; linear -> conv is unsupported
    layout = "chan" if steps[0].kind == "conv" else "vec"
    if pre and layout == "chan":
        return None, "flatten before a conv"
    for s, nxt in zip(steps, steps[1:] + [None]):
        layout = "chan" if s.kind == "conv" else "vec"
        for k, _ in s.post:
            if k == "flatten":
                layout = "vec"
            elif k == "pool" and layout != "chan":
                return None, "max-pool on a vector"
        if nxt is not None:
            if nxt.kind == "conv" and layout != "chan":
                return None, "linear -> conv is unsupported"
            if nxt.kind == "linear" and layout != "vec":
                return None, "conv -> linear without flatten"
    return SequentialPlan(pre=pre, steps=steps), ""


# --------------------------------------------------------------------------------------------
# the compacted network


@dataclass
class _CLayer:
    name: str
    kind: str
    hidden: bool
    post: list
    n_units: int  # output units (rows / channels) of the full layer
    out_alive: torch.Tensor  # long, computed units (sorted)
    out_const: torch.Tensor  # long, constant units (sorted)
    in_alive: torch.Tensor  # long, input units (columns / channels) read from the compact input
    in_const: torch.Tensor  # long, input units whose value is a constant
    in_hw: int  # positions per previous channel when a flatten precedes (1 otherwise)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    out_used_drop: int = 0  # alive units dropped as unused (keep_unused=False)
    pruned_units: int = 0  # units with no kept incoming weight at all
    ksize: tuple = (1, 1)
    taps: torch.Tensor | None = None  # sparse conv: kept (input channel, ky, kx) taps, flat
    tap_cache: dict = field(default_factory=dict)
    post_fast: list = field(default_factory=list)  # post ops with the ReLU moved last

    def tap_index(self, C: int, H: int, W: int, device) -> tuple[torch.Tensor, int, int]:
        """Flat input index of every (tap, output position) for an input of C x H x W."""
        key = (C, H, W, str(device))
        if key not in self.tap_cache:
            kh, kw = self.ksize
            sh, sw = self.stride
            Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
            t = self.taps.to(device)
            c, r = t // (kh * kw), t % (kh * kw)
            ky, kx = r // kw, r % kw
            oy = torch.arange(Ho, device=device) * sh
            ox = torch.arange(Wo, device=device) * sw
            pos = (oy.view(-1, 1) * W + ox.view(1, -1)).flatten()
            idx = (c * H * W + ky * W + kx).view(-1, 1) + pos.view(1, -1)
            self.tap_cache[key] = (idx.flatten(), Ho, Wo)
        return self.tap_cache[key]


class CompactNet:
    """A compacted copy of a sequential network for one mask.

    ``load(params)`` gathers the compact weights from a full parameter mapping (a state dict
    or a plane point); ``net(x)`` then returns the full network's logits;
    ``net.forward(x, observe)`` also calls ``observe(layer_name, z)`` with the pre-activations of
    the computed units of each hidden layer (``z`` of shape ``(batch, computed neurons)``,
    conv neurons flattened channel-major), and :meth:`psp_layouts` says where they sit in the
    full layer and what the constant neurons' PSPs are. ``functional(params, x)`` is the
    differentiable version (used by the Hessian).
    """

    def __init__(self, plan: SequentialPlan, layers: list[_CLayer], in_select, keep_unused: bool,
                 graph_module: nn.Module, param_names: list[str], info: dict):
        self.plan = plan
        self.layers = layers
        self.in_select = in_select  # long tensor of input features kept, or None
        self.keep_unused = keep_unused
        self._model = graph_module  # the original module (shape inference only)
        self.param_names = param_names
        self.info = info
        self._mats = None
        self._shape_cache: dict = {}
        self._perm_cache: dict = {}
        self.device = torch.device("cpu")
        self._nhwc = False  # loaded weights in channels-last layout (see load)

    # -- weights ------------------------------------------------------------------------------
    @property
    def hidden_layers(self) -> list[str]:
        return [L.name for L in self.layers if L.hidden]

    def to(self, device) -> "CompactNet":
        device = torch.device(device)
        for L in self.layers:
            for attr in ("out_alive", "out_const", "in_alive", "in_const"):
                setattr(L, attr, getattr(L, attr).to(device))
            if L.taps is not None:
                L.taps = L.taps.to(device)
        if self.in_select is not None:
            self.in_select = self.in_select.to(device)
        if self._mats is not None:
            self._mats = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in m.items()}
                          for m in self._mats]
        self.device = device
        return self

    def materialise(self, params: Mapping[str, torch.Tensor]) -> list[dict]:
        """Compact weights and constants of every layer from the full parameters (differentiable
        with respect to ``params``)."""
        mats = []
        c_prev = None  # constant outputs of the previous layer, per input unit of this layer
        for L in self.layers:
            W = params[f"{L.name}.weight"]
            b = params.get(f"{L.name}.bias")
            if b is None:
                b = W.new_zeros(L.n_units)
            cin = None
            if L.in_const.numel():
                cin = c_prev if L.in_hw == 1 else c_prev.repeat_interleave(L.in_hw)
                cin = cin.index_select(0, L.in_const)

            def fold(rows: torch.Tensor) -> torch.Tensor:
                Wr = W.index_select(0, rows)
                out = b.index_select(0, rows)
                if cin is not None:
                    Wc = Wr.index_select(1, L.in_const)
                    if L.kind == "conv":
                        Wc = Wc.sum(dim=(2, 3))
                    out = out + Wc @ cin
                return out

            m: dict = {}
            if L.out_alive.numel():
                m["W"] = W.index_select(0, L.out_alive).index_select(1, L.in_alive)
                m["b"] = fold(L.out_alive)
                if L.taps is not None:
                    m["Wt"] = m["W"].flatten(1).index_select(1, L.taps)
            m["z_const"] = fold(L.out_const)  # PSP of the constant units
            c = F.relu(m["z_const"]) if L.hidden else m["z_const"]
            # constant output per *input unit* of the next layer: full vector over units with
            # the constants in place (alive entries unused)
            full = c.new_zeros(L.n_units)
            if L.out_const.numel():
                full = full.index_copy(0, L.out_const, c)
            c_prev = full
            mats.append(m)
        return mats

    @torch.no_grad()
    def load(self, params: Mapping[str, torch.Tensor]) -> "CompactNet":
        p = {k: params[k].detach().to(self.device) for k in self.param_names if k in params}
        self._mats = self.materialise(p)
        # On the CPU, oneDNN convolutions run faster in channels-last (NHWC) layout: LeNet-5's
        # compacted conv2 at 99.57 % takes ~7 ms per 1,000 images instead of ~12 ms.
        self._nhwc = self.device.type == "cpu"
        if self._nhwc:
            for L, m in zip(self.layers, self._mats):
                if self._nhwc_layer(L, m):
                    m["W"] = m["W"].contiguous(memory_format=torch.channels_last)
        return self

    def _nhwc_layer(self, L: _CLayer, m: dict) -> bool:
        """Whether ``forward`` computes this layer in channels-last layout."""
        return self._nhwc and L.kind == "conv" and "W" in m and "Wt" not in m

    # -- forward ------------------------------------------------------------------------------
    def _forward(self, mats, x, observe=None, nhwc: bool = False):
        h = x
        for kind, _ in self.plan.pre:
            if kind == "flatten":
                h = h.flatten(1)
        if self.in_select is not None:
            h = h.index_select(1, self.in_select)
        B = x.shape[0]
        last = self.layers[-1]
        for L, m in zip(self.layers, mats):
            if "W" in m and h is not None:
                if L.kind == "linear":
                    z = F.linear(h, m["W"], m["b"])
                elif "Wt" in m:
                    # sparse conv: gather the kept taps (im2col restricted to them), one matmul
                    Bh, C, H, W = h.shape
                    idx, Ho, Wo = L.tap_index(C, H, W, h.device)
                    cols = h.reshape(Bh, -1).index_select(1, idx).view(Bh, -1, Ho * Wo)
                    z = torch.matmul(m["Wt"], cols).add_(m["b"].view(1, -1, 1)) if not torch.is_grad_enabled() \
                        else torch.matmul(m["Wt"], cols) + m["b"].view(1, -1, 1)
                    z = z.view(Bh, -1, Ho, Wo)
                elif nhwc:
                    z = F.conv2d(_channels_last(h), m["W"], m["b"], stride=L.stride, padding=L.padding)
                    z = z.contiguous(memory_format=torch.channels_last)  # a no-op when oneDNN kept it
                else:
                    z = F.conv2d(h, m["W"], m["b"], stride=L.stride, padding=L.padding)
            else:
                z = None
            if observe is not None and L.hidden:
                if z is None:
                    zo = x.new_zeros(B, 0)
                elif nhwc and z.dim() == 4:
                    zo = z.permute(0, 2, 3, 1).flatten(1)  # a view: neurons position-major
                else:
                    zo = z.flatten(1)
                observe(L.name, zo)
            if L is last:
                break
            h = z
            if h is not None:
                for k, fn in L.post_fast:
                    if k == "relu":
                        h = F.relu(h)
                    elif k == "pool":
                        h = fn(h)
                    elif k == "flatten":
                        h = h.flatten(1)
        # assemble the logits in the full order
        m = mats[-1]
        parts = []
        if z is not None:
            parts.append(z)
        if last.out_const.numel():
            parts.append(m["z_const"].unsqueeze(0).expand(B, -1))
        out = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        perm = self._logit_perm(out.device)
        return out if perm is None else out.index_select(1, perm)

    def _logit_perm(self, device):
        key = str(device)
        if key not in self._perm_cache:
            self._perm_cache[key] = self._make_logit_perm(device)
        return self._perm_cache[key]

    def _make_logit_perm(self, device):
        last = self.layers[-1]
        order = torch.cat([last.out_alive if last.out_alive.numel() else last.out_alive.new_zeros(0),
                           last.out_const]).to(device)
        if torch.equal(order, torch.arange(order.numel(), device=device)):
            return None
        return torch.argsort(order)

    def forward(self, x: torch.Tensor, observe: Callable | None = None) -> torch.Tensor:
        if self._mats is None:
            raise RuntimeError("CompactNet.load(params) first")
        return self._forward(self._mats, x, observe, nhwc=self._nhwc)

    __call__ = forward

    def functional(self, params: Mapping[str, torch.Tensor], x: torch.Tensor, observe=None,
                   nhwc: bool = False):
        """Differentiable logits at ``params`` (full tensors; zero off the mask); ``nhwc``:
        convolutions in channels-last layout (faster on the CPU, as the dense training runs)."""
        return self._forward(self.materialise(params), x, observe, nhwc=nhwc)

    def multiply_adds(self, input_shape) -> tuple[int, int]:
        """``(compacted, dense)`` multiply-adds of one sample's forward pass through the
        Linear and Conv2d layers: what compaction saves, decided from the mask alone."""
        pos = self._positions(input_shape)
        mods = dict(self._model.named_modules())
        ours = full = 0
        for L in self.layers:
            W = mods[L.name].weight
            per_unit = W[0].numel()  # inputs x kernel positions of one full unit
            full += L.n_units * per_unit * pos[L.name]
            if L.taps is not None:  # gather of the kept taps and one matmul
                ours += int(L.out_alive.numel()) * int(L.taps.numel()) * pos[L.name]
            else:
                k = 1 if L.kind == "linear" else int(W.shape[2] * W.shape[3])
                ours += int(L.out_alive.numel()) * int(L.in_alive.numel()) * k * pos[L.name]
        return ours, full

    # -- PSP bookkeeping ------------------------------------------------------------------------
    def _positions(self, input_shape) -> dict[str, int]:
        """Spatial positions per unit of every layer's output (1 for Linear)."""
        key = tuple(input_shape)
        if key not in self._shape_cache:
            mods = dict(self._model.named_modules())
            sizes: dict[str, int] = {}
            hooks = []
            for L in self.layers:
                def hook(mod, inp, out, name=L.name):
                    sizes[name] = int(out[0].numel() // out.shape[1])
                hooks.append(mods[L.name].register_forward_hook(hook))
            try:
                with torch.no_grad():
                    p = next(self._model.parameters())
                    self._model(torch.zeros(1, *key, dtype=p.dtype, device=p.device))
            finally:
                for h in hooks:
                    h.remove()
            self._shape_cache[key] = sizes
        return self._shape_cache[key]

    def psp_layouts(self, input_shape) -> dict[str, dict]:
        """Per hidden layer: ``n`` (all neurons: units x positions), ``alive_index`` (full-layer
        neuron index of each column that ``forward`` observes), ``const_index`` and ``const_z``
        (the constant neurons and their PSP) at the loaded point."""
        if not self.keep_unused:
            raise RuntimeError("PSP statistics need compact_model(..., keep_unused=True)")
        pos = self._positions(input_shape)
        out = {}
        for L, m in zip(self.layers, self._mats):
            if not L.hidden:
                continue
            hw = pos[L.name]
            ar = torch.arange(hw, device=self.device)
            if self._nhwc_layer(L, m):  # forward observes (position, unit), position-major
                alive = (L.out_alive.unsqueeze(0) * hw + ar.unsqueeze(1)).flatten()
            else:
                alive = (L.out_alive.unsqueeze(1) * hw + ar).flatten()
            const = (L.out_const.unsqueeze(1) * hw + ar).flatten()
            out[L.name] = {
                "n": L.n_units * hw,
                "alive_index": alive,
                "const_index": const,
                "const_z": m["z_const"].detach().repeat_interleave(hw),
            }
        return out


def _channels_last(h: torch.Tensor) -> torch.Tensor:
    """``h`` in channels-last layout; for a single channel that is only a change of strides
    (the memory is the same), which oneDNN needs to see to keep its output channels-last."""
    B, C, H, W = h.shape
    if h.stride() == (C * H * W, 1, W * C, C):
        return h
    if C == 1 and h.is_contiguous():
        return h.as_strided(h.shape, (H * W, 1, W, 1))
    return h.contiguous(memory_format=torch.channels_last)


def _mask_for(mask: Mapping[str, torch.Tensor], name: str, like: torch.Tensor) -> torch.Tensor:
    m = mask.get(name)
    if m is None:
        return torch.ones_like(like, dtype=torch.bool)
    return m.to(torch.bool).cpu()


def compact_model(model: nn.Module, mask: Mapping[str, torch.Tensor], keep_unused: bool = True,
                  sparse_conv_density: float = 0.1):
    """Build the compacted network of ``model`` for ``mask``.

    Returns ``(CompactNet, info)``, or ``(None, info)`` with ``info["reason"]`` for an
    unsupported architecture (the caller falls back to the dense model). ``info`` holds per
    layer the counts of units (rows/channels): ``units``, ``alive`` (computed), ``constant``,
    ``pruned`` (no kept incoming weight), ``unused_dropped``, ``sparse_taps`` (for a conv
    computed as a gather of its kept taps and one matmul: used when the kept taps, i.e. the
    (input channel, ky, kx) with a kept weight to some computed unit, are at most
    ``sparse_conv_density`` of all); and totals. The net is loaded with the model's current
    parameters.
    """
    plan, reason = trace_sequential(model)
    if plan is None:
        return None, {"supported": False, "reason": reason}
    cpu_masks = {}
    layers: list[_CLayer] = []
    # ---- forward pass over the structure: alive / constant units
    in_select = None
    for idx, s in enumerate(plan.steps):
        W = s.module.weight
        mw = _mask_for(mask, f"{s.name}.weight", W)
        cpu_masks[s.name] = mw
        n_units = W.shape[0]
        in_units = W.shape[1]
        in_hw = 1
        if idx == 0:
            # inputs are never constant; drop input features nobody reads
            used_in = mw.flatten(2).any(-1).any(0) if s.kind == "conv" else mw.any(0)
            in_alive_b = used_in
            if not bool(used_in.all()):
                in_select = torch.nonzero(used_in).flatten()
            in_const_b = torch.zeros(in_units, dtype=torch.bool)
        else:
            prev = layers[-1]
            if s.kind == "linear" and prev.kind == "conv":
                if in_units % prev.n_units:
                    return None, {"supported": False,
                                  "reason": f"{s.name}: in_features not a multiple of channels"}
                in_hw = in_units // prev.n_units
            alive_units = torch.zeros(prev.n_units, dtype=torch.bool)
            alive_units[prev.out_alive] = True
            const_units = torch.zeros(prev.n_units, dtype=torch.bool)
            const_units[prev.out_const] = True
            in_alive_b = alive_units.repeat_interleave(in_hw)
            in_const_b = const_units.repeat_interleave(in_hw)
        kept_from_alive = mw[:, in_alive_b]
        kept_from_alive = kept_from_alive.flatten(1).any(1) if kept_from_alive.numel() else \
            torch.zeros(n_units, dtype=torch.bool)
        pruned = ~mw.flatten(1).any(1)
        if s.kind == "conv" and in_const_b.any() and tuple(s.module.padding) != (0, 0):
            return None, {"supported": False,
                          "reason": f"{s.name}: padding with constant input channels"}
        out_alive = torch.nonzero(kept_from_alive).flatten()
        out_const = torch.nonzero(~kept_from_alive).flatten()
        layers.append(_CLayer(
            name=s.name, kind=s.kind, hidden=s.relu, post=s.post, n_units=n_units,
            out_alive=out_alive, out_const=out_const,
            in_alive=torch.nonzero(in_alive_b).flatten() if idx else
            (torch.arange(in_units) if in_select is None else torch.arange(in_select.numel())),
            in_const=torch.nonzero(in_const_b).flatten(), in_hw=in_hw,
            stride=tuple(s.module.stride) if s.kind == "conv" else (1, 1),
            padding=tuple(s.module.padding) if s.kind == "conv" else (0, 0),
            pruned_units=int(pruned.sum()),
        ))
    # first layer reads the selected inputs: its weight must be gathered on the selected columns
    if in_select is not None:
        layers[0].in_alive = in_select
    # ---- backward pass: drop alive units that feed no used unit (loss / Hessian only)
    if not keep_unused:
        used_next = None
        for i in range(len(layers) - 1, -1, -1):
            L = layers[i]
            if used_next is not None:
                nxt = layers[i + 1]
                mw_next = cpu_masks[nxt.name]
                rows = mw_next[used_next]  # (used units of next, in units[, k, k])
                cols_used = rows.flatten(2).any(-1).any(0) if nxt.kind == "conv" else rows.any(0)
                if nxt.in_hw > 1:
                    cols_used = cols_used.view(L.n_units, nxt.in_hw).any(1)
                keep = cols_used[L.out_alive]
                L.out_used_drop = int((~keep).sum())
                L.out_alive = L.out_alive[keep]
                alive_b = torch.zeros(L.n_units, dtype=torch.bool)
                alive_b[L.out_alive] = True
                nxt.in_alive = torch.nonzero(alive_b.repeat_interleave(nxt.in_hw)).flatten()
            used_next = torch.zeros(L.n_units, dtype=torch.bool)
            used_next[L.out_alive] = True
    # the next layer's alive inputs are exactly the previous layer's alive outputs
    for prev, L in zip(layers, layers[1:]):
        alive_b = torch.zeros(prev.n_units, dtype=torch.bool)
        alive_b[prev.out_alive] = True
        L.in_alive = torch.nonzero(alive_b.repeat_interleave(L.in_hw)).flatten()
    # post ops with the ReLU last (ReLU commutes with max-pool and flatten: same values, and the
    # ReLU then runs on the pooled, smaller tensor); sparse conv taps where they pay
    for L in layers:
        others = [(k, f) for k, f in L.post if k != "relu"]
        L.post_fast = others + ([("relu", None)] if L.hidden else [])
        if L.kind == "conv" and L.out_alive.numel() and L.padding == (0, 0):
            mw = cpu_masks[L.name]
            L.ksize = tuple(mw.shape[2:])
            sub = mw.index_select(0, L.out_alive.cpu()).index_select(1, L.in_alive.cpu()).any(0)
            taps = torch.nonzero(sub.flatten()).flatten()
            if taps.numel() <= sparse_conv_density * sub.numel():
                L.taps = taps
    param_names = []
    for L in layers:
        param_names.append(f"{L.name}.weight")
        if getattr(dict(model.named_modules())[L.name], "bias", None) is not None:
            param_names.append(f"{L.name}.bias")
    info = {
        "supported": True,
        "keep_unused": keep_unused,
        "layers": {
            L.name: {
                "units": L.n_units,
                "alive": int(L.out_alive.numel()),
                "constant": int(L.out_const.numel()),
                "pruned": L.pruned_units,
                "unused_dropped": L.out_used_drop,
                "inputs_read": int(L.in_alive.numel()),
                "inputs_constant": int(L.in_const.numel()),
                "sparse_taps": None if L.taps is None else int(L.taps.numel()),
            }
            for L in layers
        },
        "input_features_read": None if in_select is None else int(in_select.numel()),
    }
    info["units"] = sum(v["units"] for v in info["layers"].values())
    info["alive_units"] = sum(v["alive"] for v in info["layers"].values())
    info["constant_units"] = sum(v["constant"] for v in info["layers"].values())
    info["pruned_units"] = sum(v["pruned"] for v in info["layers"].values())
    net = CompactNet(plan, layers, in_select, keep_unused, model, param_names, info)
    dev = next(model.parameters()).device
    net.to(dev)
    net.load(dict(model.named_parameters()))
    return net, info
