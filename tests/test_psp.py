"""PSP statistics against brute force straight from the definitions (docs/methods.md §3):
explicit Python loops over neurons, pairs of neurons, classes and samples."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from sharpminima.models import ResNetCifar, build_model
from sharpminima.psp import (PSPAccumulator, _DenseObserved, hidden_layers, measure,
                             psp_statistics, psp_statistics_loop)


class TinyConv(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3)
        self.conv2 = nn.Conv2d(3, 4, 2)
        self.fc1 = nn.Linear(16, 5)
        self.fc2 = nn.Linear(5, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


class TinyMLP(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.fc1 = nn.Linear(6, 7)
        self.fc2 = nn.Linear(7, 5)
        self.fc3 = nn.Linear(5, num_classes)

    def forward(self, x):
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def h2(p):
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


def entropy(ps):
    return -sum(p * math.log2(p) for p in ps if p > 0)


def capture(model, x, layers):
    """PSP of every neuron of every hidden layer: {layer: list over samples of list over neurons}."""
    got = {}
    mods = dict(model.named_modules())
    hs = [mods[n].register_forward_hook(lambda m, i, o, n=n: got.__setitem__(n, o.flatten(1).tolist()))
          for n in layers]
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return got


def brute(model, x, y, C, layers, pairs=None, Z=None):
    """Every statistic from the PSPs ``Z`` (default: the hooked layers' outputs)."""
    if Z is None:
        Z = capture(model, x, layers)
    ys = y.tolist()
    N = len(ys)
    out = {"psp_norm_mean_square": 0.0, "psp_norm_l2": 0.0, "per_layer": {}}
    h1_all, n_all = 0.0, 0
    agree_layers, joint_layers = [], []
    for name in layers:
        z = Z[name]
        n = len(z[0])
        state = [[1 if z[s][i] > 0 else 0 for i in range(n)] for s in range(N)]
        sq = 0.0
        for s in range(N):
            for i in range(n):
                sq += z[s][i] ** 2
        norm = sq / (N * n)
        out["psp_norm_mean_square"] += norm
        # the literal L2 reading: per sample sqrt(sum_i z_i^2), averaged over samples
        euclid = sum(sum(v ** 2 for v in z[s]) ** 0.5 for s in range(N)) / N
        out["psp_norm_l2"] += euclid
        # first order
        h1 = 0.0
        for i in range(n):
            for c in range(C):
                idx = [s for s in range(N) if ys[s] == c]
                if not idx:
                    continue
                p = sum(state[s][i] for s in idx) / len(idx)
                h1 += h2(p)
        h1_all += h1
        n_all += n
        # second order, agreement: ordered pairs i != j in the same state
        H2 = 0.0
        for c in range(C):
            idx = [s for s in range(N) if ys[s] == c]
            if not idx:
                continue
            f = 0.0
            for s in idx:
                same = 0
                for i in range(n):
                    for j in range(n):
                        if i != j and state[s][i] == state[s][j]:
                            same += 1
                f += same / (n * (n - 1))
            H2 += h2(f / len(idx))
        agree_layers.append(H2)
        # second order, joint: entropy of the joint state of each pair, summed over classes
        plist = pairs[name] if pairs is not None and name in pairs else \
            [(i, j) for i in range(n) for j in range(i + 1, n)]
        tot = 0.0
        for (i, j) in plist:
            for c in range(C):
                idx = [s for s in range(N) if ys[s] == c]
                if not idx:
                    continue
                cnt = {}
                for s in idx:
                    key = (state[s][i], state[s][j])
                    cnt[key] = cnt.get(key, 0) + 1
                tot += entropy([v / len(idx) for v in cnt.values()])
        joint = tot / len(plist)
        joint_layers.append(joint)
        out["per_layer"][name] = {"psp_norm_mean_square": norm, "psp_norm_l2": euclid, "entropy1": h1 / n,
                                  "entropy2_agreement": H2,
                                  "entropy2_joint": joint}
    out["entropy1"] = h1_all / n_all
    out["entropy2_agreement"] = sum(agree_layers) / len(agree_layers)
    out["entropy2_joint"] = sum(joint_layers) / len(joint_layers)
    return out


KEYS = ("psp_norm_mean_square", "psp_norm_l2", "entropy1",
        "entropy2_agreement", "entropy2_joint")


def data(shape, N=24, C=4, present=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, *shape, generator=g)
    y = torch.randint(0, present, (N,), generator=g)  # class `present..C-1` absent on purpose
    return x, y


@pytest.mark.parametrize("cls,shape", [(TinyMLP, (6,)), (TinyConv, (1, 8, 8))])
def test_matches_brute_force(cls, shape):
    torch.manual_seed(1)
    model = cls().eval()
    # one dead neuron (all incoming weights and bias zero): entropy 0, no clamping
    with torch.no_grad():
        model.fc1.weight[0] = 0
        model.fc1.bias[0] = 0
    x, y = data(shape)
    layers = hidden_layers(model)
    ref = brute(model, x, y, 4, layers)
    got = psp_statistics(model, x, y, 4, batch_size=7, second_order=("agreement", "joint"))
    assert got["layers"] == layers
    for k in KEYS:
        assert got[k] == pytest.approx(ref[k], rel=1e-6, abs=1e-9), k
    for name in layers:
        for k, v in ref["per_layer"][name].items():
            assert got["per_layer"][name][k] == pytest.approx(v, rel=1e-6, abs=1e-9), (name, k)
        assert got["per_layer"][name]["joint_exact"]
    # the reference loop (benchmark baseline) agrees too
    loop = psp_statistics_loop(model, x, y, 4, batch_size=5)
    for k in KEYS[:4]:
        assert loop[k] == pytest.approx(ref[k], rel=1e-6, abs=1e-9), k


def test_joint_sampled_pairs_reported_and_exact_on_them():
    torch.manual_seed(2)
    model = TinyConv().eval()
    x, y = data((1, 8, 8), seed=3)
    layers = hidden_layers(model)
    max_pairs = 40
    got = psp_statistics(model, x, y, 4, batch_size=10, second_order=("joint",),
                         joint_max_pairs=max_pairs, seed=5)
    # recover the sampled pairs: a fixed function of (seed, layer, n)
    acc = PSPAccumulator(4, second_order=("joint",), joint_max_pairs=max_pairs, seed=5)
    pairs = {}
    for name, n in (("conv1", 108), ("conv2", 16), ("fc1", 5)):
        acc.set_layer(name, n)
        st = acc.layers[name]
        if not st["joint_exact"]:
            pl = acc.joint_pairs(name)  # every pair among 10 sampled neurons: 45 >= 40
            assert len(set(pl)) == 45 and all(i < j for i, j in pl)
            assert len({u for pr in pl for u in pr}) == 10
            pairs[name] = pl
    assert set(pairs) == {"conv1", "conv2"}  # fc1: 10 pairs <= 40, exact
    ref = brute(model, x, y, 4, layers, pairs=pairs)
    assert got["entropy2_joint"] == pytest.approx(ref["entropy2_joint"], rel=1e-6)
    assert got["per_layer"]["conv1"]["joint_exact"] is False
    assert got["per_layer"]["conv1"]["joint_pairs"] == 45
    assert got["per_layer"]["fc1"]["joint_exact"] is True
    assert got["per_layer"]["fc1"]["joint_pairs"] == 10


def test_batch_size_invariance_and_ranges():
    torch.manual_seed(3)
    model = TinyConv().eval()
    x, y = data((1, 8, 8), N=40, seed=4)
    a = psp_statistics(model, x, y, 4, batch_size=3, second_order=("agreement", "joint"))
    b = psp_statistics(model, x, y, 4, batch_size=1000, second_order=("agreement", "joint"))
    for k in KEYS:  # fp32 convolutions may round differently per batch size
        assert a[k] == pytest.approx(b[k], rel=1e-6)
    assert 0 <= a["entropy1"] <= 4
    assert 0 <= a["entropy2_agreement"] <= 4
    assert 0 <= a["entropy2_joint"] <= 2 * 4


def test_hidden_layers_of_registry_models():
    assert hidden_layers(build_model("lenet5")) == ["conv1", "conv2", "fc1"]
    assert hidden_layers(build_model("lenet300")) == ["fc1", "fc2"]
    r = hidden_layers(build_model("resnet32"))  # not a chain: its ReLU modules
    blocks = [f"layers.{i}.relu{k}" for i in range(15) for k in (1, 2)]
    assert r == ["relu"] + blocks and len(r) == 31 and "fc" not in r


def tiny_resnet(seed=0, num_classes=4):
    """ResNet with one block per stage, widths 2/4/8 (two option-A shortcuts), on 3x4x4
    inputs; BatchNorm with non-trivial affine parameters and running statistics."""
    torch.manual_seed(seed)
    model = ResNetCifar(1, num_classes, widths=(2, 4, 8))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 3, 4, 4) * 2 + 0.5)
    return model.eval()


def manual_relu_inputs(model, x):
    """What each ReLU of the ResNet sees, computed by hand from its modules."""
    with torch.no_grad():
        z = {"relu": model.bn1(model.conv1(x))}
        h = F.relu(z["relu"])
        for i, blk in enumerate(model.layers):
            z1 = blk.bn1(blk.conv1(h))
            z2 = blk.bn2(blk.conv2(F.relu(z1))) + blk.shortcut(h)
            z[f"layers.{i}.relu1"], z[f"layers.{i}.relu2"] = z1, z2
            h = F.relu(z2)
    return {k: v.flatten(1) for k, v in z.items()}


def test_psp_of_a_residual_network_is_what_each_relu_sees():
    model = tiny_resnet()
    x, y = data((3, 4, 4), N=24, seed=6)
    layers = hidden_layers(model)
    want = manual_relu_inputs(model, x)
    assert layers == list(want)
    got = {}
    with torch.no_grad():
        _DenseObserved(model).forward(x, lambda n, z: got.__setitem__(n, z.clone()))
    assert list(got) == layers
    for name in layers:
        assert torch.allclose(got[name], want[name], rtol=1e-6, atol=1e-6), name
    # the old reading (conv outputs, before BatchNorm and the shortcut) is a different tensor
    blk = model.layers[1]  # a stride-2 block: its shortcut pads channels
    with torch.no_grad():
        h = model.layers[0](F.relu(model.bn1(model.conv1(x))))
        c1 = blk.conv1(h)
        bn2 = blk.bn2(blk.conv2(F.relu(blk.bn1(c1))))
    assert not torch.allclose(c1.flatten(1), got["layers.1.relu1"], atol=1e-2)
    assert not torch.allclose(bn2.flatten(1), got["layers.1.relu2"], atol=1e-2)
    # every statistic, from those PSPs by brute force
    Z = {k: v.tolist() for k, v in want.items()}
    ref = brute(model, x, y, 4, layers, Z=Z)
    stats = psp_statistics(model, x, y, 4, batch_size=5, second_order=("agreement", "joint"))
    assert stats["layers"] == layers
    for k in KEYS:
        assert stats[k] == pytest.approx(ref[k], rel=1e-5, abs=1e-9), k
    for name in layers:
        for k, v in ref["per_layer"][name].items():
            assert stats["per_layer"][name][k] == pytest.approx(v, rel=1e-5, abs=1e-9), (name, k)
    loop = psp_statistics_loop(model, x, y, 4, batch_size=5)
    for k in KEYS[:4]:
        assert loop[k] == pytest.approx(ref[k], rel=1e-5, abs=1e-9), k
    assert not model.training  # psp_statistics restored eval mode


def test_psp_neuron_count_dry_run_leaves_batchnorm_alone():
    """measure() sizes the layers with a dry run on a zero sample; in train mode that run
    would move (or, on a 1x1 map, fail on) the BatchNorm statistics: it runs in eval mode."""
    model = tiny_resnet().train()
    ref = tiny_resnet().train()
    x, y = data((3, 4, 4), N=12, seed=7)
    measure(model, x, y, 4, quantities=("psp_norm_mean_square",))
    with torch.no_grad():
        ref(x)  # the measured pass alone (one batch, train mode)
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, ref.state_dict()[k]), k


class FunctionalReluResidual(nn.Module):
    """Not a chain, ReLU applied functionally: its PSPs cannot be hooked."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 6)
        self.bn = nn.BatchNorm1d(6)
        self.fc2 = nn.Linear(6, 4)

    def forward(self, x):
        return self.fc2(F.relu(self.bn(self.fc1(x))) + x)


class SharedRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 6)
        self.fc2 = nn.Linear(6, 6)
        self.act = nn.ReLU()
        self.out = nn.Linear(6, 4)

    def forward(self, x):
        h = self.act(self.fc1(x)) + x
        return self.out(self.act(self.fc2(h)))


def test_non_chain_relus_must_be_modules_called_once():
    x, y = data((6,))
    model = FunctionalReluResidual().eval()
    with pytest.raises(ValueError, match="nn.ReLU"):
        hidden_layers(model)
    with pytest.raises(ValueError, match="nn.ReLU"):
        psp_statistics(model, x, y, 4)
    # loss and error need no PSP layer
    r = measure(model, x, y, 4, quantities=("loss", "error"))
    assert r["loss"] == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-6)
    shared = SharedRelu().eval()
    assert hidden_layers(shared) == ["act"]
    with pytest.raises(ValueError, match="once per forward"):
        psp_statistics(shared, x, y, 4)


def test_constant_layout_closed_form():
    """A layer given as computed neurons + constant neurons equals the full layer."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(12, 6, generator=g)
    z[:, 1] = 0.7  # constant positive
    z[:, 4] = -0.2  # constant negative
    y = torch.randint(0, 3, (12,), generator=g)
    full = PSPAccumulator(3, ("agreement", "joint"))
    full.set_layer("l", 6)
    full.begin_batch(y)
    full.observe("l", z)
    part = PSPAccumulator(3, ("agreement", "joint"))
    alive = torch.tensor([0, 2, 3, 5])
    part.set_layer("l", 6, alive, torch.tensor([1, 4]), torch.tensor([0.7, -0.2]))
    part.begin_batch(y)
    part.observe("l", z[:, alive])
    a, b = full.result(), part.result()
    for k in KEYS:  # per-sample sums of z^2 are fp32 in the full layer, exact for constants
        assert a[k] == pytest.approx(b[k], rel=1e-7 if k == "psp_norm_l2" else 1e-9), k


def test_bad_definition_rejected():
    model = TinyMLP().eval()
    x, y = data((6,))
    with pytest.raises(ValueError):
        psp_statistics(model, x, y, 4, second_order=("pairs",))


def test_joint_sees_which_neurons_fire_together_agreement_does_not():
    """Two layers with half their neurons active in every sample: the agreement reading is
    the same (it depends on that fraction only), the joint one is lower where the neurons
    fire in fixed groups (specialised) than where any two may fire together."""
    def result(z):
        acc = PSPAccumulator(1, ("agreement", "joint"))
        acc.set_layer("l", z.shape[1])
        acc.begin_batch(torch.zeros(len(z), dtype=torch.long))
        acc.observe("l", z)
        return acc.result()

    groups = torch.tensor([[1.0, 1, -1, -1], [-1, -1, 1, 1]] * 6)  # {0,1} or {2,3}
    mixed = torch.tensor([[1.0, 1, -1, -1], [-1, -1, 1, 1], [1, -1, 1, -1],
                          [-1, 1, -1, 1], [1, -1, -1, 1], [-1, 1, 1, -1]] * 2)
    g, m = result(groups), result(mixed)
    assert g["entropy2_agreement"] == pytest.approx(m["entropy2_agreement"])
    assert g["entropy2_joint"] < m["entropy2_joint"] - 0.1
    # by hand, in bits: grouped, every pair takes two joint states half the time each (1 bit);
    # mixed (all six 2-of-4 patterns), every pair takes (1,1) and (0,0) once, (1,0) and
    # (0,1) twice in six samples
    assert g["entropy2_joint"] == pytest.approx(1.0)
    h = 2 * (1 / 6) * math.log2(6) + 2 * (1 / 3) * math.log2(3)
    assert m["entropy2_joint"] == pytest.approx(h)
