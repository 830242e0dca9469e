"""LOBSTER: the update rule, the threshold bisection, the plateau logic, events and resume."""

import logging
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from sharpminima.lobster import (
    PACE_EVENTS, SNAPSHOT_KEYS, Lobster, LobsterSettings, first_event, lobster_update_,
    magnitude_threshold_bisection, projected_stop, pruning_events, run_lobster,
)
from sharpminima.masks import Mask, prunable_parameters
from sharpminima.models import build_model, register
from sharpminima.training import TIMING_KEYS, Callback, Recipe, Trainer, evaluate, seed_everything


@register("_toy_mlp_tests")
def toy_mlp(num_classes: int = 4) -> nn.Module:
    """A small MLP with a BatchNorm layer (its weights, biases and buffers take part)."""
    return nn.Sequential(nn.Linear(32, 64), nn.BatchNorm1d(64), nn.ReLU(),
                         nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, num_classes))


def toy_data(n=2048, seed=0, dim=32, classes=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 1024, dim, generator=g)
    w = torch.randn(dim, classes, generator=g)
    y = (x @ w).argmax(1)  # a learnable rule that generalises
    return SimpleNamespace(train=(x[:n], y[:n]), val=(x[n : n + 512], y[n : n + 512]),
                           test=(x[n + 512 :], y[n + 512 :]), num_classes=classes)


def new_model(seed=0):
    seed_everything(seed)
    return build_model("_toy_mlp_tests", num_classes=4)


RECIPE = Recipe(epochs=16, batch_size=64, lr=0.05, momentum=0.9)
SETTINGS = LobsterSettings(lmbda=1e-3, twt=0.05, pwe=2, bisection_steps=12)


def strip(h):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in h]


# -- the update rule -----------------------------------------------------------------------


def test_update_matches_hand_computation():
    w = torch.tensor([[0.5, -2.0, 0.0], [1.0, 3.0, -0.25]])
    g = torch.tensor([[0.2, -0.5, 0.7], [1.5, -1.0, 0.0]])
    b = torch.tensor([0.4, -0.8])
    lobster_update_([w, b], [g.clone(), None], 0.1)
    # Sbar = max(0, 1-|g|) = [[.8, .5, .3], [0, 0, 1]]; w - 0.1 * w * Sbar
    expected = torch.tensor([[0.46, -1.9, 0.0], [1.0, 3.0, -0.225]])
    assert torch.allclose(w, expected, atol=1e-7, rtol=0)
    assert w[1, 0] == 1.0 and w[1, 1] == 3.0  # |g| >= 1: untouched, exactly
    assert w[0, 2] == 0.0  # zero stays exactly zero
    assert torch.allclose(b, torch.tensor([0.36, -0.72]))  # grad None = 0: full shrink
    assert torch.equal(g, torch.tensor([[0.2, -0.5, 0.7], [1.5, -1.0, 0.0]]))  # grads untouched


def test_update_inside_training_step_and_pruned_stay_zero():
    """One engine step with LOBSTER: w_after = sgd(w) - lmbda * sgd(w) * Sbar(grad), and the
    masked entries are exactly 0."""
    d = toy_data()
    model = new_model()
    mask = Mask.ones(model)
    g = torch.Generator().manual_seed(1)
    for k in mask:
        mask[k] = torch.rand(mask[k].shape, generator=g) > 0.5
    lob = Lobster(LobsterSettings(lmbda=0.3, twt=0.05, pwe=5))
    trainer = Trainer(model, d, Recipe(epochs=1, batch_size=64, lr=0.1), seed=0, device="cpu",
                      mask=mask, callbacks=[lob])
    mask.apply(model)
    params = prunable_parameters(model)
    seen = {}

    class Spy(Callback):  # runs between the optimizer step and LOBSTER
        def after_step(self, tr):
            seen["w"] = {n: p.detach().clone() for n, p in params.items()}
            seen["g"] = {n: p.grad.clone() for n, p in params.items()}

    trainer.callbacks.insert(0, Spy())
    model.train()
    x, y = d.train
    trainer.optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(x[:64]), y[:64])
    loss.backward()
    mask.apply_to_grads(model)
    trainer.optimizer.step()
    for cb in trainer.callbacks:
        cb.after_step(trainer)
    mask.apply(model)
    for n, p in params.items():
        w, gr = seen["w"][n], seen["g"][n]
        expected = w - 0.3 * w * (1 - gr.abs()).clamp_min(0)
        assert torch.allclose(p.detach(), expected, atol=1e-7), n
        assert torch.all(p.detach()[~mask[n]] == 0.0), n
    assert any(bool((seen["g"][n].abs() > 0).any()) for n in params)


# -- the bisection -------------------------------------------------------------------------


def test_bisection_synthetic_exact_answer():
    """|w| = 1..10; loss = 1 + (#zeros)/10; TWT 0.3 allows 3 zeros: the supremum of feasible
    T is 4 (|w| < 4 prunes 1, 2, 3), feasible itself."""
    model = nn.Sequential(nn.Linear(5, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1., -2, 3, -4, 5], [-6, 7, -8, 9, -10]]))

    def loss_fn(m, trial=None):
        return 1.0 + float((m[0].weight == 0).sum()) / 10

    steps = 20
    T, new_mask, loss = magnitude_threshold_bisection(model, None, loss_fn, 1.0, 0.3, steps)
    assert 4 - 10 / 2**steps <= T <= 4
    assert loss == pytest.approx(1.3) and loss == loss_fn(model)
    assert new_mask["0.weight"].sum() == 7
    assert torch.equal(model[0].weight == 0, ~new_mask["0.weight"])
    # an already pruned entry stays pruned and counts as a zero from the start
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1., -2, 3, -4, 5], [-6, 7, -8, 9, -10]]))
    pre = Mask({"0.weight": torch.ones(2, 5, dtype=torch.bool)})
    pre["0.weight"][1, 4] = False  # the largest one
    pre.apply(model)
    T, new_mask, loss = magnitude_threshold_bisection(model, pre, loss_fn, 1.0, 0.3, steps)
    assert 3 - 9 / 2**steps <= T <= 3  # only 2 more may go
    assert not new_mask["0.weight"][1, 4] and int(new_mask["0.weight"].sum()) == 7


def test_bisection_respects_twt_and_is_maximal():
    d = toy_data()
    model = new_model()
    from sharpminima.training import train

    train(model, d, Recipe(epochs=2, batch_size=64, lr=0.05, momentum=0.9), seed=0)
    ev = lambda m, trial=None: evaluate(m, *d.val)["loss"]  # noqa: E731
    base, twt, steps = ev(model), 0.05, 16
    orig = {n: p.detach().clone() for n, p in prunable_parameters(model).items()}
    mask0 = Mask({n: w.abs() > 0.02 for n, w in orig.items()})  # some already pruned
    mask0.apply(model)
    base = ev(model)
    maxw = max(float((w.abs() * mask0[n]).max()) for n, w in orig.items())
    T, new_mask, loss = magnitude_threshold_bisection(model, mask0, ev, base, twt, steps)
    assert 0 < T < maxw
    assert loss <= base * (1 + twt)
    assert loss == ev(model)  # the model holds the pruned weights
    for n, p in prunable_parameters(model).items():
        keep = new_mask[n]
        assert not torch.any(keep & ~mask0[n])  # pruned stays pruned
        assert torch.equal(keep, mask0[n] & (orig[n].abs() >= T))
        assert torch.equal(p.detach(), orig[n] * keep)
    assert new_mask.kept < mask0.kept
    # maximal: one bisection resolution more breaks the bound
    T2 = T + maxw / 2**steps
    with torch.no_grad():
        for n, p in prunable_parameters(model).items():
            p.copy_(orig[n] * (mask0[n] & (orig[n].abs() >= T2)))
    assert ev(model) > base * (1 + twt)


# -- the plateau logic ---------------------------------------------------------------------


def test_plateau_rule_best_weights_and_restore():
    """Good epoch: val < best*(1.01), resets the counter; best (and its weights) only on a
    strict improvement; pwe consecutive bad epochs restore the best weights and prune."""
    d = toy_data()
    model = new_model()
    snaps = []
    lob = Lobster(LobsterSettings(lmbda=0.0, twt=0.05, pwe=2), on_snapshot=snaps.append)
    tr = Trainer(model, d, Recipe(epochs=100, batch_size=64, lr=0.1, momentum=0.9), seed=0,
                 device="cpu", callbacks=[lob])
    lob.on_start(tr)
    nn.functional.cross_entropy(model(d.train[0][:64]), d.train[1][:64]).backward()
    tr.optimizer.step()  # momentum buffers now exist
    assert len(tr.optimizer.state) > 0
    marker = model[5].bias

    def epoch(val, mark):
        with torch.no_grad():
            marker.fill_(mark)
        tr.epoch += 1
        rec = {"val_loss": val, "val_error": 50.0}
        lob.after_epoch(tr, rec)
        return rec

    epoch(1.0, 1.0)
    assert (lob.best, lob.bad, lob.best_epoch) == (1.0, 0, 1)
    epoch(1.005, 2.0)  # within tolerance: good, but not a new best
    assert (lob.best, lob.bad, lob.best_epoch) == (1.0, 0, 1)
    epoch(1.02, 3.0)  # bad
    assert lob.bad == 1
    epoch(0.9, 4.0)  # new best
    assert (lob.best, lob.bad, lob.best_epoch) == (0.9, 0, 4)
    epoch(0.95, 5.0)
    assert lob.bad == 1 and not snaps
    rec = epoch(0.96, 6.0)  # second consecutive bad: plateau
    assert len(snaps) == 1 and snaps[0]["event"] == 0 and snaps[0]["epoch"] == 4
    assert snaps[0]["val_loss"] == 0.9 and snaps[0]["end"] == "plateau"
    assert torch.all(snaps[0]["state_dict"]["5.bias"] == 4.0)  # the best weights
    assert lob.event == 1 and lob.bad == 0 and rec["lobster_event"] == 1
    # the model now holds the best weights, pruned
    surv = marker.detach()[tr.mask["5.bias"]]
    assert torch.all(surv == 4.0)
    assert tr.mask.kept < tr.mask.total
    # the new phase starts from the pruned weights, with their validation loss as best
    assert lob.best == pytest.approx(evaluate(model, *d.val)["loss"])
    assert lob.best == lob.prune_val_loss
    assert len(tr.optimizer.state) == 0  # momentum reset at the event


# -- whole runs ----------------------------------------------------------------------------


class Interrupt(Callback):
    def __init__(self, at):
        self.at = at

    def after_epoch(self, trainer, record):
        if trainer.epoch == self.at:
            raise KeyboardInterrupt


def lobster_run(checkpoint=None, callbacks=(), settings=SETTINGS, recipe=RECIPE):
    snaps = []
    model = new_model()
    tr = run_lobster(model, toy_data(), recipe, settings, seed=0, device="cpu",
                     checkpoint=checkpoint, on_snapshot=snaps.append,
                     callbacks=callbacks)
    return tr, snaps


@pytest.fixture(scope="module")
def straight():
    return lobster_run()


def test_run_produces_events_with_consistent_masks(straight):
    tr, snaps = straight
    assert len(snaps) >= 3  # the dense phase + at least 2 pruning events
    assert [s["event"] for s in snaps] == list(range(len(snaps)))
    assert all(set(SNAPSHOT_KEYS) <= set(s) for s in snaps)
    assert snaps[0]["threshold"] is None and snaps[0]["pruned_params_pct"] < 1.0
    assert snaps[-1]["end"] == "budget" and snaps[-1]["final_epoch"] == RECIPE.epochs
    pct = [s["pruned_params_pct"] for s in snaps]
    assert all(a <= b for a, b in zip(pct, pct[1:])) and pct[-1] > pct[0]
    for prev, s in zip(snaps, snaps[1:]):
        assert s["threshold"] > 0 and s["newly_pruned"] > 0
        assert s["prune_val_loss"] <= prev["val_loss"] * (1 + SETTINGS.twt) * (1 + 1e-6)
        for n, keep in s["mask"].items():
            assert not torch.any(keep & ~prev["mask"][n])  # pruned stays pruned
    for s in snaps:
        assert s["phase_start_epoch"] <= s["epoch"] <= s["final_epoch"]
        assert s["mask_pruned_pct"] <= s["pruned_params_pct"] + 1e-9
        for n, keep in s["mask"].items():
            assert torch.all(s["state_dict"][n][~keep] == 0.0), n  # support within the mask
    # each snapshot's weights are the ones its val_loss was measured on
    d = toy_data()
    for s in snaps:
        m = new_model()
        m.load_state_dict(s["state_dict"])
        v = evaluate(m, *d.val)
        assert v["loss"] == pytest.approx(s["val_loss"], rel=1e-6)
        assert v["error"] == pytest.approx(s["val_error"])
    assert snaps[-1]["epoch"] < RECIPE.epochs  # the last phase's best, not the last epoch
    assert not torch.equal(snaps[-1]["state_dict"]["0.weight"], tr.model.state_dict()["0.weight"])
    # pruned entries stay exactly zero in the final weights, and every epoch after an event
    params = prunable_parameters(tr.model)
    for n, keep in tr.mask.items():
        assert torch.all(params[n].detach()[~keep] == 0.0)
    assert all(torch.equal(tr.mask[n].cpu(), snaps[-1]["mask"][n]) for n in tr.mask)
    rec_pct = [r["pruned_params_pct"] for r in tr.history if "pruned_params_pct" in r]
    assert len(rec_pct) == len(snaps) - 1 and rec_pct == sorted(rec_pct)
    assert tr.lobster.events == [{k: v for k, v in s.items() if k not in ("state_dict", "mask")}
                                 for s in snaps]


def test_resume_gives_identical_events_and_weights(tmp_path, straight):
    tr0, snaps0 = straight
    ckpt = tmp_path / "lobster.ckpt"
    # interrupt so that the checkpoint is taken mid-phase with a bad epoch pending, after
    # events 0 and 1 are out: the resumed run must carry best weights and counter over
    e = next(r["epoch"] for r in tr0.history if r["epoch"] > snaps0[1]["final_epoch"]
             and r["lobster_bad_epochs"] >= 1 and "lobster_event" not in r)
    at = e + 1
    snaps_a = []
    model = new_model()
    with pytest.raises(KeyboardInterrupt):
        run_lobster(model, toy_data(), RECIPE, SETTINGS, seed=0, checkpoint=ckpt,
                    on_snapshot=snaps_a.append, callbacks=[Interrupt(at=at)])
    assert 2 <= len(snaps_a) < len(snaps0)
    # the engine matches callback states by position: resume with the same callback list
    tr, snaps_b = lobster_run(checkpoint=ckpt, callbacks=[Interrupt(at=-1)])
    snaps = snaps_a + snaps_b
    assert [s["event"] for s in snaps] == [s["event"] for s in snaps0]  # none twice, none lost
    for a, b in zip(snaps, snaps0):
        assert {k: v for k, v in a.items() if k not in ("state_dict", "mask")} == \
               {k: v for k, v in b.items() if k not in ("state_dict", "mask")}
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
        assert all(torch.equal(a["mask"][k], b["mask"][k]) for k in a["mask"])
    assert strip(tr.history) == strip(tr0.history)
    sa, sb = tr.model.state_dict(), tr0.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert all(torch.equal(tr.initial_state[k], tr0.initial_state[k]) for k in sa)


def test_initial_state_is_the_seeded_init():
    ref = {k: v.clone() for k, v in new_model(7).state_dict().items()}
    got = {}
    tr = run_lobster("_toy_mlp_tests", toy_data(), Recipe(epochs=1, batch_size=128, lr=0.05),
                     SETTINGS, seed=7, on_init=got.update)
    assert all(torch.equal(ref[k], tr.initial_state[k]) for k in ref)
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert not torch.equal(tr.model.state_dict()["0.weight"], ref["0.weight"])


def test_max_events_and_stop_at_sparsity_end_the_run():
    s = LobsterSettings(lmbda=1e-3, twt=0.05, pwe=2, bisection_steps=12, max_events=1)
    tr, snaps = lobster_run(settings=s, recipe=Recipe(epochs=40, batch_size=64, lr=0.05, momentum=0.9))
    assert [x["event"] for x in snaps] == [0, 1] and snaps[-1]["end"] == "max_events"
    assert tr.stop and tr.epoch < 40
    target = snaps[1]["pruned_params_pct"] * 0.5
    s2 = LobsterSettings(lmbda=1e-3, twt=0.05, pwe=2, bisection_steps=12, stop_at_sparsity=target)
    tr2, snaps2 = lobster_run(settings=s2, recipe=Recipe(epochs=40, batch_size=64, lr=0.05, momentum=0.9))
    assert [x["event"] for x in snaps2] == [0, 1] and snaps2[-1]["end"] == "stop_at_sparsity"


def test_first_event_under_each_split_is_the_first_event_of_a_run_measuring_there(straight):
    """From a run's event-0 weights, the search on the validation loss lands where that run's
    first event did, the one on the training loss where a twt_split: train run's did (the
    dense phase is the same run's); the paper's point is pruned by magnitude to that fraction."""
    import dataclasses

    _, snaps = straight
    _, snaps_train = lobster_run(settings=dataclasses.replace(SETTINGS, twt_split="train"))
    assert torch.equal(snaps_train[0]["state_dict"]["0.weight"], snaps[0]["state_dict"]["0.weight"])
    model = new_model()
    model.load_state_dict(snaps[0]["state_dict"])
    rows = first_event(model, toy_data(), SETTINGS, at_pct=[30.0])
    assert [r["where"] for r in rows] == ["twt val", "twt train", "at 30"]
    assert rows[0]["pruned_params_pct"] == pytest.approx(snaps[1]["pruned_params_pct"], abs=0.1)
    assert rows[1]["pruned_params_pct"] == pytest.approx(snaps_train[1]["pruned_params_pct"], abs=0.1)
    assert rows[0]["pruned_params_pct"] != pytest.approx(rows[1]["pruned_params_pct"], abs=1.0)
    assert 0 < rows[0]["val_loss_rise_pct"] <= 100 * SETTINGS.twt + 1e-6
    assert 0 < rows[1]["train_loss_rise_pct"] <= 100 * SETTINGS.twt + 1e-6
    assert rows[2]["pruned_params_pct"] == pytest.approx(30.0, abs=0.1)
    assert all(torch.equal(v, snaps[0]["state_dict"][k]) for k, v in model.state_dict().items())  # restored


def test_projected_stop_extends_the_pace_of_the_last_events():
    halving = [(10, 50.0), (20, 75.0), (30, 87.5), (40, 93.75)]  # the kept half every 10 epochs
    assert projected_stop(halving, 100 - 100 / 128) == pytest.approx(70.0)  # 3 halvings on
    assert projected_stop([(0, 1.0)] + halving, 100 - 100 / 128) == pytest.approx(70.0)  # the last events' pace
    assert projected_stop(halving[:PACE_EVENTS], 99.0) is None  # too few events for a pace
    assert projected_stop(halving, 90.0) == 40.0  # already past the stop


def test_a_run_with_a_stop_logs_where_the_pace_of_its_events_puts_it(caplog):
    s = LobsterSettings(lmbda=1e-3, twt=0.05, pwe=2, bisection_steps=12, stop_at_sparsity=99.9)
    with caplog.at_level(logging.INFO, logger="sharpminima.lobster"):
        tr, _ = lobster_run(settings=s, recipe=Recipe(epochs=20, batch_size=64, lr=0.05, momentum=0.9))
    ev = pruning_events(tr.history)
    assert len(ev) > PACE_EVENTS and ev == sorted(ev)
    lines = [r.getMessage() for r in caplog.records if " at epoch " in r.getMessage() and "T=" in r.getMessage()]
    assert len(lines) == len(ev)
    for k, line in enumerate(lines, 1):
        at = projected_stop(ev[:k], 99.9)
        assert (at is None) == (k <= PACE_EVENTS)
        assert line.startswith(f"[lobster] event {k} at epoch {ev[k - 1][0]}:")
        assert ("at the pace of the last" in line) == (at is not None)
        assert at is None or line.endswith(f"; 99.9 % at epoch ~{at:.0f} at the pace of the last {PACE_EVENTS} events")


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path, caplog):
    """Other LOBSTER hyperparameters: the old state is not mixed in; the run starts over,
    saying which file and which setting, and equals a fresh run."""
    ckpt = tmp_path / "l.ckpt"
    r = Recipe(epochs=1, batch_size=128, lr=0.05)
    lobster_run(checkpoint=ckpt, recipe=r)
    other = LobsterSettings(lmbda=2e-3, twt=0.05, pwe=2, bisection_steps=12)
    caplog.set_level(logging.INFO)
    model = new_model()
    tr = run_lobster(model, toy_data(), r, other, seed=0, device="cpu", checkpoint=ckpt)
    lines = caplog.messages
    assert any(f"not resuming from {ckpt}" in m and "lobster" in m and "lmbda" in m for m in lines), lines
    fresh, _ = lobster_run(recipe=r, settings=other)
    assert tr.history[-1]["val_loss"] == fresh.history[-1]["val_loss"]


def test_settings_validation():
    with pytest.raises(ValueError, match="unknown key"):
        LobsterSettings.from_dict({"lmbda": 1e-4, "twt": 0.05, "pwe": 20, "pwee": 3})
    with pytest.raises(ValueError, match="pwe"):
        LobsterSettings(lmbda=1e-4, twt=0.05, pwe=0)
    assert LobsterSettings.from_dict({"lmbda": 1e-4, "twt": 0.05, "pwe": 20}).tolerance == 0.01


@pytest.mark.parametrize("split", ["val", "train"])
def test_the_worsening_is_measured_on_the_twt_split(monkeypatch, split):
    """``twt_split``: every loss the threshold's bisection compares (the base and each trial)
    is over that split; the recorded ``prune_val_loss`` stays the validation loss of the
    pruned weights either way; the estimate costs the bisection's passes on that split."""
    import sharpminima.lobster as lobster

    sizes, real = [], lobster.evaluate

    def spy(m, x, y, *a, **k):
        if "forward" in k:  # the bisection's losses (the epochs' evaluations pass no forward)
            sizes.append(len(x))
        return real(m, x, y, *a, **k)

    monkeypatch.setattr(lobster, "evaluate", spy)
    s = LobsterSettings(lmbda=1e-3, twt=0.05, pwe=2, bisection_steps=6, max_events=1, twt_split=split)
    _, snaps = lobster_run(settings=s)
    d = toy_data()
    assert len(snaps) == 2 and sizes and set(sizes) == {len(getattr(d, split)[0])}
    assert len(sizes) == s.bisection_steps + 2  # the base, T = max|w|, the halvings
    pruned = new_model()
    pruned.load_state_dict(snaps[0]["state_dict"])
    for n, p in prunable_parameters(pruned).items():
        p.data.mul_(snaps[1]["mask"][n].to(p.dtype))
    assert snaps[1]["prune_val_loss"] == pytest.approx(evaluate(pruned, *d.val)["loss"], rel=1e-5)
    base = evaluate(_loaded(snaps[0]), *getattr(d, split))["loss"]
    assert evaluate(pruned, *getattr(d, split))["loss"] <= base * (1 + s.twt) * (1 + 1e-6)
    (stretch,) = lobster.work(s, 100)
    assert (stretch.val_passes, stretch.train_passes)[split == "train"] == 33 * (s.bisection_steps + 2)


def _loaded(snap):
    m = new_model()
    m.load_state_dict(snap["state_dict"])
    return m


def test_a_checkpoint_from_before_a_setting_existed_resumes_with_its_default(tmp_path):
    lob = Lobster(SETTINGS)
    state = lob.state_dict()
    del state["settings"]["twt_split"]
    Lobster(SETTINGS).load_state_dict(state)  # read as the default, "val"
    with pytest.raises(ValueError, match="other LOBSTER settings"):
        Lobster(LobsterSettings(**{**SETTINGS.to_dict(), "twt_split": "train"})).load_state_dict(state)


def test_authors_reset_mode_never_snapshots_unretrained_weights():
    """best_from_pruned=False (the authors' reset of best to +inf): the first epoch after a
    pruning event always becomes the phase's best, so a snapshot of event k >= 1 comes from
    a trained epoch, never from the freshly pruned weights."""
    s = LobsterSettings(lmbda=1e-3, twt=0.05, pwe=2, bisection_steps=12, best_from_pruned=False)
    tr, snaps = lobster_run(settings=s)
    assert len(snaps) >= 3
    for x in snaps[1:]:
        assert x["epoch"] > x["phase_start_epoch"]
    assert all(r["lobster_bad_epochs"] == 0 for r in tr.history
               if any(r["epoch"] == x["phase_start_epoch"] + 1 for x in snaps[1:]))


def test_a_diverging_lobster_run_names_the_epoch(tmp_path):
    from sharpminima.training import DivergedError

    wild = Recipe(epochs=3, batch_size=128, lr=1e8, momentum=0.9)
    with pytest.raises(DivergedError, match="epoch 1"):
        lobster_run(checkpoint=tmp_path / "l.ckpt", recipe=wild)
    assert not (tmp_path / "l.ckpt").exists()  # nothing of the diverged run to resume
