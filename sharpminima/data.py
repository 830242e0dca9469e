"""Data sets: fetch (offline mirror or torchvision download), md5 check, parse with
torchvision's classes, split, whole-set tensors, augmentation.

Why it looks like this:

* The data sets are those of the registry, :mod:`sharpminima.datasets`; each names the
  torchvision class that reads its files, so the files on disk follow torchvision's layout under
  ``data_dir``: a torchvision download is usable here and a folder prepared here by torchvision.
  The offline mirror (the ``data_mirror`` setting, e.g. ``../shared/datasets``) has the same
  layout with files optionally gzip-compressed (``<file>.gz``); it is only ever read.
* :func:`prepare_dataset` (one job per data set) checks every file's md5, parses the set once
  with its torchvision class and stores its images (uint8, N x C x H x W) and labels as one
  tensor file, ``<name>.tensors.pt``, whose md5 the manifest ``<name>.manifest.json`` records.
  Training jobs read that file, md5-checked against the manifest (about 0.1 s per 50 MB), and
  keep the whole set as tensors on the device, batched by index: 1.3-5.6x faster than a
  DataLoader on a CPU (benchmarks/README.md), and no job but the preparation imports
  torchvision (about 2 s per job).
* Every write into ``data_dir`` is atomic (provenance.atomic_path), so an interrupted job
  never leaves a half file that a later job would take for a complete one.
* The validation split is drawn once from a seeded CPU generator and stored as a JSON index
  file, so every method and every machine sees the same split (docs/methods.md §1).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .datasets import DATASETS, DataError, DatasetSpec
from .datasets import spec as _spec
from .provenance import atomic_path, atomic_torch_save, atomic_write_json, atomic_write_text

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "DataError",
    "ChecksumError",
    "prepare_dataset",
    "verify_dataset",
    "manifest_path",
    "tensors_path",
    "load_dataset",
    "make_split",
    "save_split",
    "load_split",
    "PanelData",
    "panel_data",
    "augment_batch",
]

_log = logging.getLogger(__name__)


class ChecksumError(DataError):
    """A file whose md5 is not the expected one."""

    def __init__(self, path: Path | str, expected: str, found: str, hint: str = ""):
        self.path, self.expected, self.found = str(path), expected, found
        msg = f"md5 mismatch for {path}: expected {expected}, found {found}"
        super().__init__(msg + (f". {hint}" if hint else ""))


def manifest_path(name: str, data_dir: str | os.PathLike) -> Path:
    """Where :func:`prepare_dataset` records what it verified and wrote (the rule's output)."""
    return Path(data_dir) / f"{name}.manifest.json"


def tensors_path(name: str, data_dir: str | os.PathLike) -> Path:
    """The prepared images and labels of data set ``name``: what every training job reads."""
    return Path(data_dir) / f"{name}.tensors.pt"


# --------------------------------------------------------------------------------------------
# Fetching and checking files
# --------------------------------------------------------------------------------------------


def _check_file(data_dir: Path, rel: str, expected: str, hint: str = "") -> str:
    from torchvision.datasets.utils import calculate_md5

    path = data_dir / rel
    if not path.is_file():
        raise DataError(f"missing data file {path} (expected md5 {expected})")
    found = calculate_md5(str(path))
    if found != expected:
        raise ChecksumError(path, expected, found, hint)
    return found


def verify_dataset(name: str, data_dir: str | os.PathLike) -> dict[str, str]:
    """md5 of every file of data set ``name`` under ``data_dir``, checked against the registry.

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
    """Copy (or gunzip) ``src`` to ``dest`` atomically, md5-checking the bytes on the way (one
    pass, where torchvision's extract-then-check would read every file twice).

    A wrong mirror file never reaches ``dest``: ChecksumError names the mirror file.
    """
    h = hashlib.md5()
    try:
        with atomic_path(dest) as tmp:
            opener = gzip.open if src.suffix == ".gz" else open
            with opener(src, "rb") as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(1 << 22):
                    h.update(chunk)
                    fout.write(chunk)
            if h.hexdigest() != expected:
                raise ChecksumError(src, expected, h.hexdigest(), "the mirror's copy is not the official file")
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"cannot read mirror file {src} (expected "
                        f"{'a gzip file' if src.suffix == '.gz' else 'a readable file'} whose "
                        f"content has md5 {expected}): {type(e).__name__}: {e}") from e


def _torchvision_class(spec: DatasetSpec):
    import torchvision.datasets as tvd  # slow import (~2 s): only where a data set is prepared

    return getattr(tvd, spec.torchvision_class)


def _torchvision_download(name: str, data_dir: Path) -> None:
    cls = _torchvision_class(_spec(name))
    try:
        for train in (True, False):
            cls(root=str(data_dir), train=train, download=True)
    except Exception as e:  # URLError, RuntimeError from torchvision's mirrors, ...
        raise DataError(
            f"{name}: torchvision download into {data_dir} failed ({type(e).__name__}: {e}); "
            f"without network, set `data_mirror` to a folder holding the files"
        ) from e


def _parse(spec: DatasetSpec, data_dir: Path) -> dict[str, Tensor]:
    """Images (uint8, N x C x H x W) and labels (int64) of train and test, read by the data
    set's torchvision class from the verified files; shapes and labels checked against the spec."""
    cls = _torchvision_class(spec)
    out = {}
    for part, train, n in (("train", True, spec.n_train), ("test", False, spec.n_test)):
        try:
            ds = cls(root=str(data_dir), train=train, download=False)
        except Exception as e:  # torchvision's "Dataset not found or corrupted", parse errors
            raise DataError(f"{spec.name} ({spec.torchvision_class}) cannot read its {part} files "
                            f"under {data_dir}: {type(e).__name__}: {e}") from e
        x = torch.as_tensor(np.asarray(ds.data), dtype=torch.uint8)
        if x.dim() == 3:  # (N, H, W): one channel
            x = x[:, None]
        elif x.dim() == 4 and x.shape[-1] == spec.input_shape[0]:  # (N, H, W, C) as CIFAR's
            x = x.permute(0, 3, 1, 2)
        y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
        if tuple(x.shape) != (n, *spec.input_shape) or tuple(y.shape) != (n,):
            raise DataError(f"{spec.name} {part}: images {tuple(x.shape)}, labels {tuple(y.shape)}; "
                            f"expected ({n}, {', '.join(map(str, spec.input_shape))}) and ({n},)")
        if int(y.min()) < 0 or int(y.max()) >= spec.num_classes:
            raise DataError(f"{spec.name} {part}: labels outside 0..{spec.num_classes - 1}")
        out[f"x_{part}"], out[f"y_{part}"] = x.contiguous(), y
    return out


def prepare_dataset(
    name: str,
    data_dir: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    download: bool = True,
) -> dict:
    """Make ``data_dir`` hold data set ``name`` complete, verified and parsed.

    Per file: already present -> kept (and checked); else copied / gunzipped from ``mirror``
    (plain or ``.gz``); what is still missing comes from torchvision's download if ``download``,
    else DataError. A present file with a wrong md5 is not overwritten: ChecksumError says to
    delete it. The verified files are parsed by the data set's torchvision class into
    ``<name>.tensors.pt``. Writes and returns the manifest ``{"dataset", "files": {relpath:
    md5}, "source", "tensors": {"path", "md5"}}``, where source is "present",
    "mirror:<path>" or "download" (the last step that supplied files).
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
            _log.info(f"{name}: {src} -> {data_dir / rel}")
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
        _log.info(f"{name}: downloading with torchvision into {data_dir}")
        data_dir.mkdir(parents=True, exist_ok=True)
        _torchvision_download(name, data_dir)
        source = "download"

    hint = "delete it to fetch it again from the mirror or the network"
    files = {rel: _check_file(data_dir, rel, md5, hint) for rel, md5 in spec.files.items()}
    tensors = tensors_path(name, data_dir)
    kept = _prepared_still_valid(spec, data_dir, files) if source == "present" else None
    if kept is None:
        atomic_torch_save(_parse(spec, data_dir), tensors)
        kept = _md5_of(tensors.read_bytes())
        _log.info(f"{name}: parsed by torchvision.datasets.{spec.torchvision_class} into {tensors}")
    manifest = {"dataset": name, "files": files, "source": source,
                "tensors": {"path": tensors.name, "md5": kept}}
    atomic_write_json(manifest_path(name, data_dir), manifest)
    _log.info(f"{name}: verified {len(files)} files ({source})")
    return manifest


def _prepared_still_valid(spec: DatasetSpec, data_dir: Path, files: dict) -> str | None:
    """The md5 of the tensors an earlier preparation of these same files wrote, when its
    manifest and tensors are intact (torch.save is not byte-reproducible, so they are kept
    rather than rewritten); None when they must be parsed again."""
    try:
        manifest, _ = _checked_prepared_bytes(spec, data_dir)
    except (DataError, OSError):
        return None
    return manifest["tensors"]["md5"] if manifest.get("files") == files else None


# --------------------------------------------------------------------------------------------
# The prepared tensors
# --------------------------------------------------------------------------------------------


def _md5_of(buf: bytes | bytearray) -> str:
    return hashlib.md5(buf).hexdigest()


def _checked_prepared_bytes(spec: DatasetSpec, data_dir: Path) -> tuple[dict, bytes]:
    """The manifest :func:`prepare_dataset` wrote and the bytes of the tensors it lists,
    md5-checked against it: a file changed or truncated after the preparation fails here,
    naming it."""
    man_path = manifest_path(spec.name, data_dir)
    redo = f"delete it and rerun to prepare {spec.name} again"
    try:
        manifest = json.loads(man_path.read_text())
        expected = manifest["tensors"]
        path = data_dir / expected["path"]
    except FileNotFoundError:
        raise DataError(f"{spec.name}: no manifest {man_path}; run prepare_dataset first") from None
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{man_path}: not a data set manifest ({type(e).__name__}: {e}); {redo}") from e
    try:
        buf = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{spec.name}: missing prepared file {path} (the manifest {man_path} "
                        f"lists it); {redo}") from None
    found = _md5_of(buf)
    if found != expected["md5"]:
        raise ChecksumError(path, expected["md5"], found,
                            f"the file changed after the data set was prepared ({man_path}): {redo}")
    return manifest, buf


def _read_prepared(spec: DatasetSpec, data_dir: Path) -> dict[str, Tensor]:
    """The tensors :func:`prepare_dataset` wrote, checked by :func:`_checked_prepared_bytes`
    in every job that reads them."""
    manifest, buf = _checked_prepared_bytes(spec, data_dir)
    try:
        t = torch.load(io.BytesIO(buf), weights_only=True)
        return {k: t[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except Exception as e:
        path = data_dir / manifest["tensors"]["path"]
        raise DataError(f"{path}: not a prepared data set ({type(e).__name__}: {e}); delete it and "
                        f"rerun to prepare {spec.name} again") from e


def _normalise(x: Tensor, spec: DatasetSpec, device: torch.device | str) -> Tensor:
    """uint8 (N, C, H, W) -> float32 on ``device``, (x/255 - mean)/std per channel.

    The uint8 tensor crosses to the device (4x less traffic than float), then is converted there.
    """
    out = x.contiguous().to(device).to(torch.float32).div_(255.0)
    c = spec.input_shape[0]
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=out.device).view(1, c, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=out.device).view(1, c, 1, 1)
    return out.sub_(mean).div_(std)


def load_dataset(
    name: str, data_dir: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``x_train, y_train, x_test, y_test`` of the whole data set, as tensors on ``device``.

    x: float32 (N, C, H, W), normalised with the spec's mean/std; y: int64. Reads what
    :func:`prepare_dataset` wrote, md5-checked.
    """
    spec = _spec(name)
    t = _read_prepared(spec, Path(data_dir))
    return (_normalise(t["x_train"], spec, device), t["y_train"].to(device),
            _normalise(t["x_test"], spec, device), t["y_test"].to(device))


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
    on the uint8 tensors before normalisation (less memory; identical values).
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

    t = _read_prepared(spec, Path(data_dir))
    tr, va = split["train"][:n_tr], split["val"][:n_va]

    def pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return _normalise(x, spec, device), y.to(device)

    train = pair(t["x_train"][tr], t["y_train"][tr])
    val = pair(t["x_train"][va], t["y_train"][va])
    test = pair(t["x_test"][:n_te], t["y_test"][:n_te])
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

