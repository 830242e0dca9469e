
import pytest
import torch
import torch.nn.functional as F

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


def _functional_resnet_forward(model, x):
    """ResNet-32's forward as it was written with F.relu (no ReLU modules)."""
    h = F.relu(model.bn1(model.conv1(x)))
    for blk in model.layers:
        out = F.relu(blk.bn1(blk.conv1(h)))
        h = F.relu(blk.bn2(blk.conv2(out)) + blk.shortcut(h))
    return model.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))


def test_resnet_relu_modules_are_stateless_and_change_no_number(tmp_path):
    """The ReLU modules (what the PSP hooks read) add no state: the state dict has only the
    convolutions', BatchNorms' and classifier's entries, a saved state dict loads back, and
    the forward is the functional-ReLU forward exactly, in eval and in train mode."""
    torch.manual_seed(4)
    model = build_model("resnet32")
    relus = [n for n, m in model.named_modules() if isinstance(m, torch.nn.ReLU)]
    assert len(relus) == 31 and relus[0] == "relu"
    keys = list(model.state_dict())
    assert not any("relu" in k for k in keys)
    owners = {k.rsplit(".", 1)[0] for k in keys}
    mods = dict(model.named_modules())
    assert all(isinstance(mods[o], (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear)) for o in owners)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 32, 32))  # non-trivial running statistics
    torch.save(model.state_dict(), tmp_path / "m.pt")
    back = build_model("resnet32")
    back.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True), strict=True)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    back.eval()
    with torch.no_grad():
        assert torch.equal(back(x), _functional_resnet_forward(model, x))
        assert torch.equal(model(x), _functional_resnet_forward(model, x))
    twin = build_model("resnet32")
    twin.load_state_dict(model.state_dict())
    model.train()
    twin.train()
    with torch.no_grad():
        a = model(x)
        b = _functional_resnet_forward(twin, x)
    assert torch.equal(a, b)
    assert all(torch.equal(v, twin.state_dict()[k]) for k, v in model.state_dict().items())


def test_resnet_widths():
    from sharpminima.models import ResNetCifar

    tiny = ResNetCifar(1, 3, widths=(2, 4, 8))
    assert tiny(torch.zeros(2, 3, 4, 4)).shape == (2, 3) and tiny.fc.in_features == 8
    with pytest.raises(ValueError):
        ResNetCifar(1, 3, widths=(4, 6, 12))
