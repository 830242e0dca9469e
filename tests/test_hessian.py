"""Sparse-subspace Hessian: Lanczos against an exact Hessian, and against pyhessian."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from sharpminima.hessian import top_eigenvalues
from sharpminima.masks import Mask, prunable_parameters


class TinyMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 8)
        self.fc2 = nn.Linear(8, 6)
        self.fc3 = nn.Linear(6, 3)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class SmallLeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.conv2 = nn.Conv2d(4, 6, 3)
        self.fc1 = nn.Linear(6 * 2 * 2, 12)
        self.fc2 = nn.Linear(12, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 14 -> 12 -> 6
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 6 -> 4 -> 2
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def random_mask(model, keep, seed):
    g = torch.Generator().manual_seed(seed)
    return Mask({n: torch.rand(p.shape, generator=g) < keep for n, p in prunable_parameters(model).items()})


def exact_top(model, mask, x, y, k):
    """torch.autograd.functional.hessian of the loss in the kept entries, eigvalsh."""
    names = [n for n, _ in model.named_parameters()]
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    idx = {n: torch.nonzero(mask[n].flatten()).flatten() for n in names}
    sizes = [idx[n].numel() for n in names]
    theta0 = torch.cat([base[n].flatten()[idx[n]] for n in names]).double()

    def f(theta):
        params, off = {}, 0
        for n, s in zip(names, sizes):
            full = torch.zeros(base[n].numel(), dtype=torch.float64).index_put((idx[n],), theta[off:off + s])
            params[n] = full.view(base[n].shape)
            off += s
        out = torch.func.functional_call(model.double(), params, (x.double(),))
        return F.cross_entropy(out, y)

    H = torch.autograd.functional.hessian(f, theta0, vectorize=True)
    model.float()
    w = torch.linalg.eigvalsh(H).numpy()
    return w[np.argsort(-np.abs(w))][:k].tolist(), theta0.numel()  # largest |lambda| first


def fit(model, x, y, mask, steps=300, lr=0.2):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        mask.apply_to_grads(model)
        opt.step()
        mask.apply(model)
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("compact", [True, False])
def test_lanczos_matches_exact_hessian_mlp(compact):
    torch.manual_seed(0)
    model = TinyMLP()
    mask = random_mask(model, 0.6, seed=1)
    mask.apply(model)
    x = torch.randn(40, 5)
    y = torch.randint(0, 3, (40,))
    ref, dim = exact_top(model, mask, x, y, 5)
    assert dim > 40  # the Lanczos (eigsh) path, not the tiny dense fallback
    vals, n = top_eigenvalues(model, mask, x, y, k=5, solver="lanczos", tol=1e-10, compact=compact)
    assert n > 0
    assert [abs(v) for v in vals] == sorted((abs(v) for v in vals), reverse=True)
    np.testing.assert_allclose(vals, ref, rtol=1e-4, atol=1e-6)


def test_lanczos_matches_exact_hessian_conv_with_dead_neurons():
    torch.manual_seed(2)
    model = SmallLeNet()
    mask = random_mask(model, 0.35, seed=3)
    mask["conv1.weight"][1] = False  # dead channels: compacted HVP path
    mask["fc1.weight"][:4] = False
    mask.apply(model)
    x = torch.randn(20, 1, 14, 14)
    y = torch.randint(0, 3, (20,))
    ref, _ = exact_top(model, mask, x, y, 5)
    vals, _ = top_eigenvalues(model, mask, x, y, k=5, tol=1e-10, compact=True)
    np.testing.assert_allclose(vals, ref, rtol=1e-4, atol=1e-6)


def test_lanczos_vs_pyhessian_within_one_percent():
    torch.manual_seed(4)
    model = SmallLeNet()
    mask = random_mask(model, 0.5, seed=5)
    mask.apply(model)
    x = torch.randn(64, 1, 14, 14)
    y = torch.randint(0, 3, (64,))
    fit(model, x, y, mask)  # near a minimum: the top eigenvalues are the largest |lambda|
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    # pyhessian's power iteration finds the largest |lambda|: compare with Lanczos "LM"
    lv, ln = top_eigenvalues(model, mask, x, y, k=5, solver="lanczos", seed=0, which="LM")
    pv, pn = top_eigenvalues(model, mask, x, y, k=5, solver="pyhessian", seed=0, tol=1e-4, max_iter=300)
    assert ln > 0 and pn > 0
    assert [abs(v) for v in pv] == sorted((abs(v) for v in pv), reverse=True)
    np.testing.assert_allclose(lv, pv, rtol=1e-2)
    # the model is left as it was: same values, no gradients, train mode, no prune hooks
    assert model.training
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), before[n]) and p.grad is None
    assert not hasattr(model.conv1, "weight_orig")
    # pyhessian is seeded: same values again
    pv2, pn2 = top_eigenvalues(model, mask, x, y, k=2, solver="pyhessian", seed=0, tol=1e-4, max_iter=300)
    pv3, pn3 = top_eigenvalues(model, mask, x, y, k=2, solver="pyhessian", seed=0, tol=1e-4, max_iter=300)
    assert pv2 == pv3 and pn2 == pn3


class _Quadratic(nn.Module):
    """A network whose output is its weight vector (input: the identity), so that with the
    criterion 0.5 * w.A.w its loss Hessian is exactly A."""

    def __init__(self, n):
        super().__init__()
        self.fc = nn.Linear(n, 1, bias=False)

    def forward(self, x):
        return self.fc(x)


def test_the_top_eigenvalues_are_the_largest_in_magnitude_a_large_negative_one_included():
    n = 40  # above the tiny-problem threshold: ARPACK's path
    rng = np.random.RandomState(0)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    spectrum = np.concatenate([[-50.0, 10.0, 9.0, 8.0, 7.0], rng.uniform(-1, 1, n - 5)])
    A = torch.tensor(q @ np.diag(spectrum) @ q.T, dtype=torch.float32)
    model = _Quadratic(n)
    x, y = torch.eye(n), torch.zeros(n, dtype=torch.long)
    crit = lambda out, _y: 0.5 * out[:, 0] @ A @ out[:, 0]  # noqa: E731
    mask = {"fc.weight": torch.ones(1, n, dtype=torch.bool)}
    lm, _ = top_eigenvalues(model, mask, x, y, k=5, tol=1e-8, compact=False, criterion=crit)
    np.testing.assert_allclose(lm, [-50.0, 10.0, 9.0, 8.0, 7.0], rtol=1e-4)  # by magnitude
    la, _ = top_eigenvalues(model, mask, x, y, k=4, tol=1e-8, compact=False, criterion=crit, which="LA")
    np.testing.assert_allclose(la, [10.0, 9.0, 8.0, 7.0], rtol=1e-4)  # the old reading hides it
    sa, _ = top_eigenvalues(model, mask, x, y, k=1, tol=1e-8, compact=False, criterion=crit, which="SA")
    np.testing.assert_allclose(sa, [-50.0], rtol=1e-4)


def test_unknown_solver():
    model = TinyMLP()
    with pytest.raises(ValueError):
        top_eigenvalues(model, Mask.ones(model), torch.randn(4, 5), torch.zeros(4, dtype=torch.long),
                        solver="power")
