"""One-shot magnitude pruning, random masks, and the three retraining baselines of Fig. 1.

- :func:`magnitude_mask` / :func:`oneshot`: the "classic three stages" the paper describes
  in its Sec. 2 (Han et al., "Learning both weights and connections for efficient neural
  networks", NeurIPS 2015): train dense, prune the smallest-magnitude parameters to a target
  sparsity in one shot, fine-tune with the mask fixed. (Han et al. prune iteratively and
  layer by layer with a quality parameter; the one-shot global variant is ours.)
- :func:`retrain` with ``kind``:

  * ``"rewind"`` -- Frankle & Carbin, "The lottery ticket hypothesis" (ICLR 2019): keep a
    pruned network's mask, reset the surviving weights to their values at the *initialisation
    of the run that found the mask* (here: the LOBSTER run's initial weights), train with the
    mask fixed.
  * ``"reinit"`` -- Liu et al., "Rethinking the value of network pruning" (ICLR 2019): the
    same mask, a fresh random initialisation (seeded by ``seed``), train with the mask fixed.
  * ``"random"`` -- random pruning: a random mask with the same number of pruned parameters
    in every parameter tensor (OpenLTH's layerwise random pruning; **decision**, see
    docs/methods.md §2), positions uniform at random from a generator seeded by ``seed``, a
    fresh initialisation seeded by ``seed``, train with the mask fixed.

- :func:`select_snapshots`: which snapshot of a gradual run stands for each target sparsity.

Counting: sparsity is the fraction (or percent) of pruned entries over all prunable
parameters (``masks.prunable_parameters``), as ``masks.sparsity_report`` counts it.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Sequence

import torch
import torch.nn as nn

from .masks import Mask, prunable_parameters
from .models import build_model
from .retraining import FIG1_METHODS, RETRAINING_METHODS
from .training import Callback, Recipe, Trainer, seed_everything, train

_log = logging.getLogger(__name__)

# The methods Fig. 1 compares with LOBSTER (config `methods`): the retrainings and one-shot.
METHODS = FIG1_METHODS


@torch.no_grad()
def magnitude_mask(model: nn.Module, sparsity: float, mask: Mask | None = None,
                   scope: str = "global") -> Mask:
    """Prune the smallest-magnitude prunable parameters so that exactly
    ``round(sparsity * total)`` of all prunable parameters are pruned, counting those already
    pruned in ``mask`` (which stay pruned: the result is a subset of ``mask``).

    ``scope="global"`` ranks |w| across all prunable tensors together (the default, as our
    LOBSTER threshold does); ``"layerwise"`` prunes every tensor to ``round(sparsity * numel)``.
    Ties are broken by position (stable sort over the tensors in ``prunable_parameters``
    order, flattened row-major): the earlier entry is pruned first. If ``mask`` already
    prunes more than asked, it is returned unchanged (a copy)."""
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be a fraction in [0, 1], got {sparsity}")
    params = prunable_parameters(model)
    if mask is None:
        mask = Mask.ones(model)
    names = list(params)
    if scope == "global":
        groups = [names]
    elif scope == "layerwise":
        groups = [[n] for n in names]
    else:
        raise ValueError(f"scope must be 'global' or 'layerwise', got {scope!r}")
    out = Mask({n: mask[n].to(params[n].device).clone() for n in names})
    for group in groups:
        keep = torch.cat([out[n].flatten() for n in group])
        total = keep.numel()
        target = int(round(sparsity * total))
        n_new = target - (total - int(keep.sum()))
        if n_new <= 0:
            continue
        mags = torch.cat([params[n].detach().abs().flatten().float() for n in group])
        mags = torch.where(keep, mags, torch.full_like(mags, float("inf")))
        order = torch.sort(mags, stable=True).indices[:n_new]
        keep[order] = False
        offset = 0
        for n in group:
            k = out[n].numel()
            out[n] = keep[offset : offset + k].view_as(out[n]).clone()
            offset += k
    return out


def random_mask_like(mask: Mask, generator: torch.Generator) -> Mask:
    """A random mask with, in every parameter tensor, as many pruned entries as ``mask``;
    their positions uniform at random (``torch.randperm`` from ``generator``, tensors drawn
    in ``mask``'s order). Returned on ``mask``'s devices; ``generator`` is a CPU generator."""
    out = {}
    for n, m in mask.items():
        numel = m.numel()
        n_pruned = numel - int(m.sum())
        keep = torch.ones(numel, dtype=torch.bool)
        if n_pruned:
            keep[torch.randperm(numel, generator=generator)[:n_pruned]] = False
        out[n] = keep.view(m.shape).to(m.device)
    return Mask(out)


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k].detach().cpu(), b[k].detach().cpu()) for k in a
    )


def retrain(
    kind: str,
    model_name: str,
    num_classes: int,
    mask: Mask,
    data,
    recipe: Recipe,
    *,
    seed: int,
    device="cpu",
    init_state: dict | None = None,
    checkpoint=None,
    augment: Callable | None = None,
    callbacks: Iterable[Callback] = (),
    evaluate_test: bool = True,
    selection: str = "last",
    fingerprint: dict | None = None,
) -> Trainer:
    """Retrain a pruned network from scratch with its mask fixed (module docstring has the
    three definitions). Returns the :class:`training.Trainer`; ``trainer.mask`` is the mask
    used (for ``"random"``, the drawn one).

    - ``"rewind"``: ``init_state`` (the LOBSTER run's initial weights, buffers included) is
      loaded, then the engine zeroes the pruned entries: training starts exactly from
      ``init_state * mask``. ``seed`` sets the data order.
    - ``"reinit"``: ``seed_everything(seed)``, then ``build_model``: a fresh init. If
      ``init_state`` is given and the fresh init equals it (the LOBSTER run's own seed), this
      raises: that would be a rewind, not a re-init.
    - ``"random"``: mask from ``random_mask_like(mask, torch.Generator().manual_seed(seed))``,
      then the fresh init of ``"reinit"`` with the same ``seed`` (so ``reinit`` and ``random``
      of one seed share their init and data order and differ by the mask only).

    ``selection`` (``training.SELECTIONS``): the weights returned are the last epoch's or
    the lowest-validation-loss epoch's (``trainer.selected_epoch``)."""
    if kind not in RETRAINING_METHODS:
        raise ValueError(f"retrain kind must be one of {list(RETRAINING_METHODS)} "
                         f"(retraining.RETRAINING_METHODS), got {kind!r}")
    method = RETRAINING_METHODS[kind]
    mask = Mask({n: m.detach().cpu().bool() for n, m in mask.items()})
    if method.mask == "random":
        mask = random_mask_like(mask, torch.Generator().manual_seed(seed))
    seed_everything(seed)
    model = build_model(model_name, num_classes=num_classes)
    if method.start == "rewind":
        if init_state is None:
            raise ValueError(f"retrain({kind!r}) needs init_state: the gradual run's rewind point")
        model.load_state_dict(init_state)
    elif init_state is not None and _same_weights(model.state_dict(), init_state):
        raise ValueError(
            f"retrain({kind!r}) with seed {seed} reproduces init_state (the LOBSTER run's "
            "initial weights): use a seed other than the LOBSTER run's"
        )
    return train(model, data, recipe, seed=seed, device=device, mask=mask,
                 checkpoint=checkpoint, augment=augment, callbacks=callbacks,
                 evaluate_test=evaluate_test, name=f"retrain-{kind}", selection=selection,
                 fingerprint=fingerprint)


def oneshot(
    model_dense_state: dict,
    model_name: str,
    num_classes: int,
    data,
    sparsity: float,
    finetune_recipe: Recipe,
    *,
    seed: int,
    device="cpu",
    scope: str = "global",
    checkpoint=None,
    augment: Callable | None = None,
    callbacks: Iterable[Callback] = (),
    evaluate_test: bool = True,
    selection: str = "last",
    fingerprint: dict | None = None,
) -> Trainer:
    """One-shot magnitude pruning of a trained dense network and fine-tuning: load
    ``model_dense_state``, prune the ``sparsity`` fraction (in [0, 1]) of smallest-|w|
    prunable parameters (:func:`magnitude_mask`, ``scope`` global by default), fine-tune with
    ``finetune_recipe`` and the mask fixed (``seed`` sets the data order). Returns the
    trainer (``trainer.mask`` is the mask). ``selection`` as in :func:`retrain`."""
    seed_everything(seed)
    model = build_model(model_name, num_classes=num_classes)
    model.load_state_dict(model_dense_state)
    mask = magnitude_mask(model, sparsity, scope=scope)
    _log.info(f"[oneshot] pruned {100.0 * mask.pruned_fraction:.3f} % of prunable parameters by magnitude ({scope})")
    return train(model, data, finetune_recipe, seed=seed, device=device, mask=mask,
                 checkpoint=checkpoint, augment=augment, callbacks=callbacks,
                 evaluate_test=evaluate_test, name="oneshot", selection=selection,
                 fingerprint=fingerprint)


def select_snapshots(events: Sequence[dict], targets: Sequence[float],
                     key: str = "pruned_params_pct", tol: float = 1e-9,
                     selection: str = "first") -> list[dict]:
    """For each target sparsity (percent), the snapshot that stands for it: among the events
    whose ``key`` is ``>= target - tol`` (``tol``: one parameter of the event's
    ``total_params`` where it has one), those at the lowest such sparsity (the first level
    the run reached at or above the target), and of these the one ``selection`` picks:
    ``first`` (lowest ``event`` index, else list order), ``last``, or ``best_val`` (lowest
    ``val_loss``, ties to the earlier). A method with one event per sparsity (LOBSTER's
    phases, IMP's rounds) gets the first event at or above the target whatever the rule;
    GMP's epochs at its final sparsity compete. Returned as a copy with ``target`` and
    ``reached: True`` added; where no event reaches the target, ``{"target", "reached":
    False, "max_reached"}`` (``max_reached`` None when there are no events). One entry per
    target, in the targets' order."""
    if selection not in ("first", "last", "best_val"):
        raise ValueError(f"selection must be first, last or best_val, got {selection!r}")
    ordered = sorted(events, key=lambda e: e.get("event", 0)) if all(
        "event" in e for e in events) else list(events)
    out = []
    def at_or_above(e, t) -> bool:
        # within one parameter of the target counts as reaching it: a method that prunes
        # round(target * total) parameters may fall a fraction of one short in percent
        slack = max(tol, 100.0 / e["total_params"]) if e.get("total_params") else tol
        return float(e[key]) >= float(t) - slack

    for t in targets:
        above = [e for e in ordered if at_or_above(e, t)]
        if above:
            level = min(float(e[key]) for e in above)
            same = [e for e in above if abs(float(e[key]) - level) <= 1e-9]
            if selection == "last":
                hit = same[-1]
            elif selection == "best_val":
                hit = min(same, key=lambda e: float("inf") if e.get("val_loss") is None else e["val_loss"])
            else:
                hit = same[0]
            out.append({**hit, "target": t, "reached": True})
        else:
            out.append({
                "target": t,
                "reached": False,
                "max_reached": max((float(e[key]) for e in ordered), default=None),
            })
    return out
