"""Every job kind on a CUDA GPU, and the GPU paths against the CPU ones. Skipped (with the
reason) where this process sees no GPU; `python -m pytest -m cuda` runs only these."""

import json

import pandas as pd
import pytest
import torch

from conftest import TINY, snakemake
from sharpminima.compact import compact_model
from sharpminima.hessian import top_eigenvalues
from sharpminima.masks import Mask, prunable_parameters
from sharpminima.models import build_model
from sharpminima.psp import psp_statistics
from sharpminima.training import Recipe, seed_everything, train

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to this process"),
]

CUDA = torch.device("cuda") if torch.cuda.is_available() else None


def _data(n=512, device="cpu", seed=0):
    from types import SimpleNamespace

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 256, 1, 28, 28, generator=g)
    y = (x.flatten(1) @ torch.randn(784, 10, generator=g)).argmax(1)
    x, y = x.to(device), y.to(device)
    return SimpleNamespace(train=(x[:n], y[:n]), val=(x[n:n + 128], y[n:n + 128]),
                           test=(x[n + 128:], y[n + 128:]), num_classes=10)


def test_training_runs_on_the_gpu_and_is_reproducible():
    recipe = Recipe(epochs=2, batch_size=64, lr=0.05, momentum=0.9)
    runs = []
    for _ in range(2):
        seed_everything(0)
        t = train(build_model("lenet5"), _data(device=CUDA), recipe, seed=0, device=CUDA,
                  selection="best_val")
        assert next(t.model.parameters()).device.type == "cuda"
        runs.append([r["val_loss"] for r in t.history])
    assert runs[0] == pytest.approx(runs[1], rel=1e-5)  # same seed, same device


def _sparse_lenet5(seed=0, keep=0.05):
    seed_everything(seed)
    model = build_model("lenet5")
    g = torch.Generator().manual_seed(seed)
    mask = Mask({n: torch.rand(p.shape, generator=g) < keep for n, p in prunable_parameters(model).items()})
    mask.apply(model)
    return model.eval(), mask


def test_compacted_psp_statistics_on_the_gpu_match_the_cpu():
    model, mask = _sparse_lenet5()
    x, y = _data(n=300).train
    ref = psp_statistics(model, x, y, 10, batch_size=100)
    gm = model.to(CUDA)
    net, info = compact_model(gm, {k: v.to(CUDA) for k, v in mask.items()})
    assert net is not None, info
    got = psp_statistics(net, x.to(CUDA), y.to(CUDA), 10, batch_size=100)
    for k in ("loss", "psp_norm_mean_square", "psp_norm_l2", "entropy1",
              "entropy2_agreement"):
        assert got[k] == pytest.approx(ref[k], rel=1e-4, abs=1e-6), k


def test_hessian_on_the_gpu_matches_the_cpu():
    model, mask = _sparse_lenet5(keep=0.1)
    x, y = _data(n=200).train
    ref, _ = top_eigenvalues(model, mask, x, y, k=3, tol=1e-4)
    got, _ = top_eigenvalues(model.to(CUDA), {k: v.to(CUDA) for k, v in mask.items()},
                             x.to(CUDA), y.to(CUDA), k=3, tol=1e-4)
    assert got == pytest.approx(ref, rel=1e-3)


def test_every_job_of_the_tiny_workflow_runs_on_cuda(data_mirror, tmp_path):
    """device=auto with a visible GPU: every training and analysis job reports CUDA."""
    snakemake("--cores", "2", "--configfile", TINY, "--config", f"data_mirror={data_mirror}",
              "device=auto", cwd=tmp_path)
    dense = pd.read_csv(tmp_path / "results/tables/dense.csv")
    assert dense.device.str.startswith("cuda").all()
    metrics = list((tmp_path / "results").glob("*/*/s0/**/metrics.json"))
    metrics += list((tmp_path / "results/landscape").glob("*/*.json"))
    kinds = set()
    for f in metrics:
        m = json.loads(f.read_text())
        dev = m.get("provenance", {}).get("device")
        if dev is not None:
            assert dev.startswith("cuda"), f
            kinds.add(m.get("method") or f.stem)
    assert {"dense", "rewind", "reinit", "random", "oneshot", "loss", "psp", "hessian", "probe"} <= kinds
    traj = json.loads((tmp_path / "results/lenet5_mnist/lobster/s0/trajectory.json").read_text())
    assert traj["provenance"]["device"].startswith("cuda")


@pytest.mark.parametrize("model_name", ["lenet300", "lenet5"])
def test_compacted_training_on_the_gpu_equals_the_dense_path(model_name):
    """compact_training: always on CUDA (auto keeps the dense path there): one epoch equals
    the dense masked computation, pruned weights stay 0.0."""
    import dataclasses

    from test_compact_training import sparse_mask

    recipe = Recipe(epochs=1, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4)
    out = {}
    for mode in ("never", "always"):
        seed_everything(0)
        model = build_model(model_name, num_classes=10)
        mask = sparse_mask(model)
        out[mode] = train(model, _data(device=CUDA), dataclasses.replace(recipe, compact_training=mode),
                          seed=0, device=CUDA, mask=mask)
    assert out["always"].compaction.net is not None and out["never"].compaction.net is None
    pd_, pc = dict(out["never"].model.named_parameters()), dict(out["always"].model.named_parameters())
    for n in pd_:
        torch.testing.assert_close(pc[n], pd_[n], rtol=1e-4, atol=1e-5, msg=n)
    for n, keep in out["always"].mask.items():
        assert (pc[n][~keep.to(pc[n].device)] == 0).all(), n
