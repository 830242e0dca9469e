"""LOBSTER: LOss-Based SensiTivity rEgulaRization, with gradual magnitude pruning.

Tartaglione, Bragagnolo, Fiandrotti, Grangetto, "LOss-Based SensiTivity rEgulaRization:
towards deep sparse neural networks", Neural Networks 2022 (arXiv 2011.09905); the method
of the ICANN 2020 paper this workflow reproduces. The authors' code (EIDOSLAB/LOBSTER) is
the tie-breaker where the paper is silent; where we differ from it, it is said below.

Regularisation (every mini-batch, right after the ordinary SGD step on the loss)::

    S    = |dL/dw|            the sensitivity: the mini-batch gradient that step used
    Sbar = max(0, 1 - S)      the insensitivity
    w   <- w - lambda * w * Sbar

applied to every *prunable* parameter (``masks.prunable_parameters``: weights and biases of
Linear, Conv2d and BatchNorm layers, as the authors' ``LAYERS``). Parameters with
``|dL/dw| >= 1`` do not shrink; a parameter whose gradient is ``None`` (not in the graph) has
``dL/dw = 0`` and shrinks fully. The engine zeroes the gradients of pruned parameters before
the step, so ``Sbar = 1`` there; harmless, since ``w = 0`` stays 0 (and the engine re-applies
the mask after every step anyway).

Pruning (once per epoch, on the validation loss ``record["val_loss"]``), as the authors'
``plateau_scheduler`` + ``threshold_scheduler``:

- *phase*: the stretch of training between two pruning events, with a fixed mask. Each phase
  keeps ``best`` (the lowest validation loss seen in the phase) and a copy of the weights
  (``model.state_dict()``, BatchNorm buffers included) that gave it, and a bad-epoch counter.
- an epoch is *good* when ``val_loss < best * (1 + tolerance)`` (``tolerance`` = 0.01): the
  counter goes back to 0, and when moreover ``val_loss < best`` (strictly) ``best`` and the
  best weights are updated. Otherwise the epoch is *bad* and the counter grows by one. So a
  plateau is ``pwe`` *consecutive* bad epochs, exactly as the authors' code.
- after ``pwe`` bad epochs: the best weights are restored; they are now final, and the phase's
  snapshot is emitted (below). Then the magnitude threshold ``T`` is found by bisection on the
  validation loss (:func:`magnitude_threshold_bisection`): the largest ``T`` (to the bisection's
  resolution) such that pruning every still-unpruned prunable parameter with ``|w| < T``,
  globally across layers, leaves the validation loss ``<= base * (1 + twt)``, ``base`` being
  the validation loss of the restored best weights. Those parameters are pruned for good
  (``trainer.mask``). A new phase starts with ``best`` = the validation loss of the pruned
  weights and those pruned weights as its best weights (**decision**: the authors reset
  ``best`` to +inf, so that the first epoch after pruning always becomes the best; set
  ``best_from_pruned=False`` for that), the counter at 0, and (``reset_momentum=True``,
  **decision**) the optimizer's momentum buffers cleared, so that the velocity accumulated by
  the discarded epochs is not applied to the restored weights. The authors' public code keeps
  the optimizer state across events; with ``momentum = 0`` (their MNIST recipe) the two agree.
- the dense phase starts with ``best = +inf`` (the initial weights are never a candidate).
- no pruning happens at the last epoch of the budget (it would leave a phase without
  training); the run ends at the recipe's epoch budget, or earlier with ``stop_at_sparsity``
  (percent of pruned parameters) or ``max_events`` (pruning events): once the current phase
  has reached either, its plateau ends the run instead of pruning again.

The split whose loss the threshold may worsen is the validation split (``twt_split="val"``,
**decision**); ``twt_split="train"`` measures it on the training split, which places the paper's
first LeNet-300 point (40.15 %: ours 41.08 % on the training loss, 53.79 % on the validation
loss; docs/methods.md). ``prune_val_loss`` is the validation loss of the pruned weights either way.

Bisection (**decision**, differs from the authors'): bracket ``[0, max|w|]`` over the
unpruned prunable parameters; ``bisection_steps`` halvings keeping the invariant "lower end
feasible, upper end infeasible"; the returned ``T`` is the feasible lower end, so the TWT
bound always holds. The authors start from the mean |w| and stop on a loss-difference
criterion, returning the bracket's midpoint (which may violate TWT slightly).

Snapshots (the points of the LOBSTER curve): event 0 is the dense phase, event k >= 1 the
phase after the k-th pruning. A phase's snapshot is its best-validation weights, emitted when
they become final: at the next plateau (before pruning), or at the end of the run. The
``on_snapshot`` callback receives a dict with the keys listed in :data:`SNAPSHOT_KEYS`.
Emission is at-least-once: a resumed run never emits an event that its checkpoint already
records as emitted, but a process killed between ``on_snapshot`` and the engine's checkpoint
write of that epoch re-emits the same event, with identical content, on resume. Callers write
their files atomically and overwrite.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch
import torch.nn as nn

from .masks import Mask, prunable_parameters, sparsity_report
from .settings import check_fields, from_mapping, setting
from .training import Callback, Recipe, Trainer, evaluate, seed_everything, train

_log = logging.getLogger(__name__)

#: Keys of the dict given to ``on_snapshot``.
SNAPSHOT_KEYS = (
    "event",  # 0 = dense phase, k = phase after the k-th pruning
    "epoch",  # the epoch whose end produced these weights (for a phase whose best weights are
    #           its freshly pruned ones: the epoch of the pruning event)
    "phase_start_epoch",  # epoch at whose end the phase began (0 for the dense phase)
    "final_epoch",  # epoch at whose end the snapshot became final
    "state_dict",  # best-validation weights of the phase (cpu clones, buffers included)
    "mask",  # Mask (cpu) of the phase: True = kept
    "val_loss",  # validation loss of these weights
    "val_error",  # validation error (%) of these weights
    "threshold",  # magnitude threshold T of event k (None for event 0)
    "prune_val_loss",  # validation loss right after the pruning of event k (None for event 0)
    "newly_pruned",  # parameters pruned by event k (0 for event 0)
    "mask_pruned_pct",  # 100 * pruned entries of the mask / prunable parameters
    "end",  # "plateau" | "budget" | "stop_at_sparsity" | "max_events": what made it final
    # + masks.sparsity_report(...) of the weights:
    "pruned_params", "total_params", "pruned_params_pct",
    "pruned_neurons", "total_neurons", "pruned_neurons_pct",
)


@dataclass
class LobsterSettings:
    """LOBSTER's settings: a panel's ``lobster`` block in config.yaml, beside its ``recipe``
    (each key's description is the schema's)."""

    lmbda: float = setting("Regularisation strength lambda of w <- w - lambda*w*max(0, 1-|dL/dw|).", minimum=0)
    twt: float = setting("Threshold worsening tolerance (relative rise of the validation loss a pruning may cause).",
                         minimum=0)
    pwe: int = setting("Plateau waiting epochs (bad epochs before a pruning event).", minimum=1)
    tolerance: float = setting("An epoch is good when val_loss < best * (1 + tolerance).", 0.01, minimum=0)
    bisection_steps: int = setting("Halvings of the threshold bracket per pruning event.", 20, minimum=1)
    stop_at_sparsity: float | None = setting(
        "Stop after the phase that reached this pruned-parameter % (null: run the whole epoch budget).", None)
    max_events: int | None = setting("Stop after this many pruning events (null: no limit).", None, minimum=1)
    reset_momentum: bool = setting(
        "Clear the optimizer's momentum at each pruning event (decision; no effect with momentum 0).", True)
    best_from_pruned: bool = setting(
        "A new phase starts with the pruned weights as its best (decision); false = the authors' reset of "
        "best to +inf.", True)
    twt_split: str = setting(
        "The split whose loss a pruning event may worsen by at most twt: val (decision) or train (places "
        "the paper's first LeNet-300 point; docs/methods.md).", "val", enum=["val", "train"])

    def __post_init__(self):
        check_fields(self, "lobster")

    @classmethod
    def from_dict(cls, d: dict, where: str = "lobster") -> "LobsterSettings":
        return from_mapping(cls, d, where)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------------------
# The two separately testable pieces
# ----------------------------------------------------------------------------------------


@torch.no_grad()
def lobster_update_(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None],
                    lmbda: float) -> None:
    """In place, for every pair: ``w <- w - lmbda * w * max(0, 1 - |g|)``.

    ``grads[i] is None`` counts as a zero gradient (full shrink). Vectorised with
    ``torch._foreach`` ops (one kernel per op for all tensors of a device)."""
    params = list(params)
    if not params or lmbda == 0:
        return
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    sbar = torch._foreach_abs(grads)          # S = |g| (new tensors, grads untouched)
    torch._foreach_neg_(sbar)
    torch._foreach_add_(sbar, 1.0)            # 1 - S
    torch._foreach_clamp_min_(sbar, 0.0)      # Sbar = max(0, 1 - S)
    torch._foreach_mul_(sbar, params)         # w * Sbar
    torch._foreach_add_(params, sbar, alpha=-lmbda)


@torch.no_grad()
def magnitude_threshold_bisection(
    model: nn.Module,
    mask: Mask | None,
    evaluate_fn: Callable[[nn.Module], float],
    base_loss: float,
    twt: float,
    steps: int = 20,
) -> tuple[float, Mask, float]:
    """Find the largest magnitude threshold ``T`` (to ``max|w| / 2**steps``) such that pruning
    every unpruned prunable parameter with ``|w| < T`` (globally) keeps
    ``evaluate_fn(model, trial_mask) <= base_loss * (1 + twt)``; prune them. The model holds
    the trial's pruned weights when ``evaluate_fn`` is called; ``trial_mask`` (``{name: bool
    tensor}``) lets it compute through the trial's compacted network.

    Bracket ``[0, max|w|]`` over the unpruned prunable parameters; ``T = max|w|`` is tried
    first (accepted if feasible), then ``steps`` halvings keep the lower end feasible and the
    upper end infeasible. On return the model holds the pruned weights; returns
    ``(T, new_mask, loss)`` with ``new_mask = mask & (|w| >= T)`` and ``loss`` its
    ``evaluate_fn`` value (``T = 0`` prunes nothing). The loss need not be monotone in ``T``:
    the result is a feasible point at the boundary the bisection finds."""
    params = prunable_parameters(model)
    if mask is None:
        mask = Mask.ones(model)
    names = list(params)
    orig = {n: params[n].detach().clone() for n in names}
    keep = {n: mask[n].to(orig[n].device) for n in names}
    mags = {n: orig[n].abs() for n in names}
    bound = base_loss * (1.0 + twt)

    def masks_for(T: float) -> dict[str, torch.Tensor]:
        return {n: keep[n] & (mags[n] >= T) for n in names}

    def set_weights(m: dict[str, torch.Tensor]) -> None:
        for n in names:
            params[n].copy_(orig[n] * m[n].to(orig[n].dtype))

    def trial(T: float) -> float:
        m = masks_for(T)
        set_weights(m)
        return float(evaluate_fn(model, m))

    kept_max = [mags[n][keep[n]].max() for n in names if keep[n].any()]
    hi = float(torch.stack(kept_max).max()) if kept_max else 0.0
    lo, loss_lo = 0.0, None
    if hi > 0.0:
        loss_hi = trial(hi)
        if loss_hi <= bound:
            lo, loss_lo = hi, loss_hi
        else:
            for _ in range(int(steps)):
                mid = 0.5 * (lo + hi)
                loss_mid = trial(mid)
                if loss_mid <= bound:
                    lo, loss_lo = mid, loss_mid
                else:
                    hi = mid
    new = masks_for(lo) if lo > 0.0 else {n: keep[n].clone() for n in names}
    set_weights(new)
    if loss_lo is None:
        loss_lo = float(evaluate_fn(model, new))
    return lo, Mask(new), loss_lo


# ----------------------------------------------------------------------------------------
# The callback
# ----------------------------------------------------------------------------------------


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _cpu_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


class Lobster(Callback):
    """LOBSTER as a :class:`training.Callback` (see the module docstring for the semantics).

    ``on_snapshot(snapshot)`` is called with a dict of :data:`SNAPSHOT_KEYS` each time a
    phase's best weights become final. ``events`` lists the emitted snapshots' metadata
    (everything but ``state_dict`` and ``mask``); ``initial_state`` holds (cpu) the weights the
    model had when training started, i.e. the rewind point of Frankle & Carbin."""

    def __init__(self, settings: LobsterSettings,
                 on_snapshot: Callable[[dict], None] | None = None):
        self.settings = settings
        self.on_snapshot = on_snapshot
        self._params: list[nn.Parameter] | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self.initial_state: dict[str, torch.Tensor] | None = None
        self.event = 0                      # index of the current phase
        self.best = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch = 0
        self.best_val_error: float | None = None
        self.bad = 0
        self.phase_start_epoch = 0
        self.threshold: float | None = None
        self.prune_val_loss: float | None = None
        self.newly_pruned = 0
        self.phase_pruned_pct = 0.0         # pruned params % of the weights right after the event
        self.finished = False               # the last phase's snapshot was emitted
        self.events: list[dict] = []

    # -- hooks ---------------------------------------------------------------------------
    def on_start(self, trainer: Trainer) -> None:
        self.initial_state = _cpu_state(trainer.model.state_dict())

    def after_step(self, trainer: Trainer) -> None:
        if self._params is None:
            self._params = list(prunable_parameters(trainer.model).values())
        lobster_update_(self._params, [p.grad for p in self._params], self.settings.lmbda)

    def after_epoch(self, trainer: Trainer, record: dict) -> None:
        if self.finished:
            return
        s = self.settings
        if "val_loss" not in record:
            raise ValueError("LOBSTER needs a validation set: the epoch record has no val_loss")
        current = float(record["val_loss"])
        if current < self.best * (1.0 + s.tolerance):
            self.bad = 0
            if current < self.best:
                self.best = current
                self.best_state = _clone_state(trainer.model)
                self.best_epoch = trainer.epoch
                self.best_val_error = record.get("val_error")
        else:
            self.bad += 1
        record["lobster_phase"] = self.event
        record["lobster_bad_epochs"] = self.bad

        last_epoch = trainer.epoch >= trainer.recipe.epochs
        if self.bad >= s.pwe and not last_epoch:
            stop_reason = self._stop_reason(trainer)
            self._restore_best(trainer)
            self._emit(trainer, end=stop_reason or "plateau")
            if stop_reason is not None:
                self.finished = True
                trainer.stop = True
                return
            self._prune(trainer, record)
        elif last_epoch:
            self.finalize(trainer, end="budget")

    def finalize(self, trainer: Trainer, end: str = "budget") -> None:
        """Emit the current phase's best weights as the last snapshot (once). At the end of
        the budget the engine's model keeps the last epoch's weights (the snapshot holds the
        best ones); after a stop setting ended the run it holds the restored best weights."""
        if self.finished:
            return
        if self.best_state is None:  # no epoch of this phase was run
            v = evaluate(trainer.model, *trainer.data.val, trainer.recipe.eval_batch_size)
            self.best, self.best_val_error = v["loss"], v["error"]
            self.best_state = _clone_state(trainer.model)
            self.best_epoch = trainer.epoch
        self._emit(trainer, end=end)
        self.finished = True

    # -- pieces --------------------------------------------------------------------------
    def _stop_reason(self, trainer: Trainer) -> str | None:
        s = self.settings
        if s.max_events is not None and self.event >= s.max_events:
            return "max_events"
        if s.stop_at_sparsity is not None and self.event > 0:
            if self.phase_pruned_pct >= s.stop_at_sparsity - 1e-9:
                return "stop_at_sparsity"
        return None

    @torch.no_grad()
    def _restore_best(self, trainer: Trainer) -> None:
        trainer.model.load_state_dict(self.best_state)

    def _mask_now(self, trainer: Trainer) -> Mask:
        return trainer.mask if trainer.mask is not None else Mask.ones(trainer.model)

    @torch.no_grad()
    def _emit(self, trainer: Trainer, end: str) -> None:
        model = trainer.model
        current = _clone_state(model)
        model.load_state_dict(self.best_state)
        report = sparsity_report(model)
        val_error = self.best_val_error
        if val_error is None:
            val_error = evaluate(model, *trainer.data.val, trainer.recipe.eval_batch_size)["error"]
        model.load_state_dict(current)
        mask = Mask({n: m.detach().to("cpu", copy=True) for n, m in self._mask_now(trainer).items()})
        meta = {
            "event": self.event,
            "epoch": self.best_epoch,
            "phase_start_epoch": self.phase_start_epoch,
            "final_epoch": trainer.epoch,
            "val_loss": self.best,
            "val_error": float(val_error),
            "threshold": self.threshold,
            "prune_val_loss": self.prune_val_loss,
            "newly_pruned": self.newly_pruned,
            "mask_pruned_pct": 100.0 * mask.pruned_fraction,
            "end": end,
            **report,
        }
        self.events.append(meta)
        _log.info(
            f"[lobster] event {self.event} final ({end}): best epoch {self.best_epoch}, "
            f"val_loss {self.best:.5g}, pruned params {report['pruned_params_pct']:.3f} %, "
            f"pruned neurons {report['pruned_neurons_pct']:.3f} %"
        )
        if self.on_snapshot is not None:
            self.on_snapshot({**meta, "state_dict": _cpu_state(self.best_state), "mask": mask})

    @torch.no_grad()
    def _prune(self, trainer: Trainer, record: dict) -> None:
        s = self.settings
        model, data = trainer.model, trainer.data
        bs = trainer.recipe.eval_batch_size
        old = self._mask_now(trainer)
        kept_before = old.kept
        split = getattr(data, s.twt_split)
        shape = split[0].shape[1:]

        def trial_loss(m: nn.Module, trial) -> float:  # compacted where the run computes so
            fwd = trainer.compaction.evaluator_for(trainer, trial, shape)
            return evaluate(m, *split, bs, forward=fwd)["loss"]

        base = trial_loss(model, old)  # the restored best weights

        T, new_mask, loss = magnitude_threshold_bisection(
            model, old, trial_loss, base, s.twt, s.bisection_steps)
        trainer.mask = new_mask.to(trainer.device)
        trainer.mask.apply(model)
        v = evaluate(model, *data.val, bs) if s.twt_split != "val" or s.best_from_pruned else None
        if s.reset_momentum:
            trainer.optimizer.state.clear()  # a fresh SGD: momentum buffers rebuilt from 0
        self.event += 1
        self.threshold = float(T)
        self.prune_val_loss = float(loss) if s.twt_split == "val" else v["loss"]
        self.newly_pruned = kept_before - new_mask.kept
        self.phase_start_epoch = trainer.epoch
        self.bad = 0
        if s.best_from_pruned:
            self.best = v["loss"]
            self.best_val_error = v["error"]
            self.best_state = _clone_state(model)
            self.best_epoch = trainer.epoch
        else:
            self.best = math.inf
            self.best_state = None
            self.best_val_error = None
        rep = sparsity_report(model)
        self.phase_pruned_pct = rep["pruned_params_pct"]
        record["lobster_event"] = self.event
        record["lobster_threshold"] = self.threshold
        record["pruned_params_pct"] = rep["pruned_params_pct"]
        record["pruned_neurons_pct"] = rep["pruned_neurons_pct"]
        ahead = ""
        if s.stop_at_sparsity is not None:  # the budget's ETA is an upper bound: say where the stop lies
            at = projected_stop(pruning_events(trainer.history) + [(trainer.epoch, rep["pruned_params_pct"])],
                                s.stop_at_sparsity)
            if at is not None:
                ahead = f"; {s.stop_at_sparsity:g} % at epoch ~{at:.0f} at the pace of the last {PACE_EVENTS} events"
        _log.info(
            f"[lobster] event {self.event} at epoch {trainer.epoch}: T={T:.4g} pruned "
            f"{self.newly_pruned} more, now {rep['pruned_params_pct']:.3f} % params, "
            f"{s.twt_split}_loss {base:.5g} -> {loss:.5g} (bound {base * (1 + s.twt):.5g}){ahead}"
        )

    # -- resume --------------------------------------------------------------------------
    _STATE_FIELDS = ("event", "best", "best_epoch", "best_val_error", "bad",
                     "phase_start_epoch", "threshold", "prune_val_loss", "newly_pruned",
                     "phase_pruned_pct", "finished", "events")

    def state_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self._STATE_FIELDS}
        out["best_state"] = self.best_state
        out["initial_state"] = self.initial_state
        out["settings"] = self.settings.to_dict()
        return out

    def load_state_dict(self, state: dict) -> None:
        saved = dict(state.get("settings") or {})
        for f in dataclasses.fields(LobsterSettings):  # a setting added since: its default
            if f.name not in saved and f.default is not dataclasses.MISSING:
                saved[f.name] = f.default
        if saved != self.settings.to_dict():
            raise ValueError(
                "the resume checkpoint was written with other LOBSTER settings "
                f"({state.get('settings')}); delete it to start afresh"
            )
        for k in self._STATE_FIELDS:
            setattr(self, k, state[k])
        self.events = [dict(e) for e in self.events]
        self.best_state = state["best_state"]
        self.initial_state = state["initial_state"]


# ----------------------------------------------------------------------------------------
# Where the first event falls, by the split the worsening is measured on
# ----------------------------------------------------------------------------------------

#: the splits whose loss a pruning may worsen by at most TWT (``twt_split``)
TWT_SPLITS = ("val", "train")


@torch.no_grad()
def first_event(model: nn.Module, data, settings: LobsterSettings, at_pct: Sequence[float] = (),
                batch_size: int = 1000) -> list[dict]:
    """Where a run's first pruning event falls with the worsening measured on each split
    (docs/methods.md §2: why LOBSTER's first event overshoots the paper's first point).

    ``model`` holds the dense phase's best weights (a run's event-0 snapshot). For each split
    of :data:`TWT_SPLITS`, the run's own threshold search (:func:`magnitude_threshold_bisection`,
    ``settings.twt`` and ``bisection_steps``, from the dense mask) with that split's loss; for
    each of ``at_pct``, global magnitude pruning of that percentage of the prunable parameters
    (the paper's points). One row each: ``where`` ("twt <split>" or "at <pct>"), the pruned
    parameters and neurons (%, as the run's events count them) and the loss rise on every split
    (%). The run's event with ``twt_split: val`` is the first row's (its bisection evaluates
    through the compacted network, the same numbers to fp32 rounding). ``model`` is restored."""
    base = {sp: evaluate(model, *getattr(data, sp), batch_size)["loss"] for sp in TWT_SPLITS}
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    rows = []

    def row(where: str) -> None:
        rep = sparsity_report(model)
        rows.append({"where": where, "pruned_params_pct": rep["pruned_params_pct"],
                     "pruned_neurons_pct": rep["pruned_neurons_pct"],
                     **{f"{sp}_loss_rise_pct": 100.0 * (evaluate(model, *getattr(data, sp), batch_size)["loss"]
                                                       / base[sp] - 1.0) for sp in TWT_SPLITS}})
        model.load_state_dict(dense)

    for sp in TWT_SPLITS:
        x, y = getattr(data, sp)
        magnitude_threshold_bisection(model, None, lambda m, _mask, x=x, y=y: evaluate(m, x, y, batch_size)["loss"],
                                      base[sp], settings.twt, settings.bisection_steps)
        row(f"twt {sp}")
    params = prunable_parameters(model)
    mags = torch.cat([p.abs().flatten() for p in params.values()]).sort().values
    for pct in at_pct:
        k = min(max(round(pct / 100.0 * len(mags)), 0), len(mags) - 1)
        for p in params.values():  # the k smallest magnitudes (ties at the k-th pruned with it)
            p.mul_(p.abs() > mags[k - 1] if k else torch.ones_like(p, dtype=torch.bool))
        row(f"at {pct:g}")
    return rows


# ----------------------------------------------------------------------------------------
# Where a run under way will stop
# ----------------------------------------------------------------------------------------

#: the pruning events whose pace :func:`projected_stop` extends
PACE_EVENTS = 3


def pruning_events(history: Sequence[dict]) -> list[tuple[int, float]]:
    """A LOBSTER run's pruning events, ``(epoch, pruned parameters %)``, from its epoch records."""
    return [(int(r["epoch"]), float(r["pruned_params_pct"])) for r in history if "lobster_event" in r]


def projected_stop(events: Sequence[tuple[int, float]], stop_at: float,
                   last: int = PACE_EVENTS) -> float | None:
    """The epoch at which a run with these pruning ``events`` (``(epoch, pruned %)``, in order)
    reaches ``stop_at`` % pruned if the pace of its last ``last`` events holds: the kept
    fraction shrinking by one factor per epoch, a straight line in log(kept) over epochs
    through the ``last``-th last event and the last. A forecast for a run under way (our
    decision: the simplest pace that fits), not a bound: pruning slows as the network thins.
    LeNet-300's paper-scale run (stop at 98 %, reached at epoch 1,004) reached it at 0.96-1.34x
    the epoch projected at each event from 90 % pruned on, 1.9-3.1x before (docs/reproduction.md).
    None before ``last`` + 1 events, or when the pace is not pruning."""
    if len(events) < last + 1:
        return None
    (e0, p0), (e1, p1) = events[-last - 1], events[-1]
    if p1 >= stop_at:
        return float(e1)
    rate = (math.log(100.0 - p1) - math.log(100.0 - p0)) / (e1 - e0) if e1 > e0 else 0.0
    if not rate < 0:
        return None
    return e1 + math.log((100.0 - stop_at) / (100.0 - p1)) / rate


# ----------------------------------------------------------------------------------------
# One LOBSTER run
# ----------------------------------------------------------------------------------------


def run_lobster(
    model: nn.Module | str,
    data,
    recipe: Recipe,
    settings: LobsterSettings,
    *,
    seed: int,
    device="cpu",
    checkpoint=None,
    on_snapshot: Callable[[dict], None] | None = None,
    on_init: Callable[[dict], None] | None = None,
    augment: Callable | None = None,
    callbacks: Iterable[Callback] = (),
    evaluate_test: bool = True,
    num_classes: int | None = None,
    fingerprint: dict | None = None,
) -> Trainer:
    """Train ``model`` with LOBSTER for ``recipe.epochs`` epochs (or until a stop setting).

    ``model`` is a module *right after its seeded initialisation* (``seed_everything(s)``
    then ``build_model``), or a registered model name, in which case it is built here after
    ``seed_everything(seed)`` (``num_classes`` defaults to ``data.num_classes``). The weights
    at entry are the rewind point of Frankle & Carbin: ``on_init(state)`` receives them (cpu
    clones) before any training step, and the returned trainer carries them as
    ``trainer.initial_state`` (kept in the LOBSTER state, so a resumed run returns the true
    initial weights). ``trainer.lobster`` is the callback (``events``: metadata of every
    snapshot). Extra ``callbacks`` run before LOBSTER's."""
    if isinstance(model, str):
        seed_everything(seed)
        from .models import build_model

        nc = num_classes if num_classes is not None else getattr(data, "num_classes", 10)
        model = build_model(model, num_classes=nc)
    lob = Lobster(settings, on_snapshot=on_snapshot)
    if on_init is not None:
        from pathlib import Path

        if checkpoint is None or not Path(checkpoint).exists():
            on_init(_cpu_state(model.state_dict()))
    trainer = train(model, data, recipe, seed=seed, device=device, checkpoint=checkpoint,
                    callbacks=[*callbacks, lob], augment=augment, evaluate_test=evaluate_test,
                    name="lobster",
                    fingerprint={"lobster": dataclasses.asdict(settings), **(fingerprint or {})})
    lob.finalize(trainer, end="budget" if trainer.epoch >= recipe.epochs else "stopped")
    trainer.lobster = lob
    trainer.initial_state = lob.initial_state
    return trainer


def run(model, data, recipe: Recipe, settings: LobsterSettings, *, seed: int, device, checkpoint,
        on_snapshot, on_init, augment=None, fingerprint=None, targets=(), selection="best_val",
        done=()):
    """LOBSTER behind the gradual-method interface (``sharpminima.gradual``): one
    :func:`run_lobster`, its snapshots the phases' best-validation weights (LOBSTER's own
    selection, whatever ``selection`` says). ``targets`` and ``done`` are not needed: the
    stop settings end the run, and the engine's checkpoint holds the emitted events."""
    from .gradual import GradualRun

    trainer = run_lobster(model, data, recipe, settings, seed=seed, device=device,
                          checkpoint=checkpoint, on_snapshot=on_snapshot, on_init=on_init,
                          augment=augment, evaluate_test=False, fingerprint=fingerprint)
    return GradualRun(events=trainer.lobster.events, epochs=trainer.epoch, history=trainer.history,
                      selection="best_val (per phase: LOBSTER's own rule)")


def work(settings: LobsterSettings, epochs: int, targets=()):
    """What a run trains, for the estimate (``gradual.Stretch``): at most ``epochs`` LOBSTER
    steps per training sample (a stop setting may end it earlier: an upper bound), at the
    masks of its phases; at most one pruning event per ``pwe + 1`` epochs, each bisecting the
    threshold with ``bisection_steps`` passes over the ``twt_split``; a test pass per target."""
    from .gradual import Stretch

    events = int(epochs) // (int(settings.pwe) + 1)
    passes = events * (int(settings.bisection_steps) + 2)  # the base, the halvings, the pruned weights
    return [Stretch(int(epochs), None, lobster_step=True, test_passes=len(targets),
                    **{"val_passes" if settings.twt_split == "val" else "train_passes": passes})]
