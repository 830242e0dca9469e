"""Training through the compacted network (training.Compaction) computes what the dense,
masked computation computes: loss, every parameter and momentum buffer after an epoch,
pruned weights exactly 0, constant units' biases trained, resume, and every method."""

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from sharpminima import gradual, pruning
from sharpminima.masks import Mask
from sharpminima.models import build_model
from sharpminima.training import COMPACT_MODES, Recipe, compaction_pays, train

RECIPE = Recipe(epochs=1, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4)
MODELS = ["lenet300", "lenet5"]


def mnist_like(n=384, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n + 256, 1, 28, 28, generator=g)
    y = (x.flatten(1) @ torch.randn(784, 10, generator=g)).argmax(1)  # learnable labels
    return SimpleNamespace(train=(x[:n], y[:n]), val=(x[n:n + 128], y[n:n + 128]),
                           test=(x[n + 128:], y[n + 128:]), num_classes=10)


def sparse_mask(model, seed=0) -> Mask:
    """~95 % of the weights pruned at random, plus the structures compaction exploits: units
    with no kept incoming weight (their biases make them constant, not zero), and units whose
    kept weights all come from such constant units (constant too, through kept weights)."""
    g = torch.Generator().manual_seed(seed)
    mask = Mask.ones(model)
    for name, m in mask.items():
        if name.endswith("weight"):
            mask[name] = torch.rand(m.shape, generator=g) < 0.05
    first, second = [n for n in mask if n.endswith("weight")][:2]
    mask[first][: mask[first].shape[0] // 2] = False  # dead units of the first layer
    dead = mask[first].shape[0] // 2
    if mask[first].dim() == 4:  # conv2 units reading only conv1's dead channels
        mask[second][:10] = False
        mask[second][:10, :dead] = True
    else:
        mask[second][:20] = False
        mask[second][:20, :dead] = True
    return mask


def run(model_name, mode, recipe=RECIPE, mask_seed=0, **kw):
    torch.manual_seed(0)
    model = build_model(model_name, num_classes=10)
    mask = sparse_mask(model, mask_seed)
    return train(model, mnist_like(), dataclasses.replace(recipe, compact_training=mode),
                 seed=0, mask=mask, **kw)


def momentum(trainer):
    named = dict(trainer.model.named_parameters())
    return {n: trainer.optimizer.state[p]["momentum_buffer"] for n, p in named.items()}


@pytest.mark.parametrize("model_name", MODELS)
def test_one_epoch_compacted_equals_dense(model_name):
    dense, comp = run(model_name, "never"), run(model_name, "always")
    assert comp.compaction.net is not None and dense.compaction.net is None
    assert comp.history[0]["train_loss"] == pytest.approx(dense.history[0]["train_loss"], rel=1e-6)
    assert comp.history[0]["val_loss"] == pytest.approx(dense.history[0]["val_loss"], rel=1e-6)
    pd_, pc = dict(dense.model.named_parameters()), dict(comp.model.named_parameters())
    for n in pd_:
        torch.testing.assert_close(pc[n], pd_[n], rtol=1e-5, atol=1e-6, msg=n)
    md, mc = momentum(dense), momentum(comp)
    for n in md:
        torch.testing.assert_close(mc[n], md[n], rtol=1e-5, atol=1e-6, msg=n)
    # pruned entries are exactly zero, and so are their momentum buffers
    for n, keep in comp.mask.items():
        assert (pc[n][~keep] == 0).all() and (mc[n][~keep] == 0).all(), n


@pytest.mark.parametrize("model_name", MODELS)
def test_a_constant_units_bias_gets_the_dense_gradient(model_name):
    torch.manual_seed(0)
    model = build_model(model_name, num_classes=10)
    mask = sparse_mask(model)
    mask.apply(model)
    from sharpminima.compact import compact_model

    net, info = compact_model(model, mask)
    first = next(iter(info["layers"]))
    assert info["layers"][first]["constant"] > 0
    x, y = mnist_like().train
    x, y = x[:64], y[:64]
    bias = dict(model.named_parameters())[f"{first}.bias"]
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    dense = bias.grad.clone()
    model.zero_grad()
    torch.nn.functional.cross_entropy(net.functional(dict(model.named_parameters()), x), y).backward()
    dead = ~mask[f"{first}.weight"].flatten(1).any(1)
    assert dead.any() and dense[dead].abs().sum() > 0  # the constant units do learn
    torch.testing.assert_close(bias.grad, dense, rtol=1e-5, atol=1e-7)


def test_compacted_run_resumes_to_the_same_numbers(tmp_path):
    recipe = dataclasses.replace(RECIPE, epochs=3)

    whole = run("lenet5", "always", recipe=recipe)
    ckpt = tmp_path / "ckpt.pt"
    from sharpminima.training import Callback

    class Interrupt(Callback):
        def after_epoch(self, trainer, record):
            if trainer.epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run("lenet5", "always", recipe=recipe, checkpoint=ckpt, callbacks=[Interrupt()])
    resumed = run("lenet5", "always", recipe=recipe, checkpoint=ckpt)
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in whole.history]
    for (n, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), n


@pytest.mark.parametrize("model_name", MODELS)
def test_a_short_run_stays_within_tolerance_of_the_dense_one(model_name):
    recipe = dataclasses.replace(RECIPE, epochs=4)
    dense, comp = run(model_name, "never", recipe=recipe), run(model_name, "always", recipe=recipe)
    for hd, hc in zip(dense.history, comp.history):
        for k in ("train_loss", "val_loss", "test_loss"):
            assert hc[k] == pytest.approx(hd[k], rel=1e-4), (hd["epoch"], k)


def test_auto_compacts_only_where_it_pays_and_the_mode_is_checked():
    torch.manual_seed(0)
    model = build_model("lenet300", num_classes=10)
    light = Mask.ones(model)  # nothing pruned: the compacted net is the dense one
    t = train(model, mnist_like(), RECIPE, seed=0, mask=light)
    assert t.compaction.net is None and t.compaction.info["multiply_add_ratio"] == 1.0
    assert t.history[0]["multiply_add_ratio"] == 1.0
    # LeNet-300 at 95 %: a third of the multiply-adds, but under 200,000 saved per sample: dense
    t300 = run("lenet300", "auto")
    assert t300.compaction.net is None and t300.compaction.info["multiply_add_ratio"] < 0.5
    assert run("lenet5", "auto").history[0]["multiply_add_ratio"] < 0.5  # LeNet-5: compacted
    assert compaction_pays(100, 1_000_000, "cpu") and not compaction_pays(100, 1_000_000, "cuda")
    assert not compaction_pays(900_000, 1_000_000, "cpu") and not compaction_pays(0, 150_000, "cpu")
    resnet = build_model("resnet32", num_classes=10)
    t = train(resnet, SimpleNamespace(**{k: (v[0][:64].expand(-1, 3, -1, -1)[:, :, :28, :28], v[1][:64])
                                         for k, v in vars(mnist_like()).items() if k != "num_classes"}),
              dataclasses.replace(RECIPE, compact_training="always"), seed=0, mask=Mask.ones(resnet))
    assert t.compaction.net is None and not t.compaction.info["compacted"]
    assert "reason" in t.compaction.info
    assert COMPACT_MODES == ("auto", "always", "never")
    with pytest.raises(ValueError, match="compact_training"):
        dataclasses.replace(RECIPE, compact_training="on")


def _gradual(method, mode, tmp_path, settings, epochs=4):
    module, cls = gradual.load(method)
    torch.manual_seed(0)
    model = build_model("lenet5", num_classes=10)
    snaps = []
    recipe = dataclasses.replace(RECIPE, epochs=epochs, compact_training=mode)
    module.run(model, mnist_like(), recipe, cls.from_dict(settings), seed=0, device="cpu",
               checkpoint=tmp_path / f"{method}-{mode}.pt", on_snapshot=snaps.append,
               on_init=lambda s: None, targets=[50.0, 90.0])
    return snaps


@pytest.mark.parametrize("method,settings", [
    ("gmp", {"end_epoch": 2, "frequency": 3}),  # prunes within epochs: recompacts on the way
    ("imp", {"fraction": 0.6}),
])
def test_every_gradual_method_gives_the_same_snapshots_compacted(method, settings, tmp_path):
    dense = _gradual(method, "never", tmp_path, settings)
    comp = _gradual(method, "always", tmp_path, settings)
    assert [s["event"] for s in comp] == [s["event"] for s in dense] and len(dense) >= 2
    assert max(s["pruned_params_pct"] for s in dense) > 50
    for a, b in zip(dense, comp):
        assert b["pruned_params_pct"] == pytest.approx(a["pruned_params_pct"], abs=1e-3)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)
        for n, t in a["state_dict"].items():
            torch.testing.assert_close(b["state_dict"][n], t, rtol=1e-3, atol=1e-5, msg=n)


@pytest.mark.parametrize("kind", ["rewind", "reinit", "random"])
def test_every_retraining_gives_the_same_weights_compacted(kind):
    torch.manual_seed(0)
    model = build_model("lenet5", num_classes=10)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    mask = sparse_mask(model)
    out = {}
    for mode in ("never", "always"):
        t = pruning.retrain(kind, "lenet5", 10, mask, mnist_like(), dataclasses.replace(RECIPE, compact_training=mode),
                            seed=7, device="cpu", init_state=init)
        out[mode] = t
    assert out["always"].compaction.net is not None
    for (n, a), b in zip(out["never"].model.state_dict().items(), out["always"].model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=n)


def test_lobster_phases_compacted_give_the_same_snapshots():
    """LOBSTER from a sparse mask: its update reads the compacted path's gradients, and each
    pruning event recompacts (a learning rate cut at epoch 2 makes the plateaus)."""
    from sharpminima.lobster import Lobster, LobsterSettings

    out = {}
    for mode in ("never", "always"):
        torch.manual_seed(0)
        model = build_model("lenet5", num_classes=10)
        snaps = []
        recipe = dataclasses.replace(RECIPE, epochs=5, milestones=[2], gamma=0.01, compact_training=mode)
        lob = Lobster(LobsterSettings(lmbda=1e-2, twt=0.001, pwe=1, tolerance=0.0), on_snapshot=snaps.append)
        train(model, mnist_like(), recipe, seed=0, mask=sparse_mask(model), callbacks=[lob])
        out[mode] = snaps
    dense, comp = out["never"], out["always"]
    assert len(dense) == len(comp) >= 3 and dense[-1]["pruned_params_pct"] > 99
    for a, b in zip(dense, comp):
        assert b["pruned_params_pct"] == pytest.approx(a["pruned_params_pct"], abs=1e-3)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)
        for n, t in a["state_dict"].items():
            torch.testing.assert_close(b["state_dict"][n], t, rtol=1e-4, atol=1e-6, msg=n)


def test_lobster_threshold_trials_compacted_find_the_same_threshold():
    """LOBSTER's bisection evaluates each trial mask through its own compacted network (the
    first trial prunes every weight: constant units all the way); the threshold, the mask and
    the loss are those of the dense evaluation."""
    import copy

    from sharpminima.lobster import magnitude_threshold_bisection
    from sharpminima.training import Compaction, evaluate

    torch.manual_seed(0)
    d = mnist_like()
    mask = sparse_mask(build_model("lenet5", num_classes=10))
    model = train(build_model("lenet5", num_classes=10), d, dataclasses.replace(RECIPE, epochs=8, lr=0.1),
                  seed=0, mask=mask).model  # trained: pruning everything is infeasible
    out = {}
    for mode in ("never", "always"):
        m = copy.deepcopy(model)
        trainer = SimpleNamespace(model=m, device=torch.device("cpu"))
        comp, used = Compaction(mode, "test"), []

        def loss(net, trial, comp=comp, trainer=trainer, used=used):
            fwd = comp.evaluator_for(trainer, trial, d.val[0].shape[1:])
            used.append(fwd is not None)
            return evaluate(net, *d.val, forward=fwd)["loss"]

        out[mode] = (*magnitude_threshold_bisection(m, mask, loss, loss(m, mask), 0.05, 16), used)
    (T0, m0, l0, used0), (T1, m1, l1, used1) = out["never"], out["always"]
    assert not any(used0) and all(used1) and len(used1) > 10
    assert T1 == T0 and 0 < T0 and m1.kept == m0.kept < mask.kept
    assert all(torch.equal(m1[n], m0[n]) for n in m0)
    assert l1 == pytest.approx(l0, rel=1e-5)
