"""The gradual methods beyond LOBSTER: IMP's rounds and rewinding, GMP's cubic schedule, the
registry and the snapshot choice they share."""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from sharpminima import gmp, imp
from sharpminima.gradual import GRADUAL_METHODS, load
from sharpminima.masks import Mask, prunable_parameters
from sharpminima.models import build_model, register
from sharpminima.pruning import select_snapshots
from sharpminima.training import Recipe, seed_everything


@register("_toy_mlp_gradual")
def toy_mlp(num_classes: int = 4) -> nn.Module:
    return nn.Sequential(nn.Linear(16, 48), nn.ReLU(), nn.Linear(48, 24), nn.ReLU(),
                         nn.Linear(24, num_classes))


def toy_data(n=512, dim=16, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 256, dim, generator=g)
    y = (x @ torch.randn(dim, classes, generator=g)).argmax(1)
    return SimpleNamespace(train=(x[:n], y[:n]), val=(x[n : n + 128], y[n : n + 128]),
                           test=(x[n + 128 :], y[n + 128 :]), num_classes=classes)


def new_model(seed=0):
    seed_everything(seed)
    return build_model("_toy_mlp_gradual", num_classes=4)


def total_prunable(model):
    return sum(p.numel() for p in prunable_parameters(model).values())


def run(module, settings, recipe, tmp_path, targets, selection="last", done=()):
    snaps, inits = [], []
    out = module.run(new_model(), toy_data(), recipe, settings, seed=0, device="cpu",
                     checkpoint=tmp_path / "train_state.ckpt", on_snapshot=snaps.append,
                     on_init=inits.append, targets=targets, selection=selection, done=done)
    return out, snaps, inits


def test_the_registry_lists_every_method_and_each_loads():
    assert set(GRADUAL_METHODS) == {"lobster", "imp", "gmp"}
    for name in GRADUAL_METHODS:
        module, settings = load(name)
        assert callable(module.run) and hasattr(settings, "from_dict")
    with pytest.raises(ValueError, match="unknown gradual method 'snip'"):
        load("snip")


# -- IMP ---------------------------------------------------------------------------------


def test_imp_prunes_the_fraction_of_what_remains_each_round_and_stops_past_the_target(tmp_path):
    s = imp.IMPSettings(fraction=0.2)
    out, snaps, inits = run(imp, s, Recipe(epochs=1, batch_size=64, lr=0.05), tmp_path, [40, 60])
    total = total_prunable(new_model())
    # 60 % needs 1 - 0.8^r >= 0.6: r = 5 (67.2 %); rounds 0..5
    assert imp.rounds_to_reach(0.2, 60) == 5 and len(snaps) == 6
    for r, snap in enumerate(snaps):
        expected = round((1 - 0.8 ** r) * total)
        assert snap["event"] == r
        assert snap["pruned_params"] == expected, r
        assert snap["mask_pruned_pct"] == pytest.approx(100.0 * expected / total)
    # the masks only shrink, and each round prunes the smallest magnitudes the last one ended with
    for prev, cur in zip(snaps[1:], snaps[2:]):
        for n, keep in cur["mask"].items():
            assert not (keep & ~prev["mask"][n]).any()
        w = torch.cat([prev["state_dict"][n].flatten().abs() for n in cur["mask"]])
        was = torch.cat([prev["mask"][n].flatten() for n in cur["mask"]])
        now = torch.cat([cur["mask"][n].flatten() for n in cur["mask"]])
        newly = was & ~now
        assert w[newly].max() <= w[now].min()
    assert out.events[-1]["end"] == "target" and len(inits) == 1
    assert [e["event"] for e in out.events] == list(range(6))


def test_imp_rewinds_the_survivors_to_the_initialisation(tmp_path):
    # lr 0: a round's trained weights are its starting point, so each snapshot shows where
    # the round started: the initial weights under its mask
    s = imp.IMPSettings(fraction=0.5)
    _, snaps, inits = run(imp, s, Recipe(epochs=1, batch_size=64, lr=0.0), tmp_path, [70])
    init = new_model().state_dict()
    assert all(torch.equal(inits[0][k], init[k]) for k in init)
    for snap in snaps[1:]:
        for n, keep in snap["mask"].items():
            assert torch.equal(snap["state_dict"][n], init[n] * keep)


def test_imp_late_rewinding_resets_to_the_weights_of_epoch_k(tmp_path):
    s = imp.IMPSettings(fraction=0.5, rewind_epoch=1)
    _, snaps, inits = run(imp, s, Recipe(epochs=2, batch_size=64, lr=0.05), tmp_path, [50])
    init = new_model().state_dict()
    rewind = inits[0]
    assert not torch.equal(rewind["0.weight"], init["0.weight"])  # trained for one epoch
    assert not torch.equal(rewind["0.weight"], snaps[0]["state_dict"]["0.weight"])  # not epoch 2
    assert torch.equal(torch.load(tmp_path / "rewind_point.pt")["0.weight"], rewind["0.weight"])
    # round 1 again from the kept rewind point, with lr 0: it ends where it started
    done = [{**snaps[0], "mask": snaps[0]["mask"].state_dict()}]
    _, again, _ = run(imp, s, Recipe(epochs=2, batch_size=64, lr=0.0), tmp_path, [50], done=done)
    assert [x["event"] for x in again] == [1]
    for n, keep in again[0]["mask"].items():
        assert torch.equal(again[0]["state_dict"][n], rewind[n] * keep)


def test_imp_resumes_after_its_finished_rounds(tmp_path):
    s = imp.IMPSettings(fraction=0.5)
    recipe = Recipe(epochs=1, batch_size=64, lr=0.05)
    _, full, _ = run(imp, s, recipe, tmp_path / "a", [80])
    done = [{**full[0], "mask": full[0]["mask"].state_dict()},
            {**full[1], "mask": full[1]["mask"].state_dict()}]
    out, rest, inits = run(imp, s, recipe, tmp_path / "b", [80], done=done)
    assert [x["event"] for x in rest] == [2, 3]
    assert inits == []  # the rewind point was written by the first part of the run
    for a, b in zip(full[2:], rest):
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert [e["event"] for e in out.events] == [0, 1, 2, 3]


def test_imp_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="imp.fraction"):
        imp.IMPSettings(fraction=1.0)
    with pytest.raises(ValueError, match="panels.p.imp: unknown key"):
        imp.IMPSettings.from_dict({"fractoin": 0.2}, where="panels.p.imp")


# -- GMP ---------------------------------------------------------------------------------


def test_cubic_schedule_is_zhu_and_gupta_eq_1():
    sched = gmp.Schedule(t0=10, dt=5, n=4, s_i=0.0, s_f=0.9)
    got = [sched.sparsity_at(t) for t in range(0, 40)]
    steps = {t: v for t, v in enumerate(got) if v is not None}
    assert sorted(steps) == [10, 15, 20, 25, 30]
    for k, t in enumerate(sorted(steps)):
        assert steps[t] == pytest.approx(0.9 + (0.0 - 0.9) * (1 - k / 4) ** 3)
    assert steps[10] == 0.0 and steps[30] == pytest.approx(0.9)
    # most of the pruning happens early: the first step is the largest
    rises = [b - a for a, b in zip(list(steps.values()), list(steps.values())[1:])]
    assert rises == sorted(rises, reverse=True)
    s = gmp.Schedule.of(gmp.GMPSettings(start_epoch=1, end_epoch=5), steps_per_epoch=8, final_pct=90)
    assert (s.t0, s.dt, s.n, s.s_f) == (8, 8, 4, 0.9)


def test_gmp_prunes_on_the_schedule_and_snapshots_every_epoch(tmp_path):
    settings = gmp.GMPSettings(start_epoch=1, end_epoch=4)
    recipe = Recipe(epochs=6, batch_size=64, lr=0.05)
    out, snaps, inits = run(gmp, settings, recipe, tmp_path, [50, 80])
    total = total_prunable(new_model())
    # one pruning step at the start of epochs 2..5 (k = 0..3, n = 3): s_f = 80 % (highest target)
    expected = [0.0, 0.0] + [0.8 + (0.0 - 0.8) * (1 - k / 3) ** 3 for k in (1, 2, 3)] + [0.8]
    assert [x["event"] for x in snaps] == [1, 2, 3, 4, 5, 6]
    for snap, s in zip(snaps, expected):
        assert snap["pruned_params"] == round(s * total), snap["event"]
    assert len(inits) == 1 and torch.equal(inits[0]["0.weight"], new_model().state_dict()["0.weight"])
    # the snapshot for 80 %: among epochs 5 and 6 (both at 80 %), the last under "last"
    chosen = select_snapshots(out.events, [50, 80], selection="last")
    assert chosen[0]["event"] == 3 and chosen[1]["event"] == 6
    best = select_snapshots(out.events, [80], selection="best_val")[0]
    at80 = [e for e in out.events if e["pruned_params"] == round(0.8 * total)]
    assert best["val_loss"] == min(e["val_loss"] for e in at80)


def test_gmp_within_epoch_frequency_and_layerwise_scope(tmp_path):
    settings = gmp.GMPSettings(start_epoch=0, end_epoch=2, frequency=3, scope="layerwise",
                               final_sparsity=60.0)
    out, snaps, _ = run(gmp, settings, Recipe(epochs=3, batch_size=64, lr=0.05), tmp_path, [90])
    # 512 samples / 64 = 8 steps per epoch; steps 0, 3, ..., 15 (n = 5): 60 % after epoch 2
    last = snaps[-1]
    for keep in last["mask"].values():
        assert keep.numel() - int(keep.sum()) == round(0.6 * keep.numel())
    assert math.isclose(snaps[1]["mask_pruned_pct"], snaps[2]["mask_pruned_pct"], rel_tol=0.01)


def test_gmp_needs_a_recovery_epoch():
    with pytest.raises(ValueError, match="gmp.end_epoch"):
        gmp.run(new_model(), toy_data(), Recipe(epochs=4, batch_size=64, lr=0.1),
                gmp.GMPSettings(end_epoch=4), seed=0, device="cpu", checkpoint="x",
                on_snapshot=print, on_init=print, targets=[50])
    with pytest.raises(ValueError, match="start_epoch < end_epoch"):
        gmp.GMPSettings(start_epoch=3, end_epoch=3)


def test_masks_of_every_method_apply_to_the_model(tmp_path):
    _, snaps, _ = run(gmp, gmp.GMPSettings(end_epoch=1), Recipe(epochs=2, batch_size=64, lr=0.05),
                      tmp_path, [50])
    m = new_model()
    m.load_state_dict(snaps[-1]["state_dict"])
    mask = Mask({n: t for n, t in snaps[-1]["mask"].items()})
    for n, p in prunable_parameters(m).items():
        assert torch.all(p.detach()[~mask[n]] == 0)


def test_a_jobs_fingerprint_leaves_the_budget_to_the_engine_where_the_run_may_extend(tmp_path):
    """A run under way may resume under a larger epoch budget (the engine checks the budget
    against its checkpoint): the fingerprint of such a job leaves every recipe's epochs out; IMP,
    whose every round trains the recipe's epochs, and retrainings (finished seeds) keep them."""
    from sharpminima.experiments.job import run_fingerprint
    from sharpminima.gradual import GRADUAL_METHODS

    split = tmp_path / "split.json"
    split.write_text("{}")
    panel = lambda epochs: {"dataset": "mnist", "lobster": {"pwe": 20, "recipe": {  # noqa: E731
        "epochs": epochs, "batch_size": 100, "lr": 0.1}}, "dense": {"epochs": 60, "batch_size": 64, "lr": 0.01}}
    fp = lambda epochs, extends: run_fingerprint(panel(epochs), tmp_path, split, {"seed": 0},  # noqa: E731
                                                 extends=extends)
    assert fp(1000, True) == fp(3000, True)
    assert fp(1000, False) != fp(3000, False)
    assert fp(1000, True)["settings"]["panel"]["lobster"] == {"pwe": 20, "recipe": {"batch_size": 100, "lr": 0.1}}
    assert {n for n, m in GRADUAL_METHODS.items() if not m.budget_extends} == {"imp"}
