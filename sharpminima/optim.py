"""SGD, Adam and the multi-step learning-rate schedule, as the training engine uses them.

Why not ``torch.optim``: its optimizers import ``torch._dynamo`` on their first call (their
methods are wrapped to be skipped by the compiler), which costs 1.1-1.7 s on this 2-core CPU,
a fifth of a small job's wall time and about 130 s of the default run's ~120 jobs. The update
rules below are torch's single-tensor ones (what ``torch.optim`` runs on the CPU), written
with the same tensor operations in the same order; ``tests/test_optim.py`` checks them
bitwise against ``torch.optim.SGD`` / ``Adam`` and ``lr_scheduler.MultiStepLR`` over many
steps, so a run trains the same numbers either way.

The interface is the part of ``torch.optim``'s the engine and LOBSTER use: ``param_groups``
(one group, its ``"lr"``), ``state`` (per parameter: ``momentum_buffer``, or Adam's ``step``,
``exp_avg``, ``exp_avg_sq``), ``zero_grad``, ``step``, ``state_dict`` / ``load_state_dict``.
"""

from __future__ import annotations

from collections import Counter

import torch


class _Optimizer:
    """One parameter group: ``params`` in order, hyperparameters in ``param_groups[0]``."""

    def __init__(self, params, **defaults):
        self.params = [p for p in params]
        if not self.params:
            raise ValueError("the optimizer got no parameters")
        self.param_groups = [dict(defaults, params=self.params)]
        self.state: dict[torch.Tensor, dict] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().zero_()

    def state_dict(self) -> dict:
        """Per-parameter state keyed by the parameter's position, and the hyperparameters."""
        index = {p: i for i, p in enumerate(self.params)}
        return {"state": {index[p]: dict(s) for p, s in self.state.items()},
                "hyper": {k: v for k, v in self.param_groups[0].items() if k != "params"}}

    def load_state_dict(self, state: dict) -> None:
        if set(state.get("hyper", {})) != set(self.param_groups[0]) - {"params"}:
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state is another "
                             f"optimizer's (hyperparameters {sorted(state.get('hyper', {}))})")
        self.param_groups[0].update(state["hyper"])
        self.state = {self.params[int(i)]: {k: v.to(self.params[int(i)].device) if torch.is_tensor(v) else v
                                            for k, v in s.items()}
                      for i, s in state["state"].items()}


class SGD(_Optimizer):
    """Stochastic gradient descent with momentum (heavy ball, dampening 0), optional
    Nesterov momentum and L2 weight decay, as ``torch.optim.SGD``:
    ``g = grad + wd * p``; ``b = g`` at the first step, else ``b = mu * b + g``;
    ``p -= lr * (g + mu * b if nesterov else b)``. Parameters without a gradient are skipped."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        if nesterov and momentum <= 0:
            raise ValueError("SGD: nesterov needs a positive momentum")
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                         nesterov=nesterov)

    @torch.no_grad()
    def step(self) -> None:
        g_ = self.param_groups[0]
        lr, mu, wd, nesterov = g_["lr"], g_["momentum"], g_["weight_decay"], g_["nesterov"]
        for p in self.params:
            if p.grad is None:
                continue
            grad = p.grad
            if wd != 0:
                grad = grad.add(p, alpha=wd)
            if mu != 0:
                state = self.state.setdefault(p, {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = torch.clone(grad).detach()
                    state["momentum_buffer"] = buf
                else:
                    buf.mul_(mu).add_(grad, alpha=1)
                grad = grad.add(buf, alpha=mu) if nesterov else buf
            p.add_(grad, alpha=-lr)


class Adam(_Optimizer):
    """Adam (Kingma & Ba) with L2 weight decay added to the gradient, as ``torch.optim.Adam``
    (betas 0.9 / 0.999, eps 1e-8): ``m = lerp(m, g, 1 - b1)``, ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.999),
                 eps: float = 1e-8):
        super().__init__(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas), eps=eps)

    @torch.no_grad()
    def step(self) -> None:
        g_ = self.param_groups[0]
        lr, wd, (b1, b2), eps = g_["lr"], g_["weight_decay"], g_["betas"], g_["eps"]
        for p in self.params:
            if p.grad is None:
                continue
            grad = p.grad
            state = self.state.setdefault(p, {})
            if not state:
                # torch keeps the step count as a float32 tensor; its value is what matters
                state["step"] = torch.tensor(0.0, dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] += 1
            if wd != 0:
                grad = grad.add(p, alpha=wd)
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m.lerp_(grad, 1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            t = state["step"].item()
            step_size = lr / (1 - b1 ** t)
            denom = (v.sqrt() / ((1 - b2 ** t) ** 0.5)).add_(eps)
            p.addcdiv_(m, denom, value=-step_size)


class MultiStepLR:
    """The learning rate multiplied by ``gamma`` at each milestone epoch (``step()`` once per
    epoch), chained as ``torch.optim.lr_scheduler.MultiStepLR`` does (a milestone listed
    twice multiplies by ``gamma ** 2``)."""

    def __init__(self, optimizer: _Optimizer, milestones, gamma: float = 0.1):
        self.optimizer, self.milestones, self.gamma = optimizer, Counter(milestones), gamma
        self.last_epoch = 0

    def step(self) -> None:
        self.last_epoch += 1
        if self.last_epoch in self.milestones:
            group = self.optimizer.param_groups[0]
            group["lr"] = group["lr"] * self.gamma ** self.milestones[self.last_epoch]

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch = int(state["last_epoch"])
