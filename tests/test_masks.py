import torch

from sharpminima.masks import Mask, prunable_parameters, pruned_neurons, pruned_parameters, sparsity_report
from sharpminima.models import build_model


def test_counts_on_hand_built_mask():
    model = build_model("lenet300")
    mask = Mask.ones(model)
    # prune neuron 0..9 of fc1 entirely (incoming weights), and half of fc3's bias
    mask["fc1.weight"][:10] = False
    mask["fc3.bias"][:5] = False
    mask.apply(model)
    zp, tp = pruned_parameters(model)
    assert tp == 266_610
    assert zp == 10 * 784 + 5
    assert mask.kept == tp - zp
    assert pruned_neurons(model) == (10, 410)  # a neuron is pruned by its weights, not its bias
    rep = sparsity_report(model)
    assert abs(rep["pruned_neurons_pct"] - 100 * 10 / 410) < 1e-12


def test_conv_neuron_is_an_output_channel():
    model = build_model("lenet5")
    with torch.no_grad():
        model.conv2.weight[3].zero_()
        model.conv2.weight[4, :, 0, 0] = 0  # partially zero: still alive
    assert pruned_neurons(model) == (1, 580)


def test_batchnorm_parameters_are_prunable():
    names = prunable_parameters(build_model("resnet32"))
    assert "bn1.weight" in names and "bn1.bias" in names
    assert "fc.bias" in names


def test_mask_roundtrip(tmp_path):
    model = build_model("lenet5")
    mask = Mask.ones(model)
    mask["conv1.weight"][0] = False
    mask.save(tmp_path / "m.pt")
    back = Mask.load(tmp_path / "m.pt")
    assert set(back) == set(mask)
    assert all(torch.equal(back[k], mask[k]) for k in mask)
    assert abs(back.pruned_fraction - mask.pruned_fraction) < 1e-15
    model2 = build_model("lenet5")
    back.apply(model2)
    assert torch.equal(Mask.from_nonzero(model2)["conv1.weight"], mask["conv1.weight"])
