"""Tests of sharpminima.data on the real data files (offline mirror), no network.

Fixtures `data_mirror` and `mnist_data_dir` live in tests/conftest.py ("data fixtures").
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from sharpminima import data as D
from sharpminima.data import ChecksumError, DataError

MNIST_RAW = "MNIST/raw"


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under a folder with its size and mtime: to prove nothing was written there."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def copy_mnist(src_dir: Path, dst_dir: Path, names=None) -> Path:
    """Copy (some of) the decompressed MNIST files of a prepared data_dir into another folder."""
    (dst_dir / MNIST_RAW).mkdir(parents=True, exist_ok=True)
    for rel in D.DATASETS["mnist"].files:
        if names is None or Path(rel).name in names:
            shutil.copyfile(src_dir / rel, dst_dir / rel)
    return dst_dir


# ------------------------------------------------------------------------------------ specs


def test_specs_match_paper_and_readme():
    assert {"mnist", "fashion_mnist", "cifar10"} <= set(D.DATASETS)
    m, f, c = D.DATASETS["mnist"], D.DATASETS["fashion_mnist"], D.DATASETS["cifar10"]
    assert (m.folder, f.folder, c.folder) == ("MNIST", "FashionMNIST", "cifar-10-batches-py")
    assert m.mean == (0.1307,) and m.std == (0.3081,)
    assert f.mean == (0.2860,) and f.std == (0.3530,)
    assert c.mean == (0.4914, 0.4822, 0.4465) and c.std == (0.2470, 0.2435, 0.2616)
    assert (m.n_train, m.n_test, c.n_train, c.n_test) == (60000, 10000, 50000, 10000)
    assert m.input_shape == (1, 28, 28) and c.input_shape == (3, 32, 32)
    assert (m.augment, f.augment, c.augment) == (False, False, True)
    assert (m.torchvision_class, f.torchvision_class, c.torchvision_class) == ("MNIST", "FashionMNIST", "CIFAR10")
    assert len(c.files) == 7 and len(m.files) == 4
    assert c.fill == pytest.approx(tuple(-mu / s for mu, s in zip(c.mean, c.std)))
    # the md5s are those of the shared mirror's README
    readme = Path(__file__).resolve().parents[2] / "shared/datasets/README.md"
    if readme.is_file():
        text = readme.read_text()
        for spec in D.DATASETS.values():
            for rel, s in spec.files.items():
                assert f"{s}  {rel}" in text


def test_unknown_dataset_lists_known_names(tmp_path):
    with pytest.raises(DataError) as e:
        D.prepare_dataset("svhn", tmp_path, download=False)
    for name in ("mnist", "fashion_mnist", "cifar10", "svhn"):
        assert name in str(e.value)
    with pytest.raises(DataError, match="cifar10"):
        D.load_dataset("imagenet", tmp_path)


# ------------------------------------------------------------------------------------ prepare


def test_prepare_mnist_from_gz_mirror_then_present(data_mirror, tmp_path):
    before = snapshot(data_mirror)
    man = D.prepare_dataset("mnist", tmp_path, mirror=data_mirror, download=False)
    tensors = D.tensors_path("mnist", tmp_path)
    assert man == {
        "dataset": "mnist",
        "files": D.DATASETS["mnist"].files,
        "source": f"mirror:{data_mirror}",
        "tensors": {"path": "mnist.tensors.pt", "md5": md5(tensors)},
    }
    assert json.loads(D.manifest_path("mnist", tmp_path).read_text()) == man
    for rel, s in D.DATASETS["mnist"].files.items():
        assert md5(tmp_path / rel) == s
    assert not [p for p in tmp_path.rglob("*") if "tmp" in p.name]  # no temporary left over
    # second call: nothing to do, even without a mirror
    again = D.prepare_dataset("mnist", tmp_path, mirror=None, download=False)
    assert again["source"] == "present" and again["files"] == man["files"]
    assert again["tensors"] == man["tensors"]  # kept, not parsed again
    assert D.verify_dataset("mnist", tmp_path) == man["files"]
    assert snapshot(data_mirror) == before  # the mirror is only read


def test_load_mnist(mnist_data_dir):
    x_tr, y_tr, x_te, y_te = D.load_dataset("mnist", mnist_data_dir)
    assert x_tr.shape == (60000, 1, 28, 28) and x_te.shape == (10000, 1, 28, 28)
    assert y_tr.shape == (60000,) and y_te.shape == (10000,)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    assert abs(x_tr.mean().item()) < 0.01 and abs(x_tr.std().item() - 1) < 0.01
    assert set(y_tr.unique().tolist()) == set(range(10))
    # a 0 pixel maps to -mean/std, a 255 pixel to (1-mean)/std
    assert x_tr.min().item() == pytest.approx(-0.1307 / 0.3081, abs=1e-5)
    assert x_tr.max().item() == pytest.approx((1 - 0.1307) / 0.3081, abs=1e-5)
    # label counts of the official training set
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(y_tr).tolist() == counts


def test_mnist_matches_torchvision_reader(mnist_data_dir):
    """The prepared tensors are torchvision's pixels and labels, normalised and back."""
    tvd = pytest.importorskip("torchvision.datasets")
    tv = tvd.MNIST(root=str(mnist_data_dir), train=False, download=False)
    _, _, x_te, y_te = D.load_dataset("mnist", mnist_data_dir)
    pixels = torch.round((x_te[:, 0] * 0.3081 + 0.1307) * 255).to(torch.uint8)
    assert torch.equal(pixels, tv.data)
    assert torch.equal(y_te, tv.targets)


def test_prepare_and_load_fashion_mnist(data_mirror, tmp_path):
    man = D.prepare_dataset("fashion_mnist", tmp_path, mirror=data_mirror, download=False)
    assert man["source"].startswith("mirror:")
    assert sorted(man["files"]) == sorted(D.DATASETS["fashion_mnist"].files)
    x_tr, y_tr, x_te, y_te = D.load_dataset("fashion_mnist", tmp_path)
    assert x_tr.shape == (60000, 1, 28, 28) and x_te.shape == (10000, 1, 28, 28)
    assert abs(x_tr.mean().item()) < 0.01 and abs(x_tr.std().item() - 1) < 0.01
    assert torch.bincount(y_tr).tolist() == [6000] * 10  # Fashion-MNIST is balanced
    assert torch.bincount(y_te).tolist() == [1000] * 10


def test_corrupt_file_raises_checksum_error(mnist_data_dir, data_mirror, tmp_path):
    copy_mnist(mnist_data_dir, tmp_path)
    rel = f"{MNIST_RAW}/train-labels-idx1-ubyte"
    path = tmp_path / rel
    raw = bytearray(path.read_bytes())
    raw[1000] ^= 0xFF
    path.write_bytes(bytes(raw))
    expected, found = D.DATASETS["mnist"].files[rel], md5(path)
    for call in (
        lambda: D.verify_dataset("mnist", tmp_path),
        # a mirror does not silently overwrite a bad file: the user is told to delete it
        lambda: D.prepare_dataset("mnist", tmp_path, mirror=data_mirror, download=False),
    ):
        with pytest.raises(ChecksumError) as e:
            call()
        msg = str(e.value)
        assert "train-labels-idx1-ubyte" in msg and expected in msg and found in msg
        assert (e.value.expected, e.value.found) == (expected, found)
    assert md5(path) == found


def test_missing_file_without_mirror_or_download(mnist_data_dir, tmp_path):
    copy_mnist(
        mnist_data_dir, tmp_path, names={"train-images-idx3-ubyte", "train-labels-idx1-ubyte"}
    )
    with pytest.raises(DataError) as e:
        D.prepare_dataset("mnist", tmp_path, mirror=None, download=False)
    msg = str(e.value)
    assert "t10k-images-idx3-ubyte" in msg and "data_mirror" in msg and "download" in msg
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        D.verify_dataset("mnist", tmp_path)
    with pytest.raises(DataError, match=r"no manifest .*mnist.manifest.json; run prepare_dataset"):
        D.load_dataset("mnist", tmp_path)


def test_mirror_without_the_file_and_no_download(tmp_path):
    empty_mirror = tmp_path / "mirror"
    empty_mirror.mkdir()
    with pytest.raises(DataError) as e:
        D.prepare_dataset("mnist", tmp_path / "data", mirror=empty_mirror, download=False)
    assert "train-images-idx3-ubyte" in str(e.value) and str(empty_mirror) in str(e.value)


def test_plain_mirror_and_partial_data_dir(mnist_data_dir, tmp_path, caplog):
    """A mirror of plain (not gzip) files works; only the missing files are taken from it."""
    mirror = copy_mnist(mnist_data_dir, tmp_path / "plain_mirror")
    before = snapshot(mirror)
    data_dir = copy_mnist(mnist_data_dir, tmp_path / "data", names={"train-images-idx3-ubyte"})
    kept = (data_dir / MNIST_RAW / "train-images-idx3-ubyte").stat().st_mtime_ns
    caplog.set_level(logging.INFO, logger="sharpminima.data")
    man = D.prepare_dataset("mnist", data_dir, mirror=mirror, download=False)
    assert man["source"] == f"mirror:{mirror}" and man["files"] == D.DATASETS["mnist"].files
    copied = [r.getMessage() for r in caplog.records if " -> " in r.getMessage()]
    assert len(copied) == 3 and not any("train-images" in m for m in copied)
    assert (data_dir / MNIST_RAW / "train-images-idx3-ubyte").stat().st_mtime_ns == kept
    assert snapshot(mirror) == before
    x_tr, y_tr, x_te, y_te = D.load_dataset("mnist", data_dir)
    assert len(x_tr) == 60000 and len(y_te) == 10000


def test_wrong_file_in_mirror_never_reaches_data_dir(mnist_data_dir, tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / MNIST_RAW).mkdir(parents=True)
    good = (mnist_data_dir / MNIST_RAW / "t10k-labels-idx1-ubyte").read_bytes()
    bad = bytearray(good)
    bad[-1] = (bad[-1] + 1) % 10
    with gzip.open(mirror / MNIST_RAW / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(bytes(bad))
    data_dir = copy_mnist(
        mnist_data_dir, tmp_path / "data",
        names={"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"},
    )
    with pytest.raises(ChecksumError) as e:
        D.prepare_dataset("mnist", data_dir, mirror=mirror, download=False)
    assert "t10k-labels-idx1-ubyte.gz" in str(e.value)
    assert e.value.found == hashlib.md5(bytes(bad)).hexdigest()
    assert sorted(p.name for p in (data_dir / MNIST_RAW).iterdir()) == [
        "t10k-images-idx3-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    ]


def test_download_fallback_is_used_and_verified(mnist_data_dir, tmp_path, monkeypatch):
    """No network here: stand in for torchvision's download, check the order and the check."""
    calls = []

    def fake_download(name, data_dir):
        calls.append(name)
        copy_mnist(mnist_data_dir, data_dir)

    monkeypatch.setattr(D, "_torchvision_download", fake_download)
    man = D.prepare_dataset("mnist", tmp_path / "d", mirror=None, download=True)
    assert calls == ["mnist"] and man["source"] == "download"
    # a file missing from a configured mirror is the mirror's error, named, not a download
    empty_mirror = tmp_path / "mirror"
    (empty_mirror / MNIST_RAW).mkdir(parents=True)
    src = mnist_data_dir / MNIST_RAW / "train-images-idx3-ubyte"
    (empty_mirror / MNIST_RAW / "train-images-idx3-ubyte").write_bytes(src.read_bytes())
    with pytest.raises(DataError, match=r"3 file\(s\) missing from data_mirror .*t10k-images-idx3-ubyte"):
        D.prepare_dataset("mnist", tmp_path / "d1", mirror=empty_mirror, download=True)
    assert calls == ["mnist"]

    def bad_download(name, data_dir):
        copy_mnist(mnist_data_dir, data_dir)
        (data_dir / MNIST_RAW / "t10k-labels-idx1-ubyte").write_bytes(b"\0" * 8)

    monkeypatch.setattr(D, "_torchvision_download", bad_download)
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte"):
        D.prepare_dataset("mnist", tmp_path / "d2", download=True)


def test_truncated_file_is_named_by_the_preparation(mnist_data_dir, tmp_path):
    copy_mnist(mnist_data_dir, tmp_path)
    path = tmp_path / MNIST_RAW / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte"):
        D.prepare_dataset("mnist", tmp_path, download=False)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_prepared_tensors_changed_after_preparation_fail_every_read_naming_them(
        mnist_data_dir, tmp_path, damage):
    """Every job that reads a data set checks the bytes against the manifest's sum: one
    flipped byte (same size), a truncation or a deletion is caught, naming the file."""
    shutil.copytree(mnist_data_dir, tmp_path / "d")
    path = D.tensors_path("mnist", tmp_path / "d")
    expected = json.loads(D.manifest_path("mnist", tmp_path / "d").read_text())["tensors"]["md5"]
    buf = bytearray(path.read_bytes())
    if damage == "flip":
        buf[len(buf) // 2] ^= 0x01
        path.write_bytes(bytes(buf))
        err, match = ChecksumError, f"mnist.tensors.pt: expected {expected}.*delete it"
    elif damage == "truncate":
        path.write_bytes(bytes(buf[:-100]))
        err, match = ChecksumError, "mnist.tensors.pt"
    else:
        path.unlink()
        err, match = DataError, "missing prepared file .*mnist.tensors.pt"
    with pytest.raises(err, match=match):
        D.load_dataset("mnist", tmp_path / "d")


@pytest.mark.parametrize("offset", [12, 40, 5000, 20_000, -30, -5])
def test_corrupt_gzip_in_the_mirror_is_a_data_error_naming_it(mnist_data_dir, data_mirror, tmp_path, offset):
    """One corrupted byte inside a .gz of the mirror: a DataError naming the file, never a raw
    zlib or gzip traceback."""
    import shutil

    mirror = tmp_path / "mirror"
    shutil.copytree(data_mirror / "MNIST", mirror / "MNIST", copy_function=shutil.copyfile)
    gz = mirror / MNIST_RAW / "train-labels-idx1-ubyte.gz"
    buf = bytearray(gz.read_bytes())
    buf[offset] ^= 0xFF
    gz.write_bytes(bytes(buf))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        D.prepare_dataset("mnist", tmp_path / "d", mirror=mirror, download=False)


# ------------------------------------------------------------------------------------ splits


def test_make_split_partition_and_sizes():
    s = D.make_split(60000, 0.1, 0)
    tr, va = s["train"], s["val"]
    assert tr.dtype == va.dtype == torch.int64
    assert len(va) == 6000 and len(tr) == 54000
    assert torch.equal(torch.sort(torch.cat([tr, va])).values, torch.arange(60000))
    assert len(set(tr.tolist()) & set(va.tolist())) == 0
    s_odd = D.make_split(11, 0.25, 3)  # round(2.75) = 3
    assert len(s_odd["val"]) == 3 and len(s_odd["train"]) == 8
    assert len(D.make_split(10, 0.0, 0)["val"]) == 0
    for bad in ((0, 0.1, 0), (100, 1.0, 0), (100, -0.1, 0)):
        with pytest.raises(DataError):
            D.make_split(*bad)


def test_make_split_seeded_and_pinned():
    a, b, c = D.make_split(60000, 0.1, 0), D.make_split(60000, 0.1, 0), D.make_split(60000, 0.1, 1)
    assert torch.equal(a["val"], b["val"]) and torch.equal(a["train"], b["train"])
    assert not torch.equal(a["val"], c["val"])
    # pinned: a change here means splits drawn on another torch would differ
    assert a["val"][:8].tolist() == [36044, 10678, 57327, 55074, 21567, 15479, 9481, 43095]
    assert a["train"][:8].tolist() == [11361, 45009, 30176, 22709, 27663, 2435, 27294, 13199]
    # independent of the global RNG state
    torch.manual_seed(123)
    torch.rand(10)
    assert torch.equal(D.make_split(60000, 0.1, 0)["val"], a["val"])


def test_save_load_split_roundtrip(tmp_path):
    split = D.make_split(1000, 0.2, 7)
    meta = {"dataset": "mnist", "n_train": 1000, "val_fraction": 0.2, "seed": 7, "note": "x"}
    path = tmp_path / "sub" / "split.json"
    D.save_split(path, split, meta)
    assert [p.name for p in path.parent.iterdir()] == ["split.json"]  # atomic: no tmp left
    got, got_meta = D.load_split(path)
    assert got_meta == meta
    assert torch.equal(got["train"], split["train"]) and torch.equal(got["val"], split["val"])
    assert got["train"].dtype == torch.int64
    doc = json.loads(path.read_text())
    assert set(doc) == {"meta", "train", "val"}


def test_split_validation(tmp_path):
    split = D.make_split(100, 0.1, 0)
    with pytest.raises(DataError, match="seed"):
        no_seed = {"dataset": "mnist", "n_train": 100, "val_fraction": 0.1}
        D.save_split(tmp_path / "a.json", split, no_seed)
    meta = {"dataset": "mnist", "n_train": 100, "val_fraction": 0.1, "seed": 0}
    overlapping = {"train": split["train"], "val": split["train"][:10]}
    with pytest.raises(DataError, match="disjoint"):
        D.save_split(tmp_path / "b.json", overlapping, meta)
    assert not (tmp_path / "b.json").exists()
    doc = {"meta": meta, "train": list(range(90)), "val": [0] * 10}
    (tmp_path / "c.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match="c.json"):
        D.load_split(tmp_path / "c.json")
    with pytest.raises(DataError, match="does not exist"):
        D.load_split(tmp_path / "nope.json")
    (tmp_path / "d.json").write_text("{not json")
    with pytest.raises(DataError, match="d.json"):
        D.load_split(tmp_path / "d.json")


# ------------------------------------------------------------------------------------ panel data


@pytest.fixture(scope="module")
def mnist_split(tmp_path_factory):
    path = tmp_path_factory.mktemp("split") / "mnist_split.json"
    meta = {"dataset": "mnist", "n_train": 60000, "val_fraction": 0.1, "seed": 0}
    D.save_split(path, D.make_split(60000, 0.1, 0), meta)
    return path


def test_panel_data_full_matches_load_dataset(mnist_data_dir, mnist_split):
    pd = D.panel_data("mnist", mnist_data_dir, mnist_split)
    split, _ = D.load_split(mnist_split)
    x_tr, y_tr, x_te, y_te = D.load_dataset("mnist", mnist_data_dir)
    assert torch.equal(pd.train[0], x_tr[split["train"]])
    assert torch.equal(pd.train[1], y_tr[split["train"]])
    assert torch.equal(pd.val[0], x_tr[split["val"]]) and torch.equal(pd.val[1], y_tr[split["val"]])
    assert torch.equal(pd.test[0], x_te) and torch.equal(pd.test[1], y_te)
    assert (pd.num_classes, pd.dataset, pd.augment) == (10, "mnist", False)
    desc = pd.describe()
    assert desc["dataset"] == "mnist"
    assert (desc["n_train"], desc["n_val"], desc["n_test"]) == (54000, 6000, 10000)
    assert desc["input_shape"] == [1, 28, 28] and desc["split_seed"] == 0
    json.dumps(desc)  # goes into result provenance
    # no augmentation for MNIST: the method is the identity
    assert torch.equal(pd.augment_batch(pd.train[0][:4], torch.Generator()), pd.train[0][:4])


def test_panel_data_subsets_are_nested(mnist_data_dir, mnist_split):
    small = D.panel_data(
        "mnist", mnist_data_dir, mnist_split, train_samples=100, val_samples=20, test_samples=50
    )
    big = D.panel_data(
        "mnist", mnist_data_dir, mnist_split, train_samples=200, val_samples=40, test_samples=80
    )
    assert len(small.train[0]) == 100 and len(small.val[0]) == 20 and len(small.test[0]) == 50
    for part in ("train", "val", "test"):
        s, b = getattr(small, part), getattr(big, part)
        assert torch.equal(b[0][: len(s[0])], s[0]) and torch.equal(b[1][: len(s[1])], s[1])
    assert small.describe()["n_train"] == 100 and small.describe()["train_samples"] == 100


def test_panel_data_errors(mnist_data_dir, mnist_split, tmp_path):
    for key, n in (("train_samples", 54001), ("val_samples", 6001), ("test_samples", 10001)):
        with pytest.raises(DataError, match=key):
            D.panel_data("mnist", mnist_data_dir, mnist_split, **{key: n})
    with pytest.raises(DataError, match="train_samples"):
        D.panel_data("mnist", mnist_data_dir, mnist_split, train_samples=-1)
    with pytest.raises(DataError, match="fashion_mnist"):
        D.panel_data("fashion_mnist", mnist_data_dir, mnist_split)
    wrong_n = tmp_path / "s.json"
    meta = {"dataset": "mnist", "n_train": 100, "val_fraction": 0.1, "seed": 0}
    D.save_split(wrong_n, D.make_split(100, 0.1, 0), meta)
    with pytest.raises(DataError, match="n_train"):
        D.panel_data("mnist", mnist_data_dir, wrong_n)


# ------------------------------------------------------------------------------------ augmentation


def reference_crop_flip(x, offsets_y, offsets_x, flips, padding, fill):
    """Slow, obvious version: one image at a time."""
    n, c, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(n):
        padded = torch.empty(c, h + 2 * padding, w + 2 * padding)
        for ch in range(c):
            padded[ch].fill_(float(fill[ch]))
        padded[:, padding : padding + h, padding : padding + w] = x[i]
        oy, ox = int(offsets_y[i]), int(offsets_x[i])
        crop = padded[:, oy : oy + h, ox : ox + w]
        if bool(flips[i]):
            crop = torch.flip(crop, dims=[2])
        out[i] = crop
    return out


def test_crop_flip_matches_reference_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, 3, 8, 6, generator=g)
    fill = torch.tensor([-1.5, 0.25, 2.0])
    # corners, centre, extremes, with and without flip
    oy = torch.tensor([0, 8, 0, 8, 4, 4, 1, 7, 3])
    ox = torch.tensor([0, 0, 8, 8, 4, 4, 6, 2, 5])
    fl = torch.tensor([False, True, False, True, False, True, True, False, True])
    got = D._crop_flip(x, oy, ox, fl, 4, fill)
    assert torch.equal(got, reference_crop_flip(x, oy, ox, fl, 4, fill))
    # centre offset, no flip: identity; centre + flip: a mirror image
    assert torch.equal(got[4], x[4]) and torch.equal(got[5], x[5].flip(2))
    # a corner crop shows the fill value in its padded band
    assert torch.all(got[0][:, :4, :] == fill.view(3, 1, 1))


def test_augment_batch_uses_its_draws_and_is_reproducible():
    x = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    fill = torch.tensor(D.DATASETS["cifar10"].fill)
    a = D.augment_batch(x, torch.Generator().manual_seed(5), fill=fill)
    b = D.augment_batch(x, torch.Generator().manual_seed(5), fill=fill)
    c = D.augment_batch(x, torch.Generator().manual_seed(6), fill=fill)
    assert a.shape == x.shape and a.dtype == x.dtype and a.device == x.device
    assert torch.equal(a, b) and not torch.equal(a, c)
    oy, ox, fl = D._draw_crop_flip(64, 4, torch.Generator().manual_seed(5))
    assert torch.equal(a, reference_crop_flip(x, oy, ox, fl, 4, fill))
    # the draws cover the whole range, and flips happen about half the time
    big = D._draw_crop_flip(20000, 4, torch.Generator().manual_seed(0))
    assert set(big[0].tolist()) == set(range(9)) == set(big[1].tolist())
    assert 0.48 < big[2].float().mean().item() < 0.52
    # padding 0: every image is itself or its mirror image
    p0 = D.augment_batch(x, torch.Generator().manual_seed(0), padding=0, fill=fill)
    same = (p0 == x).flatten(1).all(1)
    mirrored = (p0 == x.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 0 < int(mirrored.sum()) < 64


def test_augment_equals_torchvision_pipeline_before_normalize():
    """crop(pad 0 pixels) + flip, then normalise == normalise, then ours, fill=(0-mean)/std."""
    tf = pytest.importorskip("torchvision.transforms.functional")
    spec = D.DATASETS["cifar10"]
    g = torch.Generator().manual_seed(2)
    pixels = torch.randint(0, 256, (6, 3, 32, 32), generator=g, dtype=torch.uint8)
    mean, std = torch.tensor(spec.mean).view(3, 1, 1), torch.tensor(spec.std).view(3, 1, 1)
    oy, ox, fl = D._draw_crop_flip(6, 4, torch.Generator().manual_seed(3))
    expected = []
    for i in range(6):
        img = tf.pad(pixels[i], [4], fill=0)
        img = tf.crop(img, int(oy[i]), int(ox[i]), 32, 32)
        if fl[i]:
            img = tf.hflip(img)
        expected.append((img.float() / 255 - mean) / std)
    normalised = (pixels.float() / 255 - mean) / std
    got = D._crop_flip(normalised, oy, ox, fl, 4, torch.tensor(spec.fill))
    torch.testing.assert_close(got, torch.stack(expected), rtol=0, atol=1e-6)



def test_cifar10_from_mirror(data_mirror, tmp_path):
    man = D.prepare_dataset("cifar10", tmp_path, mirror=data_mirror, download=False)
    assert man["source"] == f"mirror:{data_mirror}" and len(man["files"]) == 7
    split_path = tmp_path / "split.json"
    D.save_split(split_path, D.make_split(50000, 0.1, 0),
                 {"dataset": "cifar10", "n_train": 50000, "val_fraction": 0.1, "seed": 0})
    pd = D.panel_data("cifar10", tmp_path, split_path, test_samples=1000)
    assert pd.train[0].shape == (45000, 3, 32, 32) and pd.val[0].shape == (5000, 3, 32, 32)
    assert pd.test[0].shape == (1000, 3, 32, 32) and pd.augment
    m = torch.cat([pd.train[0], pd.val[0]]).mean(dim=(0, 2, 3))
    assert m.abs().max().item() < 0.01
    torch.testing.assert_close(pd.fill, torch.tensor(D.DATASETS["cifar10"].fill))
    # same pixels and labels as torchvision's own reader on the same folder (also checks its md5s)
    tvd = pytest.importorskip("torchvision.datasets")
    tv = tvd.CIFAR10(root=str(tmp_path), train=False, download=False)
    spec = D.DATASETS["cifar10"]
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    pixels = torch.round((pd.test[0] * std + mean) * 255).to(torch.uint8).permute(0, 2, 3, 1)
    assert torch.equal(pixels, torch.from_numpy(tv.data[:1000]))
    assert pd.test[1].tolist() == tv.targets[:1000]
    out = pd.augment_batch(pd.train[0][:128], torch.Generator().manual_seed(0))
    assert out.shape == (128, 3, 32, 32)


def test_a_missing_mirror_fails_under_ci_instead_of_skipping(tmp_path):
    """With CI=true, no data mirror is a failure: a green run must have run the workflow."""
    import subprocess
    import sys

    test = tmp_path / "test_needs_data.py"
    test.write_text("def test_needs(data_mirror):\n    pass\n")
    conftest = Path(__file__).with_name("conftest.py")
    (tmp_path / "conftest.py").write_text(conftest.read_text())
    env = {**__import__("os").environ, "SHARPMINIMA_DATA_MIRROR": str(tmp_path / "absent")}
    for ci, outcome in (("", "1 skipped"), ("true", "1 error")):
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                           cwd=tmp_path, env={**env, "CI": ci}, capture_output=True, text=True, timeout=300)
        assert outcome in r.stdout, r.stdout[-2000:]
