"""The training engine: reproducibility, resume, divergence, masks under momentum + decay."""

from types import SimpleNamespace

import pytest
import torch

from sharpminima.masks import Mask
from sharpminima.models import build_model
from sharpminima.training import Callback, DivergedError, Recipe, evaluate, resolve_device, seed_everything, train

RECIPE = Recipe(epochs=3, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4, milestones=[2], gamma=0.1)


def toy_data(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 256, 1, 28, 28, generator=g)
    w = torch.randn(784, 10, generator=g)
    y = (x.flatten(1) @ w).argmax(1)  # a learnable rule
    return SimpleNamespace(train=(x[:n], y[:n]), val=(x[n : n + 128], y[n : n + 128]), test=(x[n + 128 :], y[n + 128 :]))


def run(seed=0, checkpoint=None, recipe=RECIPE, mask=None, callbacks=(), model_seed=0):
    seed_everything(model_seed)
    model = build_model("lenet300")
    return train(model, toy_data(), recipe, seed=seed, device="cpu", checkpoint=checkpoint,
                 mask=mask, callbacks=callbacks, log=lambda m: None)


def test_same_seed_same_numbers():
    a, b = run(seed=1), run(seed=1)
    strip = lambda h: [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in h]
    assert strip(a.history) == strip(b.history)
    c = run(seed=2)
    assert strip(a.history) != strip(c.history)


def test_learns_and_schedule_applies():
    t = run()
    h = t.history
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    assert [r["lr"] for r in h] == pytest.approx([0.05, 0.05, 0.005])
    assert {"train_error", "val_loss", "val_error", "test_loss", "test_error"} <= set(h[0])


class Interrupt(Callback):
    def __init__(self, at):
        self.at = at

    def after_epoch(self, trainer, record):
        if trainer.epoch == self.at:
            raise KeyboardInterrupt


def test_resume_after_interruption_gives_same_final_metrics(tmp_path):
    ckpt = tmp_path / "state.ckpt"
    with pytest.raises(KeyboardInterrupt):
        run(checkpoint=ckpt, callbacks=[Interrupt(at=2)])
    # the interrupt fires before epoch 2's checkpoint: the saved state is after epoch 1
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1
    resumed = run(checkpoint=ckpt)
    straight = run()
    strip = lambda h: [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in h]
    assert strip(resumed.history) == strip(straight.history)
    sa, sb = resumed.model.state_dict(), straight.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_refuses_other_settings(tmp_path):
    ckpt = tmp_path / "state.ckpt"
    run(checkpoint=ckpt, recipe=Recipe(epochs=1, batch_size=64, lr=0.05))
    with pytest.raises(ValueError, match="other settings"):
        run(checkpoint=ckpt, recipe=Recipe(epochs=1, batch_size=64, lr=0.1))


def test_nan_loss_names_the_epoch():
    with pytest.raises(DivergedError, match="epoch 1"):
        run(recipe=Recipe(epochs=2, batch_size=64, lr=1e6, momentum=0.9))


def test_mask_holds_after_steps_with_momentum_and_weight_decay():
    seed_everything(0)
    model = build_model("lenet300")
    mask = Mask.ones(model)
    g = torch.Generator().manual_seed(0)
    for k in mask:
        mask[k] = torch.rand(mask[k].shape, generator=g) > 0.7

    class Check(Callback):
        steps = 0

        def after_step(self, trainer):
            Check.steps += 1

    t = train(model, toy_data(), RECIPE, seed=0, mask=mask, callbacks=[Check()], log=lambda m: None)
    params = dict(t.model.named_parameters())
    for k, keep in mask.items():
        assert torch.all(params[k][~keep] == 0.0), k  # exactly zero, not small
        assert torch.any(params[k][keep] != 0.0)
    assert Check.steps == 3 * 8


def test_evaluate_matches_manual():
    d = toy_data()
    seed_everything(0)
    model = build_model("lenet300")
    r = evaluate(model, *d.test, batch_size=50)
    with torch.no_grad():
        out = model(d.test[0])
    assert r["loss"] == pytest.approx(torch.nn.functional.cross_entropy(out, d.test[1]).item(), rel=1e-5)
    assert r["error"] == pytest.approx(100 * (out.argmax(1) != d.test[1]).float().mean().item())


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_recipe_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown key"):
        Recipe.from_dict({"epochs": 1, "batch_size": 2, "lr": 0.1, "lrr": 3}, where="panels.x.dense")


# -- the selection rule ------------------------------------------------------------------

class Recorder(Callback):
    """Copies the weights of every epoch, after the epoch's evaluation."""

    def __init__(self):
        self.states = []

    def after_epoch(self, trainer, record):
        self.states.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# lr high enough that the validation loss goes up and down, so best and last differ
BUMPY = Recipe(epochs=6, batch_size=32, lr=0.3, momentum=0.9)


def selected_run(selection, recipe=BUMPY, checkpoint=None, callbacks=()):
    rec = Recorder()
    seed_everything(0)
    t = train(build_model("lenet300"), toy_data(), recipe, seed=0, device="cpu",
              callbacks=[rec, *callbacks], checkpoint=checkpoint, selection=selection,
              log=lambda m: None)
    return t, rec


def first_argmin(values):
    return min(range(len(values)), key=lambda i: (values[i], i))


def test_best_val_returns_the_lowest_validation_loss_epoch():
    t, rec = selected_run("best_val")
    val = [r["val_loss"] for r in t.history]
    best = first_argmin(val)
    assert best != len(val) - 1, "the test needs a run whose last epoch is not its best"
    assert t.selected_epoch == best + 1
    assert same_state(t.model.state_dict(), rec.states[best])
    assert not same_state(t.model.state_dict(), rec.states[-1])


def test_last_returns_the_last_epoch():
    t, rec = selected_run("last")
    assert t.selected_epoch == len(t.history)
    assert same_state(t.model.state_dict(), rec.states[-1])


def test_best_val_ties_keep_the_earliest_and_the_rule_is_validated():
    seed_everything(0)
    d = toy_data()
    d.val = (d.val[0][:0], d.val[1][:0])
    with pytest.raises(ValueError, match="validation set"):
        train(build_model("lenet300"), d, Recipe(epochs=1, batch_size=64, lr=0.05), seed=0,
              selection="best_val", log=lambda m: None)
    with pytest.raises(ValueError, match="selection"):
        train(build_model("lenet300"), toy_data(), RECIPE, seed=0, selection="best", log=lambda m: None)
    frozen = Recipe(epochs=3, batch_size=64, lr=0.0)  # the weights never move: three ties
    seed_everything(0)
    t = train(build_model("lenet300"), toy_data(), frozen, seed=0, selection="best_val",
              log=lambda m: None)
    assert len({r["val_loss"] for r in t.history}) == 1
    assert t.selected_epoch == 1


def test_best_val_resumes_to_the_same_selection(tmp_path):
    ckpt = tmp_path / "state.ckpt"
    with pytest.raises(KeyboardInterrupt):
        selected_run("best_val", checkpoint=ckpt, callbacks=[Interrupt(at=4)])
    resumed, _ = selected_run("best_val", checkpoint=ckpt)
    straight, _ = selected_run("best_val")
    assert resumed.selected_epoch == straight.selected_epoch
    assert same_state(resumed.model.state_dict(), straight.model.state_dict())
    with pytest.raises(ValueError, match="other settings"):  # a checkpoint of the other rule
        selected_run("last", checkpoint=ckpt)
