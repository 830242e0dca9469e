"""Gradual magnitude pruning (GMP) on a cubic schedule.

Zhu & Gupta, "To prune, or not to prune: exploring the efficacy of pruning for model
compression" (ICLR 2018 workshop; arXiv 1710.01878), Eq. 1. During one training run the
sparsity is raised from ``s_i`` to ``s_f`` over ``n`` pruning steps, every ``dt`` optimizer
steps from step ``t0``::

    s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))^3,   t in {t0, t0 + dt, ..., t0 + n*dt}

and at each of those steps the smallest-magnitude parameters are pruned so that exactly
``round(s_t * total)`` of all prunable parameters are (``pruning.magnitude_mask``: ``scope``
global across layers or layer-wise; pruned parameters stay pruned, so the mask only shrinks).
The network then trains on with the mask fixed until the next pruning step, and after
``t0 + n*dt`` at ``s_f`` until the recipe's budget ends (the recovery phase of the paper).

Here step ``t`` means "after ``t`` optimizer steps, before step ``t + 1``";
``t0 = start_epoch * steps_per_epoch`` and ``t0 + n*dt`` is the last multiple of ``dt`` from
``t0`` within ``end_epoch * steps_per_epoch`` (``dt`` = ``frequency`` optimizer steps; None:
one epoch, so the sparsity rises at the start of epochs ``start_epoch + 1`` to
``end_epoch + 1``; ``end_epoch`` must leave at least one epoch of the recipe after it). ``s_f`` defaults to the panel's highest target. Counting: all prunable
parameters (``masks.prunable_parameters``), as every method of the workflow counts them
(**decision**; Zhu & Gupta prune weights only).

Snapshots: the weights at the end of every epoch (event = epoch; event 0 is not emitted:
the initial weights are never a solution). The workflow picks, for each target, the first
sparsity at or above it and, among that sparsity's epochs, the one its ``selection`` rule
picks (``pruning.select_snapshots``): during the schedule each sparsity lasts about an epoch,
at ``s_f`` the whole recovery phase competes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

from .masks import Mask, sparsity_report
from .pruning import magnitude_mask
from .settings import check_fields, from_mapping, setting
from .training import Callback, Recipe, train

_log = logging.getLogger(__name__)


@dataclass
class GMPSettings:
    """GMP's settings: a panel's ``gmp`` block, beside its ``recipe`` (the one training run;
    each key's description is the schema's)."""

    end_epoch: int = setting("The sparsity reaches its final value by the end of this epoch (t0 + n*dt); training "
                             "continues at it until the recipe ends.", minimum=1)
    start_epoch: int = setting("Pruning starts after this many epochs (t0).", 0, minimum=0)
    frequency: int | None = setting("Optimizer steps between pruning steps (dt; null: one epoch).", None, minimum=1)
    initial_sparsity: float = setting("Pruned parameters (%) at the first pruning step (s_i).", 0.0,
                                      minimum=0, exclusiveMaximum=100)
    final_sparsity: float | None = setting(
        "Pruned parameters (%) at the last pruning step (s_f; null: the panel's highest target).", None,
        minimum=0, exclusiveMaximum=100)
    scope: str = setting("Rank magnitudes across all layers (global) or within each tensor (layerwise).",
                         "global", enum=["global", "layerwise"])

    def __post_init__(self):
        check_fields(self, "gmp")
        if not int(self.start_epoch) < int(self.end_epoch):  # the one check across two keys
            raise ValueError(f"gmp: expected 0 <= start_epoch < end_epoch, found start_epoch="
                             f"{self.start_epoch}, end_epoch={self.end_epoch}")

    @classmethod
    def from_dict(cls, d: dict, where: str = "gmp") -> "GMPSettings":
        return from_mapping(cls, d, where)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def cubic_sparsity(t: int, t0: int, dt: int, n: int, s_i: float, s_f: float) -> float:
    """Zhu & Gupta's Eq. 1 at step ``t`` (clamped to [t0, t0 + n*dt]); fractions in, out."""
    t = min(max(t, t0), t0 + n * dt)
    return s_f + (s_i - s_f) * (1.0 - (t - t0) / (n * dt)) ** 3


@dataclass(frozen=True)
class Schedule:
    """The pruning steps of one run, in optimizer steps."""

    t0: int
    dt: int
    n: int
    s_i: float
    s_f: float

    @classmethod
    def of(cls, settings: GMPSettings, steps_per_epoch: int, final_pct: float) -> "Schedule":
        t0 = int(settings.start_epoch) * steps_per_epoch
        dt = int(settings.frequency or steps_per_epoch)
        n = (int(settings.end_epoch) * steps_per_epoch - t0) // dt
        if n < 1:
            raise ValueError(f"gmp: frequency {dt} steps leaves no pruning step between epochs "
                             f"{settings.start_epoch} and {settings.end_epoch}")
        return cls(t0, dt, n, float(settings.initial_sparsity) / 100.0, float(final_pct) / 100.0)

    def sparsity_at(self, t: int) -> float | None:
        """The sparsity to prune to after ``t`` optimizer steps, or None if ``t`` is not a
        pruning step."""
        if t < self.t0 or t > self.t0 + self.n * self.dt or (t - self.t0) % self.dt:
            return None
        return cubic_sparsity(t, self.t0, self.dt, self.n, self.s_i, self.s_f)


class GMP(Callback):
    """The schedule as a :class:`training.Callback`: prunes after the scheduled optimizer
    steps, emits a snapshot at every epoch end (module docstring)."""

    def __init__(self, schedule: Schedule, scope: str, on_snapshot, steps_per_epoch: int):
        self.schedule, self.scope, self.on_snapshot = schedule, scope, on_snapshot
        self.steps_per_epoch = steps_per_epoch
        self.steps = 0
        self.events: list[dict] = []

    def _prune_to(self, trainer, s: float) -> None:
        old = trainer.mask if trainer.mask is not None else Mask.ones(trainer.model)
        trainer.mask = magnitude_mask(trainer.model, s, mask=old, scope=self.scope).to(trainer.device)
        trainer.mask.apply(trainer.model)

    # A pruning step t acts after t optimizer steps, before step t + 1: at an epoch boundary
    # in before_epoch (so the epoch's evaluation and snapshot see the weights that trained at
    # the previous sparsity), within an epoch in after_step.
    def before_epoch(self, trainer) -> None:
        s = self.schedule.sparsity_at(self.steps)
        if s is not None and s > 0:
            self._prune_to(trainer, s)

    def after_step(self, trainer) -> None:
        self.steps += 1
        if self.steps % self.steps_per_epoch == 0:
            return  # the epoch's last step: before_epoch of the next one
        s = self.schedule.sparsity_at(self.steps)
        if s is not None and s > 0:
            self._prune_to(trainer, s)

    def after_epoch(self, trainer, record) -> None:
        model = trainer.model
        mask = trainer.mask if trainer.mask is not None else Mask.ones(model)
        mask = Mask({n: m.detach().to("cpu", copy=True) for n, m in mask.items()})
        meta = {"event": trainer.epoch, "epoch": trainer.epoch, "steps": self.steps,
                "val_loss": record.get("val_loss"), "val_error": record.get("val_error"),
                "mask_pruned_pct": 100.0 * mask.pruned_fraction, **sparsity_report(model)}
        record["pruned_params_pct"] = meta["pruned_params_pct"]
        self.events.append(meta)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        self.on_snapshot({**meta, "state_dict": state, "mask": mask})

    def state_dict(self) -> dict:
        return {"steps": self.steps, "events": self.events}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.events = state["steps"], [dict(e) for e in state["events"]]


def run(model, data, recipe: Recipe, settings: GMPSettings, *, seed: int, device, checkpoint,
        on_snapshot, on_init, augment=None, fingerprint=None, targets=(), selection="best_val",
        done=()):
    """GMP behind the gradual-method interface (``sharpminima.gradual``): one training run
    on the cubic schedule (module docstring); the rewind point is the initial weights."""
    from .gradual import GradualRun

    if settings.end_epoch >= recipe.epochs:
        raise ValueError(f"gmp.end_epoch: found {settings.end_epoch}; expected fewer than the "
                         f"recipe's {recipe.epochs} epochs (the last pruning step acts after epoch "
                         "end_epoch: at least one epoch trains at the final sparsity)")
    final = settings.final_sparsity if settings.final_sparsity is not None else max(float(t) for t in targets)
    steps_per_epoch = math.ceil(len(data.train[0]) / recipe.batch_size)
    schedule = Schedule.of(settings, steps_per_epoch, final)
    _log.info(f"[gmp] {schedule.s_i:.2%} -> {schedule.s_f:.2%} in {schedule.n} steps of "
              f"{schedule.dt} from step {schedule.t0} ({steps_per_epoch} steps per epoch)")
    if not done:
        on_init({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
    gmp = GMP(schedule, settings.scope, on_snapshot, steps_per_epoch)
    trainer = train(model, data, recipe, seed=seed, device=device, checkpoint=checkpoint,
                    callbacks=[gmp], augment=augment, evaluate_test=False, name="gmp",
                    fingerprint={"gmp": settings.to_dict(), "final_sparsity": final,
                                 **(fingerprint or {})})
    return GradualRun(events=gmp.events, epochs=trainer.epoch, history=trainer.history,
                      selection=f"{selection} among the epochs of the first sparsity at or above each target")


def work(settings: GMPSettings, epochs: int, targets=()):
    """What a run trains, for the estimate (``gradual.Stretch``): dense up to the schedule,
    the schedule's stretch at the sparsity it has half-way through time (the cubic reaches
    ``1 - 0.5^3`` of its range there), then the final sparsity to the end; a test pass per
    target."""
    from .gradual import Stretch

    final = settings.final_sparsity if settings.final_sparsity is not None else max(float(t) for t in targets)
    first, s0, s1 = float(settings.initial_sparsity), int(settings.start_epoch), int(settings.end_epoch)
    middle = first + (float(final) - first) * (1 - 0.5 ** 3)
    return [Stretch(s0, first, final=False), Stretch(s1 - s0, middle, final=False),
            Stretch(int(epochs) - s1, float(final), test_passes=len(targets))]
