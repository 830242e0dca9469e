"""The plane around the sparsest solutions and the maps on it."""

import logging
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from sharpminima.landscape import (PLANE_FORMAT, Plane, make_plane, map_hessian, map_plane,
                                   plane_point)
from sharpminima.masks import Mask, prunable_parameters

from tiny_nets import TinyConv


class WithBN(nn.Module):
    """Not a plain chain (BatchNorm): the maps fall back to the dense loop."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.bn = nn.BatchNorm1d(8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.bn(self.fc1(x))))


def pair(model_cls, keep=0.3, seed=0):
    torch.manual_seed(seed)
    g_model, s_model = model_cls(), model_cls()
    gen = torch.Generator().manual_seed(seed + 1)
    mask = Mask({n: (torch.rand(p.shape, generator=gen) < keep) | n.endswith("bias")
                 for n, p in prunable_parameters(g_model).items()})
    mask["conv1.weight" if "conv1.weight" in mask else "fc1.weight"][0] = False  # a dead neuron
    mask.apply(g_model)
    mask.apply(s_model)
    return g_model, s_model, mask


def flat(d, keys):
    return torch.cat([d[k].double().flatten() for k in keys])


def test_plane_geometry_and_exact_endpoints(tmp_path):
    G, S, mask = pair(TinyConv)
    plane = make_plane(G.state_dict(), S.state_dict(), mask, seed=3, res_a=9, res_b=5)
    keys = list(mask)
    u, v = flat(plane.u, keys), flat(plane.v, keys)
    assert abs(float(u @ v)) <= 1e-12 * float(u.norm() * v.norm())
    assert float(v.norm()) == pytest.approx(float(u.norm()), rel=1e-12)
    m = torch.cat([mask[k].flatten() for k in keys])
    assert torch.all(v[~m] == 0) and torch.all(u[~m] == 0)
    assert plane.meta["g_index"] == [2, 2] and plane.meta["s_index"] == [6, 2]
    assert float(plane.a[2]) == 0.0 and float(plane.a[6]) == 1.0 and float(plane.b[2]) == 0.0
    assert plane.a[0] == -0.5 and plane.a[-1] == 1.5 and plane.b[0] == -1 and plane.b[-1] == 1
    g0 = plane_point(plane, 0.0, 0.0)
    s1 = plane_point(plane, 1.0, 0.0)
    for k, t in G.state_dict().items():
        assert torch.equal(g0[k], t), k
    for k, t in S.state_dict().items():
        assert torch.equal(s1[k], t), k
    # any point: off the mask exactly zero; on it theta(G) + a u + b v
    p = plane_point(plane, 0.3, -0.7)
    for k in keys:
        assert torch.all(p[k][~mask[k]] == 0)
        expect = G.state_dict()[k].double() + 0.3 * plane.u[k] - 0.7 * plane.v[k]
        assert torch.allclose(p[k].double(), expect, atol=1e-6)
    # seeded: same plane again; another seed, another v
    again = make_plane(G.state_dict(), S.state_dict(), mask, seed=3, res_a=9, res_b=5)
    assert torch.equal(flat(again.v, keys), v)
    other = make_plane(G, S, mask, seed=4, res_a=9, res_b=5)
    assert not torch.equal(flat(other.v, keys), v)
    # save / load round trip
    path = tmp_path / "plane.pt"
    plane.save(path)
    back = Plane.load(path)
    assert back.meta == plane.meta and back.meta["format"] == PLANE_FORMAT
    assert torch.equal(flat(back.v, keys), v) and torch.equal(back.a, plane.a)
    assert torch.equal(plane_point(back, 1.0, 0.0)["fc2.weight"], S.fc2.weight.detach())


def test_non_mask_parameters_and_buffers_come_from_g():
    G, S, mask = pair(WithBN)
    with torch.no_grad():
        G.bn.running_mean.fill_(0.25)
        S.bn.running_mean.fill_(-3.0)
    del mask["fc2.bias"]  # not in the mask: held at G's value
    plane = make_plane(G, S, mask, seed=0, res_a=3, res_b=3)
    p = plane_point(plane, 1.0, 0.5)
    assert torch.equal(p["fc2.bias"], G.fc2.bias.detach())
    assert torch.equal(p["bn.running_mean"], G.bn.running_mean)


def test_plane_rejects_points_off_the_mask():
    G, S, mask = pair(TinyConv)
    with torch.no_grad():
        S.fc1.weight[~mask["fc1.weight"]] = 1.0
    with pytest.raises(ValueError):
        make_plane(G, S, mask, seed=0, res_a=3, res_b=3)
    with pytest.raises(ValueError):
        make_plane(G, G, mask, seed=0, res_a=3, res_b=3)  # u = 0


def test_map_compact_equals_dense_loop(caplog):
    G, S, mask = pair(TinyConv, keep=0.25, seed=5)
    plane = make_plane(G, S, mask, seed=1, res_a=5, res_b=3)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(40, 1, 14, 14, generator=gen)
    y = torch.randint(0, 3, (40,), generator=gen)
    q = ("loss", "error", "psp_norm", "entropy1", "entropy2_agreement", "entropy2_joint")
    caplog.set_level(logging.INFO)
    a = map_plane(TinyConv, plane, x, y, q, batch_size=16, compact=True, joint_max_pairs=50,
                  per_layer=True)
    msgs = list(caplog.messages)
    b = map_plane(TinyConv(), plane, x, y, q, batch_size=16, compact=False, joint_max_pairs=50,
                  per_layer=True)
    assert a.attrs["compacted"] and not b.attrs["compacted"]
    assert len(a) == 15 and list(a.columns[:4]) == ["i", "j", "a", "b"]
    assert sum("ETA" in m for m in msgs) == 5  # one line per grid row
    assert "psp_norm:conv1" in a.columns
    for col in a.columns:
        assert a[col].to_numpy() == pytest.approx(b[col].to_numpy(), rel=1e-5, abs=1e-9), col
    assert a.attrs["joint_pairs"]["conv1"] == {"pairs": 50, "exact": False}
    # the point (0, 0) is G: the map there is G's own evaluation
    g_row = a[(a.i == 1) & (a.j == 1)].iloc[0]
    assert g_row.a == 0.0 and g_row.b == 0.0
    with torch.no_grad():
        loss_g = F.cross_entropy(G(x), y).item()
    assert g_row.loss == pytest.approx(loss_g, rel=1e-5)
    # a subset of points
    sub = map_plane(TinyConv, plane, x, y, ("loss",), points=[(0, 0), (4, 2)])
    assert list(zip(sub.i, sub.j)) == [(0, 0), (4, 2)]
    assert sub.loss.tolist() == pytest.approx(a.loss[[0, 14]].tolist(), rel=1e-5)


def test_map_falls_back_to_dense_for_other_architectures():
    G, S, mask = pair(WithBN)
    G.eval()
    plane = make_plane(G, S, mask, seed=0, res_a=2, res_b=2)
    x = torch.randn(12, 6)
    y = torch.randint(0, 3, (12,))
    df = map_plane(WithBN, plane, x, y, ("loss", "entropy1"))
    assert not df.attrs["compacted"] and "reason" in df.attrs["compact_info"]
    assert len(df) == 4 and df.loss.notna().all()


def test_map_hessian_at_g_and_s():
    G, S, mask = pair(TinyConv, keep=0.2, seed=7)
    plane = make_plane(G, S, mask, seed=0, res_a=5, res_b=3)
    x = torch.randn(16, 1, 14, 14)
    y = torch.randint(0, 3, (16,))
    df = map_hessian(TinyConv, plane, x, y, k=3, points=[plane.meta["g_index"], plane.meta["s_index"]])
    assert len(df) == 2 and {"eig1", "eig2", "eig3", "eig_mean", "n_hvp"} <= set(df.columns)
    assert (df.eig1 >= df.eig2).all() and (df.eig2 >= df.eig3).all()
    assert df.eig_mean.iloc[0] == pytest.approx((df.eig1 + df.eig2 + df.eig3).iloc[0] / 3)


def test_tune_malloc_keeps_large_blocks_from_page_faulting_again():
    """After tune_malloc, a freed 64 MiB block is reused, not returned to the OS: once the heap
    has grown (the first allocations may still fault, how many depends on the machine and its load:
    one to five were seen), allocating it again costs (almost) no page faults, where glibc's default faults
    every page in again on every allocation. Run in a fresh process, since the setting holds for
    the rest of a process."""
    import subprocess
    import sys

    code = """
import resource, sys, torch
sys.path.insert(0, {root!r})
from sharpminima.landscape import tune_malloc
applied = tune_malloc() if sys.argv[1] == "tuned" else False
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
per_allocation = []
for _ in range(30):
    before = faults()
    x = torch.ones(16 * 1024 * 1024); del x   # 64 MiB, above glibc's mmap threshold
    per_allocation.append(faults() - before)
print(applied, *per_allocation)
""".format(root=str(Path(__file__).resolve().parents[1]))
    out = {}
    for mode in ("plain", "tuned"):
        r = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, timeout=120)
        applied, *faults = r.stdout.split()
        out[mode] = (applied == "True", [int(n) for n in faults])
    assert out["tuned"][0], "mallopt was not applied (glibc expected on Linux)"
    pages = 64 * 1024 * 1024 // 4096
    plain, tuned = out["plain"][1], out["tuned"][1]
    assert min(plain[-10:]) > 0.9 * pages, plain  # every allocation faults its pages in again
    assert sum(tuned[-10:]) < pages / 10, tuned  # in the steady state the freed block is reused


def test_grid_resolution_one_and_unknown_quantity():
    G, S, mask = pair(TinyConv)
    plane = make_plane(G, S, mask, seed=0, res_a=1, res_b=1)
    assert plane.shape == (1, 1) and float(plane.a[0]) == -0.5
    with pytest.raises(ValueError):
        map_plane(TinyConv, plane, torch.randn(2, 1, 14, 14), torch.zeros(2, dtype=torch.long),
                  ("sharpness",))
    assert math.isfinite(plane.meta["cos_uv"])
