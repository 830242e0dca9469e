"""One representation of a sparse model, and the paper's way of counting sparsity.

A :class:`Mask` maps the name of every *prunable* parameter (weights and biases of Linear,
Conv2d and BatchNorm layers, as the authors' code regularises and counts them) to a bool
tensor of the same shape: True = kept, False = pruned. A pruned parameter is exactly 0.0;
the training engine re-applies the mask after every optimizer step, so momentum and weight
decay cannot revive it.

Counting, as the authors count (and as Fig. 1's ticks confirm):

- pruned parameters % = zero parameters / all prunable parameters;
- a neuron is an output unit of a Linear or Conv2d weight (a row, or an output channel), the
  output layer included; it is pruned when all its incoming weights are zero.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

PRUNABLE_TYPES = (nn.Linear, nn.Conv2d, nn.modules.batchnorm._BatchNorm)
NEURON_TYPES = (nn.Linear, nn.Conv2d)


def prunable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Weights and biases of every Linear, Conv2d and BatchNorm layer, by parameter name."""
    out = {}
    for mname, mod in model.named_modules():
        if isinstance(mod, PRUNABLE_TYPES):
            for pname, p in mod.named_parameters(recurse=False):
                out[f"{mname}.{pname}" if mname else pname] = p
    return out


class Mask(dict):
    """``parameter name -> bool tensor`` (True = kept) over the prunable parameters."""

    @classmethod
    def ones(cls, model: nn.Module) -> "Mask":
        return cls({n: torch.ones_like(p, dtype=torch.bool) for n, p in prunable_parameters(model).items()})

    @classmethod
    def from_nonzero(cls, model: nn.Module) -> "Mask":
        """The support of the model's current weights (zero = pruned)."""
        return cls({n: p.detach() != 0 for n, p in prunable_parameters(model).items()})

    def to(self, device) -> "Mask":
        return Mask({n: m.to(device) for n, m in self.items()})

    def _factor(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """The mask of ``name`` as 0/1 in ``like``'s dtype, device and memory layout, made
        once (the engine applies it twice per step; converting every time cost ~15 % of a
        sparse LeNet step). A Mask is not changed in place once used (training.Compaction)."""
        cache = self.__dict__.setdefault("_factors", {})
        key = (name, like.dtype, like.device, like.stride())
        if key not in cache:
            cache[key] = torch.empty_like(like).copy_(self[name])
        return cache[key]

    def __getstate__(self):  # pickled (torch.save) without the cached factors
        return {k: v for k, v in self.__dict__.items() if k != "_factors"}

    @torch.no_grad()
    def apply(self, model: nn.Module) -> None:
        """Zero every pruned entry in place."""
        params = dict(model.named_parameters())
        for name in self:
            p = params[name]
            p.mul_(self._factor(name, p))

    @torch.no_grad()
    def apply_to_grads(self, model: nn.Module) -> None:
        """Zero the gradients of pruned entries (so momentum buffers stay clean too)."""
        params = dict(model.named_parameters())
        for name in self:
            g = params[name].grad
            if g is not None:
                g.mul_(self._factor(name, g))

    def intersect(self, other: "Mask") -> "Mask":
        return Mask({n: self[n] & other[n].to(self[n].device) for n in self})

    @property
    def total(self) -> int:
        return sum(m.numel() for m in self.values())

    @property
    def kept(self) -> int:
        return int(sum(int(m.sum()) for m in self.values()))

    @property
    def pruned_fraction(self) -> float:
        return 1.0 - self.kept / self.total

    def layer_counts(self) -> dict[str, tuple[int, int]]:
        """``name -> (pruned, total)`` per parameter tensor."""
        return {n: (m.numel() - int(m.sum()), m.numel()) for n, m in self.items()}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: m.cpu() for n, m in self.items()}

    def save(self, path) -> None:
        from .provenance import atomic_torch_save

        atomic_torch_save(self.state_dict(), path)

    @classmethod
    def load(cls, path, device="cpu") -> "Mask":
        state = torch.load(Path(path), map_location=device, weights_only=True)
        return cls({n: t.bool() for n, t in state.items()})


def pruned_parameters(model: nn.Module) -> tuple[int, int]:
    """``(zero parameters, all prunable parameters)``."""
    params = prunable_parameters(model).values()
    total = sum(p.numel() for p in params)
    zero = sum(int((p.detach() == 0).sum()) for p in params)
    return zero, total


def neuron_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """Incoming weights of every neuron-bearing layer (Linear, Conv2d), by module name."""
    return {n: m.weight for n, m in model.named_modules() if isinstance(m, NEURON_TYPES)}


def pruned_neurons(model: nn.Module) -> tuple[int, int]:
    """``(pruned neurons, all neurons)``: output units of Linear/Conv2d layers whose incoming
    weights are all zero, the output layer included."""
    pruned = total = 0
    for w in neuron_weights(model).values():
        rows = w.detach().flatten(1)
        total += rows.shape[0]
        pruned += int((rows == 0).all(dim=1).sum())
    return pruned, total


def sparsity_report(model: nn.Module) -> dict[str, float | int]:
    """The numbers every pruned checkpoint carries (percentages as in Fig. 1)."""
    zp, tp = pruned_parameters(model)
    zn, tn = pruned_neurons(model)
    return {
        "pruned_params": zp,
        "total_params": tp,
        "pruned_params_pct": 100.0 * zp / tp,
        "pruned_neurons": zn,
        "total_neurons": tn,
        "pruned_neurons_pct": 100.0 * zn / tn,
    }
