"""Dead-neuron compaction: same logits, same PSP statistics, same gradients in the subspace."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from sharpminima.compact import compact_model, trace_sequential
from sharpminima.masks import Mask, prunable_parameters, pruned_neurons
from sharpminima.models import build_model
from sharpminima.psp import psp_statistics

from tiny_nets import TinyConv


KEYS = ("loss", "psp_norm_mean_square", "psp_norm_l2", "entropy1", "entropy2_agreement",
        "entropy2_joint")


def random_mask(model, keep, seed, keep_biases=True):
    g = torch.Generator().manual_seed(seed)
    return Mask({n: (torch.rand(p.shape, generator=g) < keep) | (keep_biases and n.endswith("bias"))
                 for n, p in prunable_parameters(model).items()})


def check(model, mask, x, y, C, joint_max_pairs=300, rtol=1e-5):
    mask.apply(model)
    model.eval()
    net, info = compact_model(model, mask)
    assert net is not None, info
    with torch.no_grad():
        ref = model(x)
        got = net(x)
    scale = ref.abs().max().clamp(min=1e-6)
    assert torch.allclose(got, ref, rtol=rtol, atol=rtol * scale), (got - ref).abs().max()
    a = psp_statistics(model, x, y, C, batch_size=16, second_order=("agreement", "joint"),
                       joint_max_pairs=joint_max_pairs)
    b = psp_statistics(net, x, y, C, batch_size=16, second_order=("agreement", "joint"),
                       joint_max_pairs=joint_max_pairs)
    for k in KEYS:
        assert b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-9), k
    for name, d in a["per_layer"].items():
        assert b["per_layer"][name]["neurons"] == d["neurons"]
        for k in ("psp_norm_mean_square", "entropy1", "entropy2_agreement",
                  "entropy2_joint"):
            assert b["per_layer"][name][k] == pytest.approx(d[k], rel=1e-5, abs=1e-9), (name, k)
    # loss-only compaction (drops neurons that feed nothing) keeps the logits too
    net2, _ = compact_model(model, mask, keep_unused=False)
    with torch.no_grad():
        assert torch.allclose(net2(x), ref, rtol=rtol, atol=rtol * scale)
    # units with no kept incoming weight: as masks.pruned_neurons counts them
    rows = sum(int((~mask[n].flatten(1).any(1)).sum()) for n in mask if n.endswith("weight"))
    assert info["pruned_units"] == rows
    assert info["alive_units"] + info["constant_units"] == pruned_neurons(model)[1]
    return info


@pytest.mark.parametrize("keep", [0.5, 0.1, 0.03])
def test_lenet5_random_masks(keep):
    torch.manual_seed(0)
    model = build_model("lenet5")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(24, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (24,), generator=g)
    info = check(model, random_mask(model, keep, seed=2), x, y, 10)
    if keep == 0.03:
        assert info["constant_units"] > 0


@pytest.mark.parametrize("keep", [0.4, 0.05])
def test_lenet300_random_masks(keep):
    torch.manual_seed(0)
    model = build_model("lenet300")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    mask = random_mask(model, keep, seed=3)
    mask["fc1.weight"][:, :100] = False  # border pixels nobody reads
    info = check(model, mask, x, y, 10)
    if keep == 0.05:
        assert info["input_features_read"] < 784


def dead_rows(mask, name, rows):
    mask[f"{name}.weight"][rows] = False


@pytest.mark.parametrize("case", ["dead_channels", "whole_conv1_dead", "whole_fc1_dead", "biases_pruned"])
def test_tiny_conv_dead_structures(case):
    torch.manual_seed(4)
    model = TinyConv()
    mask = random_mask(model, 0.3, seed=5, keep_biases=case != "biases_pruned")
    if case == "dead_channels":
        dead_rows(mask, "conv1", [0, 2])
        dead_rows(mask, "conv2", [1])
        dead_rows(mask, "fc1", [3])
    elif case == "whole_conv1_dead":  # every input of conv2 is constant: a whole layer-input dead
        dead_rows(mask, "conv1", slice(None))
    elif case == "whole_fc1_dead":
        dead_rows(mask, "fc1", slice(None))
    with torch.no_grad():  # make constants matter: positive and negative biases
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.bias.uniform_(-0.5, 0.5)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(30, 1, 14, 14, generator=g)
    y = torch.randint(0, 3, (30,), generator=g)
    info = check(model, mask, x, y, 3, joint_max_pairs=100)
    if case == "whole_conv1_dead":
        assert info["alive_units"] == 0  # logits are a constant, computed in closed form
    if case == "whole_fc1_dead":
        assert info["layers"]["fc2"]["alive"] == 0


def test_sparse_tap_convolution():
    torch.manual_seed(7)
    model = TinyConv()
    mask = random_mask(model, 0.05, seed=8)
    mask.apply(model)
    net, info = compact_model(model, mask, sparse_conv_density=1.0)  # force the gathered path
    assert any(d["sparse_taps"] for d in info["layers"].values())
    x = torch.randn(9, 1, 14, 14)
    with torch.no_grad():
        assert torch.allclose(net(x), model(x), rtol=1e-5, atol=1e-6)


def test_cpu_forward_runs_convolutions_channels_last():
    """On the CPU the loaded convolutions run in NHWC; the PSP columns they report are then
    position-major, and the layout (alive_index) follows, so the statistics stay exact."""
    torch.manual_seed(3)
    model = TinyConv()
    mask = random_mask(model, 0.3, seed=4)
    mask.apply(model)
    model.eval()
    net, _ = compact_model(model, mask)
    convs = [m for L, m in zip(net.layers, net._mats) if L.kind == "conv"]
    assert convs and all(m["W"].is_contiguous(memory_format=torch.channels_last) for m in convs)
    x = torch.randn(6, 1, 14, 14)
    seen = {}
    with torch.no_grad():
        out = net.forward(x, observe=lambda name, z: seen.setdefault(name, z))
        assert torch.allclose(out, model(x), rtol=1e-5, atol=1e-6)
        z1 = F.conv2d(x, model.conv1.weight, model.conv1.bias).flatten(1)  # channel-major
    lay = net.psp_layouts(x.shape[1:])["conv1"]
    assert torch.allclose(seen["conv1"], z1[:, lay["alive_index"]], rtol=1e-5, atol=1e-6)


def test_functional_gradient_matches_dense():
    torch.manual_seed(9)
    model = TinyConv()
    mask = random_mask(model, 0.2, seed=10)
    dead_rows(mask, "conv2", [0, 3])
    mask.apply(model)
    net, _ = compact_model(model, mask, keep_unused=False)
    x = torch.randn(8, 1, 14, 14)
    y = torch.randint(0, 3, (8,))
    params = {n: p.detach().clone().requires_grad_(True) for n, p in model.named_parameters()}
    loss_c = F.cross_entropy(net.functional(params, x), y)
    gc = torch.autograd.grad(loss_c, list(params.values()), allow_unused=True)
    loss_d = F.cross_entropy(model(x), y)
    gd = torch.autograd.grad(loss_d, list(model.parameters()))
    for (n, _), a, b in zip(params.items(), gc, gd):
        m = mask[n]
        a = torch.zeros_like(b) if a is None else a
        assert torch.allclose(a[m], b[m], rtol=1e-5, atol=1e-7), n


def test_unsupported_architecture_returns_none():
    net, info = compact_model(build_model("resnet32"), Mask.ones(build_model("resnet32")))
    assert net is None and not info["supported"] and "reason" in info
    plan, reason = trace_sequential(build_model("resnet32"))
    assert plan is None and reason
