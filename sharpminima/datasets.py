"""The data set registry: the only list of the data sets a panel can use.

Adding a data set is one :func:`register` call here: the name a panel's ``dataset`` takes, the
torchvision class that reads its files (any class of ``torchvision.datasets`` built as
``Class(root, train=..., download=...)`` that exposes ``.data`` and ``.targets``), the files it
reads under ``data_dir`` with the md5 of each (decompressed) file, and how to normalise it.
The workflow validates ``panels.*.dataset`` against this registry before any job runs.

This module imports neither torch nor torchvision, so that Snakemake reads it at no cost.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DATASETS", "DatasetSpec", "DataError", "register", "spec"]


class DataError(RuntimeError):
    """Any problem with a data set, split or subset; the message names the file/key at fault."""


@dataclass(frozen=True)
class DatasetSpec:
    """Static facts about one data set: the torchvision class that reads it, its files, its
    normalisation and shape."""

    name: str
    torchvision_class: str  # attribute of torchvision.datasets, e.g. "MNIST"
    files: dict[str, str]  # path relative to data_dir -> md5 of the decompressed file
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W)
    n_train: int
    n_test: int
    augment: bool  # random crop (pad 4) + horizontal flip during training

    @property
    def folder(self) -> str:
        """The top folder of its files under data_dir, as torchvision names it."""
        return next(iter(self.files)).split("/")[0]

    @property
    def fill(self) -> tuple[float, ...]:
        """Per-channel value of a 0 pixel after normalisation: the padding of the random crop."""
        return tuple((0.0 - m) / s for m, s in zip(self.mean, self.std))


DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to the registry (a name may be registered once)."""
    if spec.name in DATASETS:
        raise ValueError(f"data set {spec.name!r} is registered already")
    if len(spec.mean) != spec.input_shape[0] or len(spec.std) != spec.input_shape[0]:
        raise ValueError(f"data set {spec.name!r}: one mean and std per channel of {spec.input_shape}")
    DATASETS[spec.name] = spec
    return spec


def spec(name: str) -> DatasetSpec:
    """The registered data set ``name``; a DataError listing the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(
            f"unknown data set {name!r}; known data sets: {', '.join(sorted(DATASETS))} "
            "(sharpminima/datasets.py registers them)"
        ) from None


def idx_files(folder: str, md5s: tuple[str, str, str, str]) -> dict[str, str]:
    """The four IDX files of an MNIST-like data set in torchvision's layout (``folder/raw/``)."""
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return {f"{folder}/raw/{n}": s for n, s in zip(names, md5s)}


# The md5s are the official files' (for CIFAR-10 the ones torchvision itself checks).
register(DatasetSpec(
    name="mnist", torchvision_class="MNIST",
    files=idx_files("MNIST", ("6bbc9ace898e44ae57da46a324031adb", "a25bea736e30d166cdddb491f175f624",
                              "2646ac647ad5339dbf082846283269ea", "27ae3e4e09519cfbb04c329615203637")),
    mean=(0.1307,), std=(0.3081,), num_classes=10, input_shape=(1, 28, 28),
    n_train=60000, n_test=10000, augment=False,
))
register(DatasetSpec(
    name="fashion_mnist", torchvision_class="FashionMNIST",
    files=idx_files("FashionMNIST", ("f4a8712d7a061bf5bd6d2ca38dc4d50a", "9018921c3c673c538a1fc5bad174d6f9",
                                     "8181f5470baa50b63fa0f6fddb340f0a", "15d484375f8d13e6eb1aabb0c3f46965")),
    mean=(0.2860,), std=(0.3530,), num_classes=10, input_shape=(1, 28, 28),
    n_train=60000, n_test=10000, augment=False,
))
register(DatasetSpec(
    name="cifar10", torchvision_class="CIFAR10",
    files={f"cifar-10-batches-py/{f}": s for f, s in (
        ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        ("data_batch_4", "634d18415352ddfa80567beed471001a"),
        ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        ("test_batch", "40351d587109b95175f43aff81a1287e"),
        ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"))},
    mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), num_classes=10,
    input_shape=(3, 32, 32), n_train=50000, n_test=10000, augment=True,
))
