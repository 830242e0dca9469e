"""The plane around the sparsest solutions and the maps on it."""

import json
import logging
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from sharpminima.hessian import top_eigenvalues
from sharpminima.landscape import (PLANE_FORMAT, Plane, batchnorm_layers, make_plane, map_hessian,
                                   map_plane, plane_point, recalibrate_batchnorm)
from sharpminima.masks import Mask, prunable_parameters
from sharpminima.models import LeNet300, ResNetCifar
from sharpminima.psp import measure, psp_statistics

from tiny_nets import TinyConv


class WithBN(nn.Module):
    """Not a plain chain (BatchNorm): the maps fall back to the dense loop."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.bn = nn.BatchNorm1d(8)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(self.relu(self.bn(self.fc1(x))))


def TinyRes():
    """A residual BatchNorm network: ResNet with one block per stage, widths 2/4/8, 3 classes
    (3 x 4 x 4 inputs)."""
    return ResNetCifar(1, 3, widths=(2, 4, 8))


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
    q = ("loss", "error", "psp_norm_mean_square", "entropy1", "entropy2_agreement", "entropy2_joint")
    caplog.set_level(logging.INFO)
    a = map_plane(TinyConv, plane, x, y, q, batch_size=16, compact=True, joint_max_pairs=50,
                  per_layer=True)
    msgs = list(caplog.messages)
    b = map_plane(TinyConv(), plane, x, y, q, batch_size=16, compact=False, joint_max_pairs=50,
                  per_layer=True)
    assert a.attrs["compacted"] and not b.attrs["compacted"]
    assert len(a) == 15 and list(a.columns[:4]) == ["i", "j", "a", "b"]
    assert sum("ETA" in m for m in msgs) == 5  # one line per grid row
    assert "psp_norm_mean_square:conv1" in a.columns
    for col in a.columns:
        assert a[col].to_numpy() == pytest.approx(b[col].to_numpy(), rel=1e-5, abs=1e-9), col
    assert a.attrs["joint_pairs"]["conv1"] == {"pairs": 55, "exact": False}  # all of 11 neurons
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


# --------------------------------------------------------------------------------------------
# BatchNorm statistics at a point


def bn_pair(seed=0):
    """G and 1-S of TinyRes on one mask, with different weights and different BatchNorm
    running statistics (each from its own data, as after training)."""
    torch.manual_seed(seed)
    G, S = TinyRes(), TinyRes()
    gen = torch.Generator().manual_seed(seed + 1)
    mask = Mask({n: (torch.rand(p.shape, generator=gen) < 0.7) | (p.dim() == 1)  # BN kept
                 for n, p in prunable_parameters(G).items()})
    for model in (G, S):
        with torch.no_grad():
            model.fc.weight.mul_(4.0)  # confident logits: the loss reacts to the statistics
        mask.apply(model)
    for model, shift in ((G, 0.0), (S, 1.5)):
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(torch.randn(32, 3, 4, 4) * 2 + shift)
        model.eval()
    assert not torch.allclose(G.bn1.running_mean, S.bn1.running_mean, atol=0.1)
    return G, S, mask


def bn_data(n=40, seed=11):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 4, 4, generator=gen) + 0.3, torch.randint(0, 3, (n,), generator=gen)


def recalibrated(model, x, batch_size):
    m = TinyRes()
    m.load_state_dict(model.state_dict())
    recalibrate_batchnorm(m, x, batch_size)
    return m.eval()


def test_recalibrate_batchnorm_definition():
    G, _, _ = bn_pair()
    x, _ = bn_data(40)
    momenta = [bn.momentum for bn in batchnorm_layers(G)]
    with torch.no_grad():
        c = G.conv1(x)  # the input of the stem's BatchNorm
    assert recalibrate_batchnorm(G, x) == 7  # one batch: the sample statistics of x
    assert torch.allclose(G.bn1.running_mean, c.mean((0, 2, 3)), atol=1e-6)
    assert torch.allclose(G.bn1.running_var, c.var((0, 2, 3), unbiased=True), rtol=1e-5)
    assert int(G.bn1.num_batches_tracked) == 1
    assert not G.training and [bn.momentum for bn in batchnorm_layers(G)] == momenta
    # batches of 16, 16, 8: the mean over the batches of the batch statistics
    recalibrate_batchnorm(G, x, 16)
    parts = [c[i:i + 16] for i in range(0, 40, 16)]
    mean = torch.stack([p.mean((0, 2, 3)) for p in parts]).mean(0)
    var = torch.stack([p.var((0, 2, 3), unbiased=True) for p in parts]).mean(0)
    assert torch.allclose(G.bn1.running_mean, mean, atol=1e-6)
    assert torch.allclose(G.bn1.running_var, var, rtol=1e-5)
    assert int(G.bn1.num_batches_tracked) == 3
    # deterministic, and only BatchNorm runs in train mode (a dropout stays off)
    net = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.BatchNorm1d(8)).train()
    xs = torch.randn(20, 6)
    recalibrate_batchnorm(net, xs, 10)
    first = net[2].running_mean.clone()
    recalibrate_batchnorm(net, xs, 10)
    assert torch.equal(net[2].running_mean, first) and net.training and net[1].training
    with torch.no_grad():
        h = net[0](xs)
    assert torch.allclose(first, (h[:10].mean(0) + h[10:].mean(0)) / 2, atol=1e-6)
    # no BatchNorm: nothing runs
    calls = []
    lenet = LeNet300()
    lenet.register_forward_pre_hook(lambda m, a: calls.append(1))
    assert recalibrate_batchnorm(lenet, torch.randn(4, 784)) == 0 and calls == []


def test_map_at_g_and_s_is_the_recalibrated_g_and_s():
    G, S, mask = bn_pair()
    plane = make_plane(G, S, mask, seed=2, res_a=5, res_b=3)
    x, y = bn_data(40)
    q = ("loss", "error", "psp_norm_mean_square", "psp_norm_l2", "entropy1", "entropy2_agreement")
    gi, si = tuple(plane.meta["g_index"]), tuple(plane.meta["s_index"])
    df = map_plane(TinyRes, plane, x, y, q, batch_size=16, points=[gi, si], per_layer=True)
    assert not df.attrs["compacted"]
    assert df.attrs["batchnorm"] == {"layers": 7, "recalibration_samples": 40, "batch_size": 16}
    assert "psp_norm_mean_square:layers.1.relu2" in df.columns
    for (idx, model), row in zip(((gi, G), (si, S)), df.itertuples()):
        assert (row.i, row.j) == idx
        ref = psp_statistics(recalibrated(model, x, 16), x, y, 3, batch_size=16)
        assert row.loss == pytest.approx(ref["loss"], rel=1e-6)
        assert row.error == pytest.approx(ref["error"])
        assert row.psp_norm_mean_square == pytest.approx(ref["psp_norm_mean_square"], rel=1e-6)
        assert row.psp_norm_l2 == pytest.approx(ref["psp_norm_l2"], rel=1e-6)
        assert row.entropy1 == pytest.approx(ref["entropy1"], rel=1e-6)
        assert row.entropy2_agreement == pytest.approx(ref["entropy2_agreement"], rel=1e-6)
    # the old rule (G's stored statistics at every point) fails the check at 1-S by far more
    # than its tolerance, and G's own stored statistics are not what the map uses at G
    s_row, g_row = df.iloc[1], df.iloc[0]
    S_with_g_buffers = TinyRes()
    S_with_g_buffers.load_state_dict(plane_point(plane, 1.0, 0.0))
    old = measure(S_with_g_buffers.eval(), x, y, 3, 16, ("loss", "psp_norm_mean_square"))
    assert old["loss"] != pytest.approx(s_row.loss, rel=1e-2)
    assert old["psp_norm_mean_square"] != pytest.approx(s_row.psp_norm_mean_square, rel=1e-2)
    assert measure(G, x, y, 3, 16, ("loss",))["loss"] != pytest.approx(g_row.loss, rel=1e-3)
    # a setting-controlled number of samples for the statistics (the map still uses all 40)
    sub = map_plane(TinyRes, plane, x, y, ("loss",), batch_size=16, points=[si],
                    bn_samples=24, bn_batch_size=8)
    ref = measure(recalibrated(S, x[:24], 8), x, y, 3, 16, ("loss",))["loss"]
    assert sub.loss.iloc[0] == pytest.approx(ref, rel=1e-6)
    assert sub.attrs["batchnorm"]["recalibration_samples"] == 24
    with pytest.raises(ValueError):
        map_plane(TinyRes, plane, x, y, ("loss",), points=[si], bn_samples=41)


def test_map_hessian_at_g_and_s_is_the_recalibrated_g_and_s():
    G, S, mask = bn_pair(seed=3)
    plane = make_plane(G, S, mask, seed=0, res_a=5, res_b=3)
    x, y = bn_data(24, seed=12)
    pts = [plane.meta["g_index"], plane.meta["s_index"]]
    df = map_hessian(TinyRes, plane, x, y, k=2, points=pts, tol=1e-6)
    assert df.attrs["batchnorm"]["batch_size"] == 24  # one batch, as the Hessian's loss
    for model, row in zip((G, S), df.itertuples()):
        vals, _ = top_eigenvalues(recalibrated(model, x, None), mask, x, y, k=2, tol=1e-6)
        assert [row.eig1, row.eig2] == pytest.approx(vals, rel=1e-4)
    # with 1-S's parameters and G's statistics the curvature differs
    S_with_g_buffers = TinyRes()
    S_with_g_buffers.load_state_dict(plane_point(plane, 1.0, 0.0))
    old, _ = top_eigenvalues(S_with_g_buffers, mask, x, y, k=2, tol=1e-6)
    assert abs(old[0] - df.eig1.iloc[1]) > 1e-2 * abs(df.eig1.iloc[1])


def test_map_without_batchnorm_is_the_direct_evaluation():
    """LeNet-300 (no BatchNorm): each point is the plain evaluation of the plane point, with
    no recalibration pass; the compacted map agrees with it."""
    G, S, mask = pair(LeNet300, keep=0.2, seed=4)
    plane = make_plane(G, S, mask, seed=1, res_a=5, res_b=3)
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(60, 784, generator=gen)
    y = torch.randint(0, 10, (60,), generator=gen)
    q = ("loss", "error", "psp_norm_mean_square", "entropy1", "entropy2_agreement")
    pts = [(0, 0), (1, 1), (3, 1), (4, 2)]
    calls = []
    model = LeNet300()
    model.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    dense = map_plane(model, plane, x, y, q, batch_size=25, compact=False, points=pts)
    assert calls == [1, 25, 25, 10] * 4  # per point: the layer-size dry run, the map's pass
    comp = map_plane(LeNet300, plane, x, y, q, batch_size=25, points=pts)
    assert comp.attrs["compacted"] and dense.attrs["batchnorm"] is None
    for row, crow in zip(dense.itertuples(), comp.itertuples()):
        direct = LeNet300()
        direct.load_state_dict(plane_point(plane, row.a, row.b))
        ref = measure(direct.eval(), x, y, 10, 25, q)
        assert row.loss == ref["loss"] and row.error == ref["error"]  # bit for bit
        assert row.psp_norm_mean_square == ref["psp_norm_mean_square"] and row.entropy1 == ref["entropy1"]
        assert row.entropy2_agreement == ref["entropy2_agreement"]
        assert crow.loss == pytest.approx(ref["loss"], rel=1e-5)
        assert crow.psp_norm_mean_square == pytest.approx(ref["psp_norm_mean_square"], rel=1e-5)


def _traj(seed, reached):
    snap = lambda t, r, e: {"target": t, "reached": r, "event": e, "pruned_params_pct": t + 0.1,  # noqa: E731
                            "pruned_neurons_pct": 50.0}
    return {"method": "lobster", "panel": "p", "seed": seed,
            "snapshots": [snap(98.0, True, 3), snap(99.57, reached, 5)]}


def test_the_landscape_target_is_the_configured_one_or_the_highest_all_seeds_reached():
    from sharpminima.experiments.landscape import _reached_at, choose_landscape_target, common_landscape_target

    trajs = [_traj(0, True), _traj(1, False)]
    assert common_landscape_target(trajs, 99.57) == 99.57
    assert common_landscape_target(trajs, None) == 98.0
    # a seed that missed the target has no solution there: the points leave it out
    assert [_reached_at(t, 99.57) for t in trajs] == [True, False]
    with pytest.raises(ValueError, match="99.57 was not reached by lobster"):
        choose_landscape_target(trajs[1], 99.57)
    # where the run's epoch budget ended it short of the target, the error says so and what to raise
    short = {**trajs[1], "epochs": 1000, "events": [{"end": "plateau", "pruned_params_pct": 98.1},
                                                    {"end": "budget", "pruned_params_pct": 99.31}]}
    with pytest.raises(ValueError, match=r"ended by its epoch budget \(1000 epochs\) at 99.31 %: raise "
                                         r"panels.p.lobster.recipe.epochs"):
        choose_landscape_target(short, 99.57)


def test_g_is_chosen_once_for_the_plane_and_the_points(tmp_path):
    """choose_g writes the target every job reads and each seed's snapshot there; the plane's
    seed (the first) must have reached it; a trajectory changed afterwards is refused."""
    from sharpminima.experiments.landscape import _g_snapshot, choose_g

    files = []
    for seed, reached in ((0, True), (1, False), (2, True)):
        files.append(tmp_path / f"s{seed}.json")
        files[-1].write_text(json.dumps(_traj(seed, reached)))
    g = choose_g(files, 99.57, g_out=tmp_path / "g.json")
    assert json.loads((tmp_path / "g.json").read_text())["target"] == 99.57 == g["target"]
    assert [(s["seed"], s["reached"], s.get("event")) for s in g["seeds"]] == [(0, True, 5), (1, False, None), (2, True, 5)]
    assert g["plane_seed"] == 0 and g["target_rule"] == "configured"
    highest = choose_g(files, None)  # the highest target every seed reached
    assert highest["target"] == 98.0 and all(s["reached"] and s["event"] == 3 for s in highest["seeds"])
    with pytest.raises(ValueError, match="99.57 was not reached by lobster"):
        choose_g(files[1:], 99.57)  # the plane's seed (1) has no solution there
    moved = _traj(2, True)
    moved["snapshots"][1]["event"] = 6
    with pytest.raises(ValueError, match="not the one G was chosen at"):
        _g_snapshot(g, moved)
