"""Data sets: fetch (offline mirror or torchvision download), md5 check, split, tensors,
augmentation.

Why it looks like this:

* Everything is kept as whole-data-set tensors on the device and batched by index (see
  ``docs/environment.md``: 1.3-5.6x faster than a DataLoader on this CPU). So the files are parsed
  directly with numpy (IDX files, CIFAR pickles) instead of going through torchvision's per-image
  PIL path, and CIFAR augmentation is a batched crop + flip (:func:`augment_batch`).
* The files on disk follow torchvision's layout under ``data_dir``, so a folder prepared here is
  usable by torchvision and a torchvision download is usable here. The offline mirror
  (``/work/shared/datasets`` or the ``data_mirror`` setting) has the same layout with files
  optionally gzip-compressed (``<file>.gz``).
* Integrity is checked against the official md5 sums of the decompressed files; every write into
  ``data_dir`` is atomic (temporary file, then ``os.replace``) so an interrupted job never leaves a
  half file that a later job would take for a complete one. The mirror is only ever read.
* The validation split is drawn once from a seeded CPU generator and stored as a JSON index file,
  so every method and every machine sees the same split (paper-spec section 1).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "DataError",
    "ChecksumError",
    "prepare_dataset",
    "verify_dataset",
    "load_dataset",
    "make_split",
    "save_split",
    "load_split",
    "PanelData",
    "panel_data",
    "augment_batch",
]


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """Static facts about one data set: where its files live and how to normalise it."""

    name: str
    folder: str  # top folder under data_dir, as torchvision names it
    files: dict[str, str]  # path relative to data_dir -> md5 of the decompressed file
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W)
    n_train: int
    n_test: int
    augment: bool  # random crop (pad 4) + horizontal flip during training

    @property
    def fill(self) -> tuple[float, ...]:
        """Per-channel value of a 0 pixel after normalisation: the padding of the random crop."""
        return tuple((0.0 - m) / s for m, s in zip(self.mean, self.std))


def _idx_files(folder: str, sums: tuple[str, str, str, str]) -> dict[str, str]:
    names = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )
    return {f"{folder}/raw/{n}": s for n, s in zip(names, sums)}


_CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        folder="MNIST",
        files=_idx_files(
            "MNIST",
            (
                "6bbc9ace898e44ae57da46a324031adb",
                "a25bea736e30d166cdddb491f175f624",
                "2646ac647ad5339dbf082846283269ea",
                "27ae3e4e09519cfbb04c329615203637",
            ),
        ),
        mean=(0.1307,),
        std=(0.3081,),
        num_classes=10,
        input_shape=(1, 28, 28),
        n_train=60000,
        n_test=10000,
        augment=False,
    ),
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        folder="FashionMNIST",
        files=_idx_files(
            "FashionMNIST",
            (
                "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                "9018921c3c673c538a1fc5bad174d6f9",
                "8181f5470baa50b63fa0f6fddb340f0a",
                "15d484375f8d13e6eb1aabb0c3f46965",
            ),
        ),
        mean=(0.2860,),
        std=(0.3530,),
        num_classes=10,
        input_shape=(1, 28, 28),
        n_train=60000,
        n_test=10000,
        augment=False,
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        folder=_CIFAR_FOLDER,
        files={
            f"{_CIFAR_FOLDER}/data_batch_1": "c99cafc152244af753f735de768cd75f",
            f"{_CIFAR_FOLDER}/data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
            f"{_CIFAR_FOLDER}/data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
            f"{_CIFAR_FOLDER}/data_batch_4": "634d18415352ddfa80567beed471001a",
            f"{_CIFAR_FOLDER}/data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
            f"{_CIFAR_FOLDER}/test_batch": "40351d587109b95175f43aff81a1287e",
            f"{_CIFAR_FOLDER}/batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
        },
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        num_classes=10,
        input_shape=(3, 32, 32),
        n_train=50000,
        n_test=10000,
        augment=True,
    ),
}


class DataError(RuntimeError):
    """Any problem with a data set, split or subset; the message names the file/key at fault."""


class ChecksumError(DataError):
    """A file whose md5 is not the official one."""

    def __init__(self, path: Path | str, expected: str, found: str, hint: str = ""):
        self.path, self.expected, self.found = str(path), expected, found
        msg = f"md5 mismatch for {path}: expected {expected}, found {found}"
        super().__init__(msg + (f". {hint}" if hint else ""))


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(
            f"unknown data set {name!r}; known data sets: {', '.join(sorted(DATASETS))}"
        ) from None


# --------------------------------------------------------------------------------------------
# Fetching and checking files
# --------------------------------------------------------------------------------------------

_CHUNK = 1 << 22


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _check_file(data_dir: Path, rel: str, expected: str, hint: str = "") -> str:
    path = data_dir / rel
    if not path.is_file():
        raise DataError(f"missing data file {path} (expected md5 {expected})")
    found = _md5(path)
    if found != expected:
        raise ChecksumError(path, expected, found, hint)
    return found


def verify_dataset(name: str, data_dir: str | os.PathLike) -> dict[str, str]:
    """md5 of every file of data set ``name`` under ``data_dir``, checked against the official sums.

    Raises DataError naming every missing file, ChecksumError for the first file that differs.
    """
    spec, data_dir = _spec(name), Path(data_dir)
    missing = [str(data_dir / rel) for rel in spec.files if not (data_dir / rel).is_file()]
    if missing:
        raise DataError(
            f"{name}: missing data file(s) {', '.join(missing)}; run prepare_dataset "
            f"(from a `data_mirror` or by network download)"
        )
    return {rel: _check_file(data_dir, rel, md5) for rel, md5 in spec.files.items()}


def _mirror_source(mirror: Path, rel: str) -> Path | None:
    """The mirror's copy of ``rel``: plain file preferred, else ``rel + '.gz'``; None if neither."""
    plain, gz = mirror / rel, mirror / (rel + ".gz")
    if plain.is_file():
        return plain
    if gz.is_file():
        return gz
    return None


def _copy_from_mirror(src: Path, dest: Path, expected: str) -> None:
    """Copy (or gunzip) ``src`` to ``dest`` atomically, md5-checking the bytes on the way.

    A wrong mirror file never reaches ``dest``: the temporary file is removed and ChecksumError
    names the mirror file.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    h = hashlib.md5()
    try:
        opener = gzip.open if src.suffix == ".gz" else open
        with opener(src, "rb") as fin, open(tmp, "wb") as fout:
            while chunk := fin.read(_CHUNK):
                h.update(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        found = h.hexdigest()
        if found != expected:
            raise ChecksumError(src, expected, found, "the mirror's copy is not the official file")
        os.replace(tmp, dest)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"cannot read mirror file {src} (expected "
                        f"{'a gzip file' if src.suffix == '.gz' else 'a readable file'} whose "
                        f"content has md5 {expected}): {type(e).__name__}: {e}") from e
    finally:
        if tmp.exists():
            tmp.unlink()


def _torchvision_download(name: str, data_dir: Path) -> None:
    import torchvision.datasets as tvd  # slow import (~5 s): only when downloading

    cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    try:
        for train in (True, False):
            cls(root=str(data_dir), train=train, download=True)
    except Exception as e:  # URLError, RuntimeError from torchvision's mirrors, ...
        raise DataError(
            f"{name}: torchvision download into {data_dir} failed ({type(e).__name__}: {e}); "
            f"without network, set `data_mirror` to a folder holding the files"
        ) from e


def prepare_dataset(
    name: str,
    data_dir: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    download: bool = True,
    log: Callable[[str], Any] = print,
) -> dict:
    """Make ``data_dir`` hold data set ``name`` complete and verified (torchvision's layout).

    Per file: already present -> kept (and checked); else copied / gunzipped from ``mirror``
    (plain or ``.gz``); what is still missing comes from torchvision's download if ``download``,
    else DataError. A present file with a wrong md5 is not overwritten: ChecksumError says to
    delete it. Returns the manifest ``{"dataset", "files": {relpath: md5}, "source"}``, where source
    is "present", "mirror:<path>" or "download" (the last step that supplied files).
    """
    spec, data_dir = _spec(name), Path(data_dir)
    missing = [rel for rel in spec.files if not (data_dir / rel).is_file()]
    source = "present"

    if missing and mirror is not None:
        mirror = Path(mirror)
        if not mirror.is_dir():
            raise DataError(f"data_mirror {mirror} is not a folder")
        still = []
        for rel in missing:
            src = _mirror_source(mirror, rel)
            if src is None:
                still.append(rel)
                continue
            log(f"{name}: {src} -> {data_dir / rel}")
            _copy_from_mirror(src, data_dir / rel, spec.files[rel])
        if still:  # the user asked for this mirror: a file it lacks is its error, not the network's
            raise DataError(
                f"{name}: {len(still)} file(s) missing from data_mirror {mirror}: "
                + ", ".join(f"{mirror / rel} (or {mirror / rel}.gz)" for rel in still)
                + f"; expected torchvision's layout ({spec.folder}/...). Add them there, or set "
                "data_mirror: null to download with torchvision")
        source = f"mirror:{mirror}"
        missing = still

    if missing:
        if not download:
            where = f"in data_mirror {mirror} (plain or .gz) nor " if mirror is not None else ""
            raise DataError(
                f"{name}: data file {data_dir / missing[0]} is missing"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                + f", not found {where}in {data_dir}, and download is off. Two ways to get it: "
                f"set `data_mirror` to a folder in torchvision's layout holding the files, "
                f"or allow network download"
            )
        log(f"{name}: downloading with torchvision into {data_dir}")
        data_dir.mkdir(parents=True, exist_ok=True)
        _torchvision_download(name, data_dir)
        source = "download"

    hint = "delete it to fetch it again from the mirror or the network"
    files = {rel: _check_file(data_dir, rel, md5, hint) for rel, md5 in spec.files.items()}
    return {"dataset": name, "files": files, "source": source}


# --------------------------------------------------------------------------------------------
# Parsing into tensors
# --------------------------------------------------------------------------------------------


def _read_checked(path: Path, expected_md5: str | None, hint: str = "") -> bytearray:
    """The bytes of ``path``, md5-checked against ``expected_md5`` (the official sum, which the
    manifest records) as they are read: a file changed or truncated after ``prepare_data``
    fails here, naming it, in every job that reads it (about 0.1 s per 50 MB)."""
    try:
        with open(path, "rb") as f:  # a bytearray, so the array (and tensor) is writable
            buf = bytearray(os.fstat(f.fileno()).st_size)
            f.readinto(buf)
    except FileNotFoundError:
        raise DataError(f"missing data file {path}; run prepare_dataset first") from None
    if expected_md5 is not None:
        found = hashlib.md5(buf).hexdigest()
        if found != expected_md5:
            raise ChecksumError(path, expected_md5, found,
                                "the file changed after the data set was prepared: delete it"
                                + (f" and {hint}" if hint else "") + ", then rerun to fetch it again")
    return buf


def _read_idx(path: Path, ndim: int, count: int, md5: str | None = None, hint: str = "") -> np.ndarray:
    """An unsigned-byte IDX file (LeCun's format) as a uint8 array of ``ndim`` dimensions."""
    buf = _read_checked(path, md5, hint)
    head = 4 + 4 * ndim
    if len(buf) < head or buf[:4] != bytes((0, 0, 0x08, ndim)):
        raise DataError(f"{path}: not an unsigned-byte IDX file with {ndim} dimension(s)")
    shape = tuple(int(d) for d in np.frombuffer(buf, dtype=">i4", count=ndim, offset=4))
    if shape[0] != count or len(buf) != head + int(np.prod(shape)):
        raise DataError(
            f"{path}: shape {shape} and {len(buf)} bytes; expected {count} items "
            f"(truncated or wrong file: check with verify_dataset)"
        )
    return np.frombuffer(buf, dtype=np.uint8, offset=head).reshape(shape)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batches without running arbitrary code: only numpy arrays allowed."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path, md5: str | None = None, hint: str = "") -> tuple[np.ndarray, np.ndarray]:
    import io

    buf = _read_checked(path, md5, hint)
    try:
        with io.BytesIO(buf) as f:
            d = _NumpyOnlyUnpickler(f, encoding="bytes").load()
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(d[b"labels"], dtype=np.int64)
    except FileNotFoundError:
        raise DataError(f"missing data file {path}; run prepare_dataset first") from None
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as e:
        raise DataError(f"{path}: not a CIFAR-10 python batch ({e})") from e
    if len(x) != len(y):
        raise DataError(f"{path}: {len(x)} images but {len(y)} labels")
    return x, y


def _read_raw(spec: DatasetSpec, data_dir: Path) -> tuple[np.ndarray, ...]:
    """uint8 images (N, C, H, W) and int64 labels of train and test, straight from the files."""
    def md5(path: Path) -> str | None:
        return spec.files.get(str(path.relative_to(data_dir)))

    hint = f"the data set's manifest {data_dir / (spec.name + '.manifest.json')}"
    if spec.name == "cifar10":
        paths = [data_dir / _CIFAR_FOLDER / b for b in _CIFAR_TRAIN]
        parts = [_read_cifar_batch(p, md5(p), hint) for p in paths]
        x_tr = np.concatenate([p[0] for p in parts])
        y_tr = np.concatenate([p[1] for p in parts])
        test = data_dir / _CIFAR_FOLDER / "test_batch"
        x_te, y_te = _read_cifar_batch(test, md5(test), hint)
    else:
        raw = data_dir / spec.folder / "raw"

        def idx(name, ndim, count):
            return _read_idx(raw / name, ndim, count, md5(raw / name), hint)

        x_tr = idx("train-images-idx3-ubyte", 3, spec.n_train)[:, None]
        y_tr = idx("train-labels-idx1-ubyte", 1, spec.n_train).astype(np.int64)
        x_te = idx("t10k-images-idx3-ubyte", 3, spec.n_test)[:, None]
        y_te = idx("t10k-labels-idx1-ubyte", 1, spec.n_test).astype(np.int64)
    for what, x, y, n in (("train", x_tr, y_tr, spec.n_train), ("test", x_te, y_te, spec.n_test)):
        if x.shape != (n, *spec.input_shape) or y.shape != (n,):
            raise DataError(
                f"{spec.name} {what}: images {x.shape}, labels {y.shape}; "
                f"expected ({n}, {', '.join(map(str, spec.input_shape))}) and ({n},)"
            )
        if y.min() < 0 or y.max() >= spec.num_classes:
            raise DataError(f"{spec.name} {what}: labels outside 0..{spec.num_classes - 1}")
    return x_tr, y_tr, x_te, y_te


def _normalise(x: np.ndarray, spec: DatasetSpec, device: torch.device | str) -> Tensor:
    """uint8 (N, C, H, W) -> float32 on ``device``, (x/255 - mean)/std per channel.

    The uint8 array crosses to the device (4x less traffic than float), then is converted there.
    """
    t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    out = t.to(torch.float32).div_(255.0)
    c = spec.input_shape[0]
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=out.device).view(1, c, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=out.device).view(1, c, 1, 1)
    return out.sub_(mean).div_(std)


def _labels(y: np.ndarray, device: torch.device | str) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)).to(device)


def load_dataset(
    name: str, data_dir: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``x_train, y_train, x_test, y_test`` of the whole data set, as tensors on ``device``.

    x: float32 (N, C, H, W), normalised with the spec's mean/std; y: int64. Reads the
    decompressed files that :func:`prepare_dataset` wrote, md5-checking the bytes it reads.
    """
    spec = _spec(name)
    x_tr, y_tr, x_te, y_te = _read_raw(spec, Path(data_dir))
    return (
        _normalise(x_tr, spec, device),
        _labels(y_tr, device),
        _normalise(x_te, spec, device),
        _labels(y_te, device),
    )


# --------------------------------------------------------------------------------------------
# Train / validation split
# --------------------------------------------------------------------------------------------

_SPLIT_META_KEYS = ("dataset", "n_train", "val_fraction", "seed")


def make_split(n_train: int, val_fraction: float, seed: int) -> dict[str, Tensor]:
    """Seeded split of ``range(n_train)``: ``{"train": LongTensor, "val": LongTensor}``.

    One ``torch.randperm`` from a CPU generator seeded with ``seed`` (CPU so the indices do not
    depend on the machine's accelerator); val = its first ``round(val_fraction * n_train)``
    entries, train = the rest. The split is then stored (:func:`save_split`) and read back, so a
    run never depends on re-drawing it.
    """
    if int(n_train) != n_train or n_train <= 0:
        raise DataError(f"n_train must be a positive integer, got {n_train!r}")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    n_train = int(n_train)
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed))
    perm = torch.randperm(n_train, generator=g, dtype=torch.int64)
    n_val = int(round(float(val_fraction) * n_train))
    return {"train": perm[n_val:].clone(), "val": perm[:n_val].clone()}


def _check_split(split: dict, n_train: int, where: str) -> None:
    for key in ("train", "val"):
        if key not in split:
            raise DataError(f"{where}: split has no {key!r} indices")
    tr, va = split["train"], split["val"]
    seen = torch.zeros(n_train, dtype=torch.int64)
    for idx in (tr, va):
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n_train):
            raise DataError(f"{where}: split indices outside range(n_train={n_train})")
        seen.index_add_(0, idx, torch.ones_like(idx))
    if not bool((seen == 1).all()):
        raise DataError(
            f"{where}: train and val indices must be disjoint and cover range(n_train={n_train})"
        )


def save_split(path: str | os.PathLike, split: dict[str, Tensor], meta: dict) -> None:
    """Write ``split`` and ``meta`` as JSON, atomically.

    ``meta`` must hold dataset, n_train, val_fraction, seed (more keys are kept); the indices are
    checked to be a partition of ``range(n_train)`` before anything is written.
    """
    absent = [k for k in _SPLIT_META_KEYS if k not in meta]
    if absent:
        raise DataError(
            f"split meta lacks {', '.join(absent)} (needs {', '.join(_SPLIT_META_KEYS)})"
        )
    split = {k: torch.as_tensor(split[k], dtype=torch.int64).cpu() for k in ("train", "val")}
    _check_split(split, int(meta["n_train"]), str(path))
    doc = {
        "meta": dict(meta),
        "train": split["train"].tolist(),
        "val": split["val"].tolist(),
    }
    from .provenance import atomic_write_text  # the one atomic writer (umask, fsync)

    atomic_write_text(Path(path), json.dumps(doc, separators=(",", ":")) + "\n")


def load_split(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict]:
    """Read a split file written by :func:`save_split`: ``({"train", "val"}: LongTensor, meta)``."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        meta = doc["meta"]
        split = {k: torch.tensor(doc[k], dtype=torch.int64) for k in ("train", "val")}
    except FileNotFoundError:
        raise DataError(f"split file {path} does not exist") from None
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a split file ({type(e).__name__}: {e})") from e
    absent = [k for k in _SPLIT_META_KEYS if k not in meta]
    if absent:
        raise DataError(f"{path}: split meta lacks {', '.join(absent)}")
    _check_split(split, int(meta["n_train"]), str(path))
    return split, meta


# --------------------------------------------------------------------------------------------
# Panel data
# --------------------------------------------------------------------------------------------


@dataclass
class PanelData:
    """What one panel trains and evaluates on: ``(x, y)`` pairs on the device.

    ``fill`` is the per-channel padding value of the random crop, (0 - mean)/std, so that the
    augmentation equals torchvision's RandomCrop(pad) applied before Normalize.
    """

    train: tuple[Tensor, Tensor]
    val: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]
    num_classes: int
    dataset: str
    augment: bool
    fill: Tensor | None = None
    provenance: dict = field(default_factory=dict)

    def augment_batch(self, x: Tensor, generator: torch.Generator, padding: int = 4) -> Tensor:
        """Random crop + flip of a training batch if this data set is augmented, else ``x``."""
        if not self.augment:
            return x
        return augment_batch(x, generator, padding=padding, fill=self.fill)

    def describe(self) -> dict:
        """Sizes per split and the data set's name (plus split provenance): for result metadata."""
        return {
            "dataset": self.dataset,
            "num_classes": self.num_classes,
            "augment": self.augment,
            "input_shape": list(self.train[0].shape[1:]),
            "n_train": int(self.train[0].shape[0]),
            "n_val": int(self.val[0].shape[0]),
            "n_test": int(self.test[0].shape[0]),
            **self.provenance,
        }


def _take(n: int | None, available: int, key: str) -> int:
    if n is None:
        return available
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise DataError(f"{key} must be a non-negative integer or None, got {n!r}")
    if n > available:
        raise DataError(f"{key}={n} is larger than the {available} samples available")
    return int(n)


def panel_data(
    name: str,
    data_dir: str | os.PathLike,
    split_path: str | os.PathLike,
    device: torch.device | str = "cpu",
    train_samples: int | None = None,
    val_samples: int | None = None,
    test_samples: int | None = None,
) -> PanelData:
    """Load data set ``name``, apply the split file, optionally cut to reduced-scale subsets.

    ``*_samples`` (None = all) keep the FIRST n entries of the split's train / val index lists
    (so smaller subsets are nested in larger ones) and the first n test samples. Indexing happens
    on the uint8 arrays before normalisation (less memory; identical values).
    """
    spec = _spec(name)
    split, meta = load_split(split_path)
    if meta["dataset"] != name:
        raise DataError(f"{split_path}: split is for data set {meta['dataset']!r}, not {name!r}")
    if int(meta["n_train"]) != spec.n_train:
        raise DataError(
            f"{split_path}: split has n_train={meta['n_train']}, {name} has {spec.n_train}"
        )
    n_tr = _take(train_samples, len(split["train"]), "train_samples")
    n_va = _take(val_samples, len(split["val"]), "val_samples")
    n_te = _take(test_samples, spec.n_test, "test_samples")

    x_tr, y_tr, x_te, y_te = _read_raw(spec, Path(data_dir))
    tr = split["train"][:n_tr].numpy()
    va = split["val"][:n_va].numpy()

    def pair(x: np.ndarray, y: np.ndarray) -> tuple[Tensor, Tensor]:
        return _normalise(x, spec, device), _labels(y, device)

    train = pair(x_tr[tr], y_tr[tr])
    val = pair(x_tr[va], y_tr[va])
    test = pair(x_te[:n_te], y_te[:n_te])
    fill = torch.tensor(spec.fill, dtype=torch.float32, device=train[0].device)
    provenance = {
        "split_path": str(split_path),
        "split_seed": meta["seed"],
        "val_fraction": meta["val_fraction"],
        "train_samples": train_samples,
        "val_samples": val_samples,
        "test_samples": test_samples,
    }
    return PanelData(train, val, test, spec.num_classes, name, spec.augment, fill, provenance)


# --------------------------------------------------------------------------------------------
# Batched augmentation
# --------------------------------------------------------------------------------------------


def _fill_tensor(fill: Tensor | float | tuple | list | None, c: int, like: Tensor) -> Tensor:
    if fill is None:
        fill = 0.0
    f = torch.as_tensor(fill, dtype=like.dtype, device=like.device).reshape(-1)
    if f.numel() == 1:
        f = f.expand(c)
    if f.numel() != c:
        raise DataError(f"fill has {f.numel()} values for {c} channels")
    return f.reshape(1, c, 1, 1)


def _crop_flip(
    x: Tensor,
    offsets_y: Tensor,
    offsets_x: Tensor,
    flips: Tensor,
    padding: int,
    fill: Tensor | float | tuple | list | None = None,
) -> Tensor:
    """Deterministic core of :func:`augment_batch`: given per-image offsets and flips.

    Image i is padded by ``padding`` on every side with ``fill`` (per channel), cropped at
    rows ``offsets_y[i]:+H`` and columns ``offsets_x[i]:+W`` of the padded image, then mirrored
    left-right if ``flips[i]``. One gather over the flattened padded batch; no per-image loop.
    """
    n, c, h, w = x.shape
    hp, wp = h + 2 * padding, w + 2 * padding
    padded = _fill_tensor(fill, c, x).expand(n, c, hp, wp).contiguous()
    padded[:, :, padding : padding + h, padding : padding + w] = x
    dev = x.device
    oy, ox, fl = offsets_y.to(dev).long(), offsets_x.to(dev).long(), flips.to(dev).bool()
    rows = oy[:, None] + torch.arange(h, device=dev)  # (N, H)
    cols = ox[:, None] + torch.arange(w, device=dev)  # (N, W)
    cols = torch.where(fl[:, None], cols.flip(1), cols)
    index = (rows[:, :, None] * wp + cols[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
    return padded.reshape(n, c, hp * wp).gather(2, index).reshape(n, c, h, w)


def _draw_crop_flip(
    n: int, padding: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """The random draws of :func:`augment_batch` (on the generator's device), in a fixed order."""
    dev = generator.device
    oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev)
    ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev)
    flips = torch.rand(n, generator=generator, device=dev) < 0.5
    return oy, ox, flips


def augment_batch(
    x: Tensor,
    generator: torch.Generator,
    padding: int = 4,
    fill: Tensor | float | tuple | list | None = None,
) -> Tensor:
    """Random crop (zero-pixel padding ``padding``) + horizontal flip (p = 0.5) of a batch.

    Same shape, on ``x``'s device, reproducible given ``generator`` (the draws are made on the
    generator's device, then moved). ``fill`` is the per-channel pad value in the space of ``x``:
    for normalised inputs pass (0 - mean)/std (``DatasetSpec.fill``, ``PanelData.fill``) so the
    result equals torchvision's RandomCrop(padding) + RandomHorizontalFlip before Normalize;
    None pads with 0.
    """
    if x.dim() != 4:
        raise DataError(f"augment_batch expects (N, C, H, W), got shape {tuple(x.shape)}")
    oy, ox, flips = _draw_crop_flip(x.shape[0], padding, generator)
    return _crop_flip(x, oy, ox, flips, padding, fill)

