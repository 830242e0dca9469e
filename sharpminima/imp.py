"""Iterative magnitude pruning with rewinding (IMP): the lottery-ticket procedure.

Frankle & Carbin, "The lottery ticket hypothesis: finding sparse, trainable neural networks"
(ICLR 2019), as OpenLTH runs it (its ``lottery`` branch); rewinding to an early iteration
instead of the initialisation is Frankle, Dziugaite, Roy & Carbin, "Linear mode connectivity
and the lottery ticket hypothesis" (ICML 2020).

The procedure, with ``f`` = ``fraction`` (20 % by default, the paper's rate for fully
connected layers)::

    round 0: train the dense network from theta_0 with the recipe;
    round r >= 1: prune, by magnitude of the weights round r-1 ended with, the smallest
             f of the parameters still unpruned, so that after round r a fraction
             1 - (1 - f)^r of all prunable parameters is pruned (exactly
             round((1 - (1 - f)^r) * total), ``pruning.magnitude_mask``: ``scope`` global
             across layers or layer-wise, every tensor to that fraction);
             rewind the survivors to theta_k (k = ``rewind_epoch``: 0 is the
             initialisation, Frankle & Carbin; k >= 1 the weights after k epochs of
             round 0, Frankle et al. 2020), train with the mask fixed and the same recipe.

Each round is one snapshot (event r): the weights the round's training reports under the
workflow's ``selection`` rule, its mask and sparsity. The rounds stop at the first one whose
sparsity is at or above the panel's highest target (or after ``max_rounds``). Every round
uses the same data order (the run's seed), as OpenLTH's levels do. Counting: sparsity over
all prunable parameters (``masks.prunable_parameters``: weights and biases of Linear, Conv2d
and BatchNorm layers), as LOBSTER and one-shot count it (Frankle & Carbin prune weights only
and the output layer at half the rate; **decision**: one rule for every method).

Late rewinding (**decision**): after the survivors are reset to theta_k, every round trains
the whole recipe from its first epoch (schedule included); Frankle et al. continue from
iteration k to the end instead. No preset rewinds late.

Resume: a round interrupted resumes from the engine's checkpoint; finished rounds are the
``done`` snapshots the runner passes back, and the rewind point is kept beside the checkpoint
(the returned ``history`` then holds the rounds trained after the resume only).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from .masks import Mask, sparsity_report
from .provenance import atomic_torch_save
from .pruning import magnitude_mask
from .settings import check_fields, from_mapping, setting
from .training import Callback, Recipe, train

_log = logging.getLogger(__name__)


@dataclass
class IMPSettings:
    """IMP's settings: a panel's ``imp`` block, beside its ``recipe`` (the training of every
    round; each key's description is the schema's)."""

    fraction: float = setting("Share of the remaining prunable parameters pruned per round (Frankle & Carbin: 0.2).",
                              0.2, exclusiveMinimum=0, exclusiveMaximum=1)
    scope: str = setting("Rank magnitudes across all layers (global) or within each tensor (layerwise).",
                         "global", enum=["global", "layerwise"])
    rewind_epoch: int = setting("Rewind the survivors to the weights after this many epochs of round 0 (0: the "
                                "initialisation; Frankle et al. 2020 rewind later).", 0, minimum=0)
    max_rounds: int | None = setting("At most this many pruning rounds (null: until the panel's highest target).",
                                     None, minimum=1)

    def __post_init__(self):
        check_fields(self, "imp")

    @classmethod
    def from_dict(cls, d: dict, where: str = "imp") -> "IMPSettings":
        return from_mapping(cls, d, where)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def round_sparsity(fraction: float, r: int) -> float:
    """Pruned fraction of all prunable parameters after ``r`` rounds: 1 - (1 - f)^r."""
    return 1.0 - (1.0 - fraction) ** r


def rounds_to_reach(fraction: float, sparsity_pct: float) -> int:
    """The first round whose sparsity is at or above ``sparsity_pct`` percent."""
    s = float(sparsity_pct) / 100.0
    if s <= 0:
        return 0
    r = math.ceil(math.log(1.0 - s) / math.log(1.0 - fraction) - 1e-12)
    while round_sparsity(fraction, r) < s - 1e-12:  # floating-point safety
        r += 1
    return r


class _KeepWeightsAt(Callback):
    """Keep (cpu clones) the weights after epoch ``epoch``: the late-rewinding point."""

    def __init__(self, epoch: int):
        self.epoch, self.state = epoch, None

    def after_epoch(self, trainer, record):
        if trainer.epoch == self.epoch:
            self.state = {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}

    def state_dict(self):
        return {"state": self.state}

    def load_state_dict(self, state):
        self.state = state["state"]


def run(model, data, recipe: Recipe, settings: IMPSettings, *, seed: int, device, checkpoint,
        on_snapshot, on_init, augment=None, fingerprint=None, targets=(), selection="best_val",
        done=()):
    """IMP behind the gradual-method interface (``sharpminima.gradual``; the procedure is in
    the module docstring)."""
    from .gradual import GradualRun

    s = settings
    checkpoint = Path(checkpoint)
    rewind_file = checkpoint.with_name("rewind_point.pt")
    top = max((float(t) for t in targets), default=0.0)
    last_round = rounds_to_reach(s.fraction, top)
    if s.max_rounds is not None:
        last_round = min(last_round, int(s.max_rounds))
    init = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if s.rewind_epoch == 0:
        rewind = init
        if not done:
            on_init(rewind)
    elif rewind_file.exists():
        rewind = torch.load(rewind_file, map_location="cpu", weights_only=True)
    else:
        rewind = None
    if s.rewind_epoch > recipe.epochs:
        raise ValueError(f"imp.rewind_epoch: found {s.rewind_epoch}; expected at most the "
                         f"recipe's {recipe.epochs} epochs")
    events = [{k: v for k, v in d.items() if k not in ("state_dict", "mask")} for d in done]
    previous = done[-1] if done else None
    history, epochs = [], sum(e.get("round_epochs", 0) for e in events)
    _log.info(f"[imp] rounds 0..{last_round} (fraction {s.fraction}, {s.scope}, rewind to epoch "
              f"{s.rewind_epoch}); {len(done)} done")
    for r in range(len(done), last_round + 1):
        keep = _KeepWeightsAt(s.rewind_epoch) if r == 0 and s.rewind_epoch > 0 else None
        mask = None
        if r > 0:  # prune by the magnitudes the last round ended with, then rewind
            model.load_state_dict({k: v.to(device) for k, v in previous["state_dict"].items()})
            old = Mask({n: m.bool() for n, m in previous["mask"].items()})
            mask = magnitude_mask(model, round_sparsity(s.fraction, r), mask=old, scope=s.scope)
            model.load_state_dict({k: v.to(device) for k, v in rewind.items()})
        trainer = train(model, data, recipe, seed=seed, device=device, mask=mask,
                        checkpoint=checkpoint, augment=augment, evaluate_test=False,
                        callbacks=[keep] if keep else [], name=f"imp-round{r}",
                        selection=selection, fingerprint={**(fingerprint or {}), "imp_round": r})
        if keep is not None:
            rewind = keep.state
            atomic_torch_save(rewind, rewind_file)
            on_init(rewind)
        net = trainer.model
        mask_now = trainer.mask if trainer.mask is not None else Mask.ones(net)
        mask_cpu = Mask({n: m.detach().to("cpu", copy=True) for n, m in mask_now.items()})
        rec = next((h for h in trainer.history if h["epoch"] == trainer.selected_epoch), trainer.history[-1])
        meta = {"event": r, "round": r, "epoch": trainer.selected_epoch,
                "round_epochs": trainer.epoch, "val_loss": rec.get("val_loss"),
                "val_error": rec.get("val_error"),
                "mask_pruned_pct": 100.0 * mask_cpu.pruned_fraction,
                **sparsity_report(net)}
        meta["end"] = ("target" if meta["pruned_params_pct"] >= top - 1e-9 and r == last_round
                       else "max_rounds" if r == last_round else "round")
        state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        on_snapshot({**meta, "state_dict": state, "mask": mask_cpu})
        checkpoint.unlink(missing_ok=True)
        events.append(meta)
        previous = {"state_dict": state, "mask": mask_cpu.state_dict()}
        history += [{**h, "round": r} for h in trainer.history]
        epochs += trainer.epoch
        _log.info(f"[imp] round {r}: {meta['pruned_params_pct']:.3f} % params, "
                  f"{meta['pruned_neurons_pct']:.3f} % neurons, val_error {meta['val_error']:.3f} %")
    return GradualRun(events=events, epochs=epochs, history=history,
                      selection=f"{selection} (per round)")


def work(settings: IMPSettings, epochs: int, targets=()):
    """What a run trains, for the estimate (``gradual.Stretch``): rounds 0 to the first at or
    above the highest target (or ``max_rounds``), each the whole recipe at its round's
    sparsity, each ending with its evaluation."""
    from .gradual import Stretch

    last = rounds_to_reach(settings.fraction, max(float(t) for t in targets))
    if settings.max_rounds is not None:
        last = min(last, int(settings.max_rounds))
    return [Stretch(int(epochs), 100.0 * round_sparsity(settings.fraction, r)) for r in range(last + 1)]
