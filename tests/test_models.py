
import pytest
import torch

from sharpminima.masks import prunable_parameters, pruned_neurons
from sharpminima.models import MODELS, build_model, count_parameters

# Parameter and neuron counts of docs/methods.md §1 (neurons: Fig. 1's top-axis ticks).
EXPECTED = {
    "lenet300": (266_610, 410, (1, 28, 28)),
    "lenet5": (431_080, 580, (1, 28, 28)),
    "resnet32": (464_154, 1146, (3, 32, 32)),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_and_neuron_counts(name):
    params, neurons, shape = EXPECTED[name]
    model = build_model(name)
    assert count_parameters(model) == params
    # every parameter of these models is in a Linear, Conv2d or BatchNorm layer
    assert sum(p.numel() for p in prunable_parameters(model).values()) == params
    assert pruned_neurons(model) == (0, neurons)
    out = model(torch.zeros(2, *shape))
    assert out.shape == (2, 10)


def test_registry_rejects_unknown_name():
    with pytest.raises(KeyError, match="known models"):
        build_model("vgg99")
    assert set(EXPECTED) <= set(MODELS)


def test_resnet_shortcut_is_parameter_free_and_subsamples():
    model = build_model("resnet32")
    block = model.layers[5]  # first block of stage 2: 16 -> 32 channels, stride 2
    assert sum(p.numel() for p in block.shortcut.parameters()) == 0
    x = torch.randn(1, 16, 8, 8)
    s = block.shortcut(x)
    assert s.shape == (1, 32, 4, 4)
    assert torch.equal(s[:, 8:24], x[:, :, ::2, ::2])
    assert s[:, :8].abs().sum() == 0 and s[:, 24:].abs().sum() == 0


def test_init_is_seeded():
    torch.manual_seed(3)
    a = build_model("lenet5").state_dict()
    torch.manual_seed(3)
    b = build_model("lenet5").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
