"""One-shot magnitude masks, random masks, the three retraining kinds, snapshot selection."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from sharpminima.masks import Mask, prunable_parameters
from sharpminima.models import build_model, register
from sharpminima.pruning import magnitude_mask, oneshot, random_mask_like, retrain, select_snapshots
from sharpminima.training import Callback, Recipe, seed_everything, train

ZERO_EPOCHS = Recipe(epochs=0, batch_size=64, lr=0.05)
ONE_EPOCH = Recipe(epochs=1, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4)


@register("_toy_mlp_tests")
def toy_mlp(num_classes: int = 4) -> nn.Module:
    return nn.Sequential(nn.Linear(32, 64), nn.BatchNorm1d(64), nn.ReLU(),
                         nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, num_classes))


def toy_data(n=1024, seed=0, dim=32, classes=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 512, dim, generator=g)
    w = torch.randn(dim, classes, generator=g)
    y = (x @ w).argmax(1)
    return SimpleNamespace(train=(x[:n], y[:n]), val=(x[n : n + 256], y[n : n + 256]),
                           test=(x[n + 256 :], y[n + 256 :]), num_classes=classes)


def new_model(seed=0):
    seed_everything(seed)
    return build_model("_toy_mlp_tests", num_classes=4)


def flat_abs(model, names=None):
    params = prunable_parameters(model)
    return torch.cat([params[n].detach().abs().flatten() for n in (names or params)])


def flat_mask(mask):
    return torch.cat([m.flatten() for m in mask.values()])


# -- magnitude masks -----------------------------------------------------------------------


def test_magnitude_mask_exact_count_and_smallest():
    model = new_model()
    total = sum(p.numel() for p in prunable_parameters(model).values())
    for s in (0.0, 0.37, 0.9, 1.0):
        m = magnitude_mask(model, s)
        assert total - m.kept == round(s * total)
        keep, mags = flat_mask(m), flat_abs(model)
        if 0 < s < 1:
            assert mags[~keep].max() <= mags[keep].min()
    with pytest.raises(ValueError):
        magnitude_mask(model, 37.0)  # percent by mistake


def test_magnitude_mask_respects_existing_mask():
    model = new_model()
    g = torch.Generator().manual_seed(0)
    pre = Mask({n: torch.rand(m.shape, generator=g) > 0.2 for n, m in Mask.ones(model).items()})
    total = pre.total
    m = magnitude_mask(model, 0.6, mask=pre)
    keep, pre_keep, mags = flat_mask(m), flat_mask(pre), flat_abs(model)
    assert not torch.any(keep & ~pre_keep)  # pruned stays pruned
    assert total - m.kept == round(0.6 * total)  # already pruned ones count
    newly = pre_keep & ~keep
    assert newly.any() and mags[newly].max() <= mags[keep].min()
    # asking for less than is already pruned changes nothing
    m2 = magnitude_mask(model, 0.05, mask=pre)
    assert all(torch.equal(m2[n], pre[n]) for n in pre)


def test_magnitude_mask_ties_are_deterministic_and_exact():
    model = new_model()
    with torch.no_grad():
        for p in prunable_parameters(model).values():
            p.fill_(0.5)
    total = sum(p.numel() for p in prunable_parameters(model).values())
    m = magnitude_mask(model, 0.3)
    k = round(0.3 * total)
    assert total - m.kept == k
    keep = flat_mask(m)
    assert not keep[:k].any() and keep[k:].all()  # the earliest entries go first
    assert torch.equal(flat_mask(magnitude_mask(model, 0.3)), keep)


def test_magnitude_mask_layerwise():
    model = new_model()
    m = magnitude_mask(model, 0.5, scope="layerwise")
    params = prunable_parameters(model)
    for n, keep in m.items():
        assert keep.numel() - int(keep.sum()) == round(0.5 * keep.numel())
        a = params[n].detach().abs()
        if (~keep).any() and keep.any():
            assert a[~keep].max() <= a[keep].min()


# -- random masks --------------------------------------------------------------------------


def test_random_mask_like_keeps_counts_and_varies_with_seed():
    model = new_model()
    mask = magnitude_mask(model, 0.8)
    a = random_mask_like(mask, torch.Generator().manual_seed(1))
    b = random_mask_like(mask, torch.Generator().manual_seed(1))
    c = random_mask_like(mask, torch.Generator().manual_seed(2))
    assert a.layer_counts() == mask.layer_counts() == c.layer_counts()
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert any(not torch.equal(a[n], c[n]) for n in a)
    assert any(not torch.equal(a[n], mask[n]) for n in a)
    assert all(a[n].shape == mask[n].shape and a[n].dtype == torch.bool for n in a)


# -- retraining ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ticket():
    """A LOBSTER-like outcome: initial weights, and a mask found on the trained weights."""
    model = new_model(seed=11)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, toy_data(), ONE_EPOCH, seed=11)
    return init, magnitude_mask(model, 0.7), model.state_dict()


def prunable_state(model):
    return {n: p.detach().clone() for n, p in prunable_parameters(model).items()}


def test_rewind_starts_exactly_from_init_times_mask(ticket):
    init, mask, _ = ticket
    tr = retrain("rewind", "_toy_mlp_tests", 4, mask, toy_data(), ZERO_EPOCHS, seed=3,
                 init_state=init)
    got = tr.model.state_dict()
    for n, keep in mask.items():
        assert torch.equal(got[n], init[n] * keep), n
    for k in init:  # buffers and everything else as saved
        if k not in mask:
            assert torch.equal(got[k], init[k]), k
    with pytest.raises(ValueError, match="init_state"):
        retrain("rewind", "_toy_mlp_tests", 4, mask, toy_data(), ZERO_EPOCHS, seed=3)


def test_reinit_and_random_start_from_a_fresh_init(ticket):
    init, mask, _ = ticket
    re = retrain("reinit", "_toy_mlp_tests", 4, mask, toy_data(), ZERO_EPOCHS, seed=5,
                 init_state=init)
    rw = retrain("rewind", "_toy_mlp_tests", 4, mask, toy_data(), ZERO_EPOCHS, seed=5,
                 init_state=init)
    fresh = new_model(5).state_dict()
    a, b = prunable_state(re.model), prunable_state(rw.model)
    assert all(torch.equal(re.mask[n].cpu(), mask[n]) for n in mask)  # same mask
    for n, keep in mask.items():
        assert torch.equal(a[n], fresh[n] * keep)  # the seeded fresh init, masked
    assert any(not torch.equal(a[n], b[n]) for n in a if n.endswith("weight"))
    # the LOBSTER run's own seed would reproduce its init: refused
    with pytest.raises(ValueError, match="reproduces init_state"):
        retrain("reinit", "_toy_mlp_tests", 4, mask, toy_data(), ZERO_EPOCHS, seed=11,
                init_state=init)
    rnd = retrain("random", "_toy_mlp_tests", 4, mask, toy_data(), ZERO_EPOCHS, seed=5)
    rmask = Mask({n: m.cpu() for n, m in rnd.mask.items()})
    assert rmask.layer_counts() == mask.layer_counts()
    assert any(not torch.equal(rmask[n], mask[n]) for n in mask)
    assert all(torch.equal(rmask[n], random_mask_like(mask, torch.Generator().manual_seed(5))[n])
               for n in mask)
    c = prunable_state(rnd.model)
    for n in mask:
        assert torch.equal(c[n], fresh[n] * rmask[n])
    with pytest.raises(ValueError, match="kind"):
        retrain("lottery", "_toy_mlp_tests", 4, mask, toy_data(), ZERO_EPOCHS, seed=5)


@pytest.mark.parametrize("kind", ["rewind", "reinit", "random"])
def test_retrain_trains_with_the_mask_fixed(ticket, kind):
    init, mask, _ = ticket
    tr = retrain(kind, "_toy_mlp_tests", 4, mask, toy_data(), ONE_EPOCH, seed=21, init_state=init)
    assert len(tr.history) == 1
    params = prunable_parameters(tr.model)
    for n, keep in tr.mask.items():
        assert torch.all(params[n].detach()[~keep] == 0.0), n
    changed = any(not torch.equal(params[n].detach(), init[n] * tr.mask[n]) for n in params)
    assert changed


def test_oneshot_prunes_by_magnitude_and_finetunes(ticket):
    _, _, dense = ticket
    tr = oneshot(dense, "_toy_mlp_tests", 4, toy_data(), 0.8, ONE_EPOCH, seed=2)
    ref = new_model()
    ref.load_state_dict(dense)
    expected = magnitude_mask(ref, 0.8)
    assert all(torch.equal(tr.mask[n].cpu(), expected[n]) for n in expected)
    assert tr.mask.total - tr.mask.kept == round(0.8 * tr.mask.total)
    params = prunable_parameters(tr.model)
    for n, keep in tr.mask.items():
        assert torch.all(params[n].detach()[~keep] == 0.0)
    assert len(tr.history) == 1


# -- snapshot selection --------------------------------------------------------------------


def test_select_snapshots_first_at_or_above_and_unreached():
    pcts = [0.0, 40.15, 60.64, 60.64, 80.06]
    events = [{"event": i, "pruned_params_pct": p} for i, p in enumerate(pcts)]
    events = events[::-1]  # order of the list does not matter: event index does
    got = select_snapshots(events, [0, 40.15 + 1e-10, 50, 60.64, 90.0, 80.06])
    assert [g.get("event") for g in got] == [0, 1, 2, 2, None, 4]
    assert [g["reached"] for g in got] == [True, True, True, True, False, True]
    assert got[4] == {"target": 90.0, "reached": False, "max_reached": 80.06}
    assert got[2]["target"] == 50 and got[2]["pruned_params_pct"] == 60.64
    assert "target" not in events[0]  # inputs untouched
    assert select_snapshots([], [10.0]) == [{"target": 10.0, "reached": False, "max_reached": None}]


def test_a_target_short_of_one_parameter_is_reached():
    """GMP and one-shot prune round(0.9957 * total): in percent a hair below 99.57."""
    total = 431_080
    pct = 100.0 * round(0.9957 * total) / total
    assert pct < 99.57
    ev = [{"event": 1, "pruned_params_pct": pct, "total_params": total, "val_loss": 0.1}]
    assert select_snapshots(ev, [99.57])[0]["reached"]
    two_short = [{**ev[0], "pruned_params_pct": 99.57 - 2 * 100.0 / total}]
    assert not select_snapshots(two_short, [99.57])[0]["reached"]


# -- the selection rule: every method reports the weights it selects ----------------------

class _Recorder(Callback):
    """A callback copying the weights of every epoch (after its evaluation)."""

    def __init__(self):
        self.states = []

    def after_epoch(self, trainer, record):
        self.states.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})


BUMPY = Recipe(epochs=5, batch_size=32, lr=0.5, momentum=0.9)


def _wanted_epoch(history, selection) -> int:
    """The epoch (0-based) a rule picks, read from the history: ties keep the earliest."""
    if selection == "last":
        return len(history) - 1
    metric = {"best_val": "val_loss", "best_val_error": "val_error"}[selection]
    val = [r[metric] for r in history]
    return min(range(len(val)), key=lambda i: (val[i], i))


def _check_selection(tr, rec, selection):
    want = _wanted_epoch(tr.history, selection)
    assert tr.selected_epoch == want + 1
    got = tr.model.state_dict()
    assert all(torch.equal(got[k], rec.states[want][k]) for k in got)
    # every other rule's weights are kept too, each those of the epoch it picks
    for rule, (epoch, state) in tr.selection_candidates().items():
        w = _wanted_epoch(tr.history, rule)
        assert epoch == w + 1, rule
        assert all(torch.equal(state[k], rec.states[w][k]) for k in state), rule
    return want


@pytest.mark.parametrize("selection", ["best_val", "best_val_error", "last"])
@pytest.mark.parametrize("kind", ["rewind", "reinit", "random", "oneshot"])
def test_every_method_reports_the_weights_its_selection_picks(ticket, kind, selection):
    init, mask, dense = ticket
    rec = _Recorder()
    if kind == "oneshot":
        tr = oneshot(dense, "_toy_mlp_tests", 4, toy_data(), 0.8, BUMPY, seed=2,
                     callbacks=[rec], selection=selection)
    else:
        tr = retrain(kind, "_toy_mlp_tests", 4, mask, toy_data(), BUMPY, seed=21,
                     init_state=init, callbacks=[rec], selection=selection)
    _check_selection(tr, rec, selection)
    params = prunable_parameters(tr.model)  # the selected weights still honour the mask
    for n, keep in tr.mask.items():
        assert torch.all(params[n].detach()[~keep] == 0.0), n


@pytest.mark.parametrize("kind", ["rewind", "reinit", "random", "oneshot"])
def test_a_diverging_retraining_names_the_epoch(ticket, kind):
    init, mask, dense = ticket
    wild = Recipe(epochs=2, batch_size=64, lr=1e8, momentum=0.9)
    from sharpminima.training import DivergedError

    with pytest.raises(DivergedError, match="epoch 1.*lower the learning rate"):
        if kind == "oneshot":
            oneshot(dense, "_toy_mlp_tests", 4, toy_data(), 0.5, wild, seed=2)
        else:
            retrain(kind, "_toy_mlp_tests", 4, mask, toy_data(), wild, seed=21, init_state=init)
