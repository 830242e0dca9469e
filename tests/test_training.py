"""The training engine: reproducibility, resume, divergence, masks under momentum + decay."""

import logging
from types import SimpleNamespace

import pytest
import torch

from sharpminima import optim
from sharpminima.masks import Mask
from sharpminima.models import build_model
from sharpminima.training import (TIMING_KEYS, Callback, DivergedError, Recipe, evaluate, resolve_device,
                                  seed_everything, train)

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
                 mask=mask, callbacks=callbacks)


def test_same_seed_same_numbers():
    a, b = run(seed=1), run(seed=1)
    strip = lambda h: [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in h]
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
    strip = lambda h: [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in h]
    assert strip(resumed.history) == strip(straight.history)
    sa, sb = resumed.model.state_dict(), straight.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_run_under_way_resumes_under_a_larger_budget_as_the_same_run(tmp_path, caplog):
    """Another epoch budget is the same run up to where both go (the schedule is the recipe's
    milestones): a run stopped after epoch 1 of 3 ends under a budget of 5 with the numbers of
    a fresh 5-epoch run. A checkpoint at the end of its budget (a finished run's) is not."""
    import dataclasses

    longer = dataclasses.replace(RECIPE, epochs=5)
    ckpt = tmp_path / "state.ckpt"
    with pytest.raises(KeyboardInterrupt):
        run(checkpoint=ckpt, callbacks=[Interrupt(at=2)])
    caplog.set_level(logging.INFO)
    resumed = run(checkpoint=ckpt, recipe=longer)
    assert "the budget moves from 3 to 5 epochs at epoch 1" in caplog.text
    strip = lambda h: [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in h]
    assert strip(resumed.history) == strip(run(recipe=longer).history)
    ended = tmp_path / "ended.ckpt"
    run(checkpoint=ended)  # all 3 epochs: its checkpoint is at the end of its budget
    t, lines = _logged_run(caplog, ended, recipe=longer)
    assert any("not resuming" in m and "the end of a budget" in m for m in lines)
    assert strip(t.history) == strip(resumed.history)
    past = tmp_path / "past.ckpt"
    with pytest.raises(KeyboardInterrupt):  # stopped after epoch 3 of 5
        run(checkpoint=past, recipe=longer, callbacks=[Interrupt(at=4)])
    t, lines = _logged_run(caplog, past, recipe=RECIPE)  # a budget of 3: the checkpoint is at its end
    assert any("the end of a budget" in m for m in lines) and len(t.history) == 3


def _logged_run(caplog, ckpt, recipe=RECIPE, fingerprint=None, stop_at=None):
    """A run and the messages it logged."""
    caplog.set_level(logging.INFO)
    caplog.clear()
    seed_everything(0)
    cbs = [Interrupt(at=stop_at)] if stop_at else []
    t = train(build_model("lenet300"), toy_data(), recipe, seed=0, device="cpu", checkpoint=ckpt,
              callbacks=cbs, fingerprint=fingerprint)
    return t, list(caplog.messages)


def test_a_checkpoint_of_another_run_is_never_resumed(tmp_path, caplog):
    """The stale checkpoint of a diverged run (lr too high) must not block the rerun with a
    lower rate, nor be mixed into it: the rerun starts over, naming the file and what changed,
    and ends with the numbers of a fresh run."""
    ckpt = tmp_path / "state.ckpt"
    with pytest.raises(DivergedError):
        _logged_run(caplog, ckpt, recipe=Recipe(epochs=3, batch_size=64, lr=1e6, momentum=0.9))
    assert not ckpt.exists()  # diverged at epoch 1: nothing saved
    with pytest.raises(KeyboardInterrupt):
        _logged_run(caplog, ckpt, recipe=Recipe(epochs=3, batch_size=64, lr=0.3), stop_at=2)
    assert ckpt.exists()
    t, lines = _logged_run(caplog, ckpt, recipe=RECIPE)
    said = "\n".join(lines)
    assert f"not resuming from {ckpt}" in said and "recipe" in said and "'lr': 0.3" in said
    fresh = run()
    assert [r["val_loss"] for r in t.history] == [r["val_loss"] for r in fresh.history]


def test_the_fingerprint_decides_what_resumes(tmp_path, caplog):
    """Same recipe and seed but other data settings (train_samples 12000 -> 6000, say): the
    fingerprint differs, so the epochs of the first run are not reused."""
    ckpt = tmp_path / "state.ckpt"
    a = {"settings": {"train_samples": 12000}, "files": {"split": "abc"}}
    b = {"settings": {"train_samples": 6000}, "files": {"split": "abc"}}
    with pytest.raises(KeyboardInterrupt):
        _logged_run(caplog, ckpt, fingerprint=a, stop_at=2)
    t, lines = _logged_run(caplog, ckpt, fingerprint=b)
    assert any("train_samples: 12000 -> 6000" in m for m in lines), lines
    assert not any("resumed" in m for m in lines)
    ckpt.unlink()  # as the caller does once its outputs are written
    with pytest.raises(KeyboardInterrupt):
        _logged_run(caplog, ckpt, fingerprint=b, stop_at=2)
    t, lines = _logged_run(caplog, ckpt, fingerprint=b)  # the same run: resumed
    assert any(f"resumed from {ckpt} after epoch 1" in m for m in lines), lines
    ckpt.write_bytes(b"not a checkpoint")  # unreadable: started over, not a traceback
    t, lines = _logged_run(caplog, ckpt, fingerprint=b)
    assert any("unreadable" in m for m in lines) and len(t.history) == RECIPE.epochs


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

    t = train(model, toy_data(), RECIPE, seed=0, mask=mask, callbacks=[Check()])
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


def test_adam_recipe_trains_with_adam_keeps_the_mask_and_resumes(tmp_path):
    """Frankle & Carbin's LeNet recipe is Adam: the optimizer is Adam (optim.Adam), a masked run
    keeps its pruned weights at 0, and an interrupted run resumes to the same numbers."""
    import dataclasses

    adam = Recipe(epochs=2, batch_size=64, lr=1.2e-3, optimizer="adam")
    torch.manual_seed(0)
    mask = Mask({n: torch.rand(p.shape) > 0.5 for n, p in build_model("lenet300").named_parameters()})
    t = run(recipe=adam, mask=mask)
    assert isinstance(t.optimizer, optim.Adam)
    assert t.history[-1]["train_loss"] < t.history[0]["train_loss"] < 2.3  # learns (chance: ln 10)
    for n, p in t.model.named_parameters():
        assert torch.all(p.detach()[~mask[n]] == 0.0), n
    ckpt = tmp_path / "a.ckpt"
    run(recipe=dataclasses.replace(adam, epochs=1), checkpoint=ckpt, mask=mask)
    resumed = run(recipe=adam, checkpoint=ckpt, mask=mask)
    for a, b in zip(t.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert isinstance(run(recipe=dataclasses.replace(adam, optimizer="sgd", epochs=1)).optimizer, optim.SGD)
    with pytest.raises(ValueError, match="adam takes no momentum"):
        Recipe(epochs=1, batch_size=2, lr=0.1, momentum=0.9, optimizer="adam")
    with pytest.raises(ValueError, match="optimizer: expected one of"):
        Recipe(epochs=1, batch_size=2, lr=0.1, optimizer="rmsprop")


def test_each_retraining_method_takes_its_own_recipe_else_the_panels():
    from sharpminima.settings import retrain_recipe

    dense, fc = {"epochs": 60, "batch_size": 100, "lr": 0.1}, {"epochs": 56, "batch_size": 60, "lr": 1.2e-3}
    assert retrain_recipe({"dense": dense}, "rewind") == dense  # Scratch-E
    assert retrain_recipe({"dense": dense, "retrain": fc}, "reinit") == fc
    per = {"dense": dense, "rewind": {"recipe": {**fc, "optimizer": "adam"}}, "reinit": None}
    assert retrain_recipe(per, "rewind")["optimizer"] == "adam"
    assert retrain_recipe(per, "reinit") == dense and retrain_recipe(per, "random") == dense


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
              callbacks=[rec, *callbacks], checkpoint=checkpoint, selection=selection)
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
              selection="best_val")
    with pytest.raises(ValueError, match="selection"):
        train(build_model("lenet300"), toy_data(), RECIPE, seed=0, selection="best")
    frozen = Recipe(epochs=3, batch_size=64, lr=0.0)  # the weights never move: three ties
    seed_everything(0)
    t = train(build_model("lenet300"), toy_data(), frozen, seed=0, selection="best_val")
    assert len({r["val_loss"] for r in t.history}) == 1
    assert t.selected_epoch == 1


def test_best_val_resumes_to_the_same_selection(tmp_path, caplog):
    ckpt = tmp_path / "state.ckpt"
    with pytest.raises(KeyboardInterrupt):
        selected_run("best_val", checkpoint=ckpt, callbacks=[Interrupt(at=4)])
    resumed, _ = selected_run("best_val", checkpoint=ckpt)
    straight, _ = selected_run("best_val")
    assert resumed.selected_epoch == straight.selected_epoch
    assert same_state(resumed.model.state_dict(), straight.model.state_dict())
    ckpt.unlink()
    with pytest.raises(KeyboardInterrupt):  # a checkpoint of the other rule is not resumed
        selected_run("best_val", checkpoint=ckpt, callbacks=[Interrupt(at=4)])
    caplog.set_level(logging.INFO)
    caplog.clear()
    seed_everything(0)
    train(build_model("lenet300"), toy_data(), BUMPY, seed=0, checkpoint=ckpt, selection="last")
    assert any("selection best_val -> last" in m for m in caplog.messages)


def test_outputs_are_atomic_fsynced_and_follow_the_umask(tmp_path, monkeypatch):
    """Results are readable by collaborators as the umask allows (0644 under 022, not the
    0600 of mkstemp), fsync'ed before the rename, and a failed write leaves nothing."""
    import os

    from sharpminima import provenance as P
    from sharpminima.data import save_split

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    old = os.umask(0o022)
    try:
        P.atomic_write_json(tmp_path / "m.json", {"a": 1})
        P.atomic_torch_save({"w": torch.zeros(2)}, tmp_path / "w.pt")
        save_split(tmp_path / "split.json", {"train": torch.arange(3), "val": torch.arange(3, 5)},
                   {"dataset": "mnist", "n_train": 5, "val_fraction": 0.4, "seed": 0})
        for f in ("m.json", "w.pt", "split.json"):
            assert (tmp_path / f).stat().st_mode & 0o777 == 0o644, f
        os.umask(0o077)
        P.atomic_write_text(tmp_path / "private.txt", "x")
        assert (tmp_path / "private.txt").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    assert len(synced) >= 4
    with pytest.raises(ZeroDivisionError):
        with P.atomic_path(tmp_path / "never.txt") as tmp:
            tmp.write_text("half")
            raise ZeroDivisionError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "private.txt", "split.json", "w.pt"]


def test_library_versions_are_the_installed_ones_whatever_was_imported():
    """The versions a result records come from the installed packages' metadata, so a job that
    never imported matplotlib records it all the same (sys.modules would not have it)."""
    import subprocess
    import sys
    from importlib import metadata

    from sharpminima.provenance import RECORDED_PACKAGES, library_versions

    versions = library_versions()
    assert set(versions) == {"python", *RECORDED_PACKAGES}
    assert versions["torch"] == metadata.version("torch")
    assert torch.__version__.startswith(versions["torch"])  # the build adds a label (+cu130)
    assert versions["numpy"] == metadata.version("numpy")
    code = ("import json, sys; from sharpminima.provenance import library_versions; "
            "print(json.dumps([library_versions(), 'matplotlib' in sys.modules]))")
    import json
    out, imported = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                              text=True, check=True).stdout)
    assert not imported and out == versions


def test_evaluate_runs_conv_nets_channels_last_and_hands_them_back_as_they_were():
    """evaluate() computes a standard-layout conv net in channels-last layout (the layout it
    trains in, ~2x faster on the CPU) and returns it in the standard layout, with the numbers
    of the plain forward pass up to fp32 summation order."""
    from sharpminima.models import build_model
    from sharpminima.training import evaluate

    torch.manual_seed(0)
    model = build_model("lenet5", num_classes=10)
    x, y = torch.rand(300, 1, 28, 28), torch.randint(0, 10, (300,))
    plain = evaluate(model, x, y, 100, forward=lambda xb: model(xb))  # a forward: no conversion
    ours = evaluate(model, x, y, 100)
    assert ours["loss"] == pytest.approx(plain["loss"], rel=1e-5) and ours["error"] == plain["error"]
    assert all(p.is_contiguous() for p in model.parameters())
    conv2 = model.conv2.weight
    model.to(memory_format=torch.channels_last)
    evaluate(model, x, y, 100)
    assert conv2.is_contiguous(memory_format=torch.channels_last) and not conv2.is_contiguous()
