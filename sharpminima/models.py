"""The networks of the paper, in a registry by name.

- ``lenet300``: LeNet-300-100, 784-300-100-10 fully connected, ReLU on hidden layers
  (266,610 parameters).
- ``lenet5``: LeNet-5 as in Caffe's example, which the authors use: conv 1->20 k5, ReLU,
  maxpool 2; conv 20->50 k5, ReLU, maxpool 2; fc 800->500, ReLU; fc 500->10
  (431,080 parameters).
- ``resnet32``: ResNet-32 for CIFAR (He et al. 2016, Sec. 4.2): 3 stages x 5 basic blocks of
  16/32/64 channels, option-A (parameter-free) shortcuts, convs without bias, kaiming-normal
  init (464,154 parameters). Each ReLU is its own ``nn.ReLU`` module (``relu`` after the stem,
  ``relu1`` / ``relu2`` in each block, 31 in all), called once per forward: ``psp.py`` reads a
  neuron's PSP as the input of its ReLU module (after BatchNorm, and after the residual
  addition for ``relu2``). The modules hold no state: the state dict is that of the
  functional-ReLU version.

A user adds a model by decorating a constructor with ``@register("name")``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def wrap(fn):
        MODELS[name] = fn
        return fn

    return wrap


def config_models() -> list[str]:
    """The models a configuration may name: every registered one but those registered by the
    tests (a leading underscore), which the config schema must not list."""
    return [n for n in MODELS if not n.startswith("_")]


def build_model(name: str, num_classes: int = 10, input_shape=None) -> nn.Module:
    """Instantiate a registered model. Initialisation draws from torch's global RNG:
    seed it (``training.seed_everything``) before calling for a reproducible init."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}: known models are {sorted(MODELS)}")
    return MODELS[name](num_classes=num_classes)


class LeNet300(nn.Module):
    def __init__(self, num_classes: int = 10, in_features: int = 784):
        super().__init__()
        self.fc1 = nn.Linear(in_features, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)

    def forward(self, x):
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(800, 500)
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


class _ShortcutA(nn.Module):
    """Option A: subsample spatially and zero-pad the new channels (no parameters)."""

    def __init__(self, planes: int):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = (
            _ShortcutA(planes) if stride != 1 or in_planes != planes else nn.Identity()
        )
        # ReLU modules, not F.relu: the PSP hooks read their inputs (psp.py)
        self.relu1 = nn.ReLU()
        self.relu2 = nn.ReLU()

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    """ResNet for CIFAR with ``blocks_per_stage`` basic blocks in each of three stages of
    ``widths`` channels (He et al.: 16/32/64; each stage doubles the last, as option-A
    shortcuts need). Smaller widths give the tiny residual networks of the tests."""

    def __init__(self, blocks_per_stage: int, num_classes: int = 10,
                 widths: tuple[int, int, int] = (16, 32, 64), in_channels: int = 3):
        super().__init__()
        w0 = int(widths[0])
        if len(widths) != 3 or any(b != 2 * a or b % 4 for a, b in zip(widths, widths[1:])):
            raise ValueError(f"widths {widths}: three stages, each twice the last and a multiple of 4")
        self.conv1 = nn.Conv2d(in_channels, w0, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w0)
        self.relu = nn.ReLU()
        layers, in_planes = [], w0
        for i, planes in enumerate(widths):
            for j in range(blocks_per_stage):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(BasicBlock(in_planes, planes, stride))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


@register("lenet300")
def lenet300(num_classes: int = 10) -> nn.Module:
    return LeNet300(num_classes)


@register("lenet5")
def lenet5(num_classes: int = 10) -> nn.Module:
    return LeNet5(num_classes)


@register("resnet32")
def resnet32(num_classes: int = 10) -> nn.Module:
    return ResNetCifar(5, num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops(model: nn.Module, input_shape, device="cpu") -> int:
    """Multiply-accumulates x 2 of one forward pass of one sample through the Linear and
    Conv2d layers (the compute that dominates; used by benchmarks)."""
    flops = 0

    def hook(mod, inp, out):
        nonlocal flops
        if isinstance(mod, nn.Linear):
            flops += 2 * mod.in_features * mod.out_features
        elif isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            flops += 2 * k * out[0].numel()

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Linear, nn.Conv2d))
    ]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
    return flops
