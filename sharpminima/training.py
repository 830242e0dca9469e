"""The one training engine every method runs through.

Dense training, LOBSTER, one-shot fine-tuning and the three retraining baselines all call
:func:`train`; methods plug in through :class:`Callback`. What the engine guarantees:

- the whole data set lives as tensors on the device; mini-batches are index permutations
  drawn from a dedicated generator (no DataLoader, no per-image Python work);
- SGD with momentum, weight decay and a multi-step learning-rate schedule;
- reproducibility: same seed, same device, same thread count -> identical metrics;
- a checkpoint after every epoch (model, optimizer, schedule, RNG states, callback states,
  mask, history) from which an interrupted run resumes to the same final numbers; it carries
  the run's fingerprint (recipe, seed, selection and the caller's ``fingerprint``: settings,
  data files, starting weights), and a checkpoint of another run is never resumed: the run
  starts over and its log says which file and what differed;
- a mask, if given, holds after every step: pruned parameters are exactly 0.0 (their
  gradients are zeroed before the step, and the weights re-masked after it);
- training through the compacted network (``Recipe.compact_training``, :class:`Compaction`):
  while the mask is fixed, forward and backward run through ``compact.compact_model``'s
  smaller network, whose gradients land on the full model's parameters; the same numbers as
  the dense computation up to fp32 summation order, several times faster at high sparsity;
- a clear :class:`DivergedError` naming the epoch when the loss becomes NaN or infinite;
- one selection rule for every method (:data:`SELECTIONS`): the weights a run returns are
  those of its last epoch (``last``), of its epoch with the lowest validation loss
  (``best_val``: strictly lower than every earlier epoch's, so ties keep the earliest; the
  criterion LOBSTER uses to pick a phase's weights) or with the lowest validation error
  (``best_val_error``); ``trainer.selected_epoch`` says which. The weights every rule would
  pick are kept too (:meth:`Trainer.selection_candidates`), so that a result can be judged
  under each rule without training again;
- one log line per epoch (``logging``, logger ``sharpminima.training``) with losses, errors,
  learning rate and ETA.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import optim
from .masks import Mask
from .provenance import atomic_torch_save
from .settings import from_mapping

_log = logging.getLogger(__name__)


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


#: Which weights a run returns: those of its lowest-validation-loss epoch, of its
#: lowest-validation-error epoch, or of its last epoch.
SELECTIONS = ("best_val", "best_val_error", "last")
#: the validation metric each "best" rule minimises
SELECTION_METRIC = {"best_val": "val_loss", "best_val_error": "val_error"}


#: How a masked run computes: ``auto`` through the compacted network where :func:`compaction_pays`,
#: ``always`` wherever ``compact.py`` supports the model, ``never`` the dense network.
COMPACT_MODES = ("auto", "always", "never")
#: ``auto``'s rule, measured on this 2-core CPU (benchmarks/bench_compact_training.py, one
#: epoch of 54,000 MNIST images per path): the compacted path costs a fixed ~1.3 ms per step of
#: gathers, scatters and bookkeeping, so it pays where it saves more multiply-adds than that
#: buys. LeNet-300 compacted at ratios 0.59 / 0.33 / 0.16 ran 0.8x / 0.95x / 1.16x the dense
#: path's speed (it saves at most 0.22 M multiply-adds per sample); LeNet-5 at 0.34 / 0.17 ran
#: 1.8x / 2.8x (1.5-1.9 M saved per sample).
COMPACT_MAX_RATIO = 0.8
COMPACT_MIN_SAVED = 200_000  # multiply-adds saved per sample's forward pass


def compaction_pays(compacted: int, dense: int, device) -> bool:
    """``auto``'s decision, from the mask alone (so that a run is deterministic): at most
    :data:`COMPACT_MAX_RATIO` of the dense multiply-adds and at least
    :data:`COMPACT_MIN_SAVED` saved per sample, on the CPU (**decision**: on a GPU small
    LeNet steps are bound by kernel launches, which the gathers add to; not measured there,
    so ``auto`` keeps the dense path and ``always`` forces the compacted one)."""
    return (torch.device(device).type == "cpu" and compacted <= COMPACT_MAX_RATIO * dense
            and dense - compacted >= COMPACT_MIN_SAVED)


def check_selection(selection: str) -> str:
    if selection not in SELECTIONS:
        raise ValueError(f"selection: expected one of {list(SELECTIONS)}, got {selection!r}")
    return selection


#: the optimizers a recipe may name
OPTIMIZERS = ("sgd", "adam")


@dataclass
class Recipe:
    """Optimisation settings of one training run (a panel's recipe in config.yaml)."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    nesterov: bool = False
    eval_batch_size: int = 1000
    compact_training: str = "auto"
    # sgd, or adam (Frankle & Carbin's LeNet recipes; optim.Adam as torch's, betas 0.9 / 0.999, with
    # weight_decay as its L2 term)
    optimizer: str = "sgd"

    def __post_init__(self):
        if self.compact_training not in COMPACT_MODES:
            raise ValueError(f"compact_training: expected one of {list(COMPACT_MODES)}, "
                             f"got {self.compact_training!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.optimizer == "adam" and (self.momentum or self.nesterov):
            raise ValueError(f"optimizer: adam takes no momentum or nesterov (its betas are its "
                             f"momentum); got momentum={self.momentum}, nesterov={self.nesterov}")

    def make_optimizer(self, params):
        if self.optimizer == "adam":
            return optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        return optim.SGD(params, lr=self.lr, momentum=self.momentum,
                         weight_decay=self.weight_decay, nesterov=self.nesterov)

    @classmethod
    def from_dict(cls, d: dict, where: str = "recipe") -> "Recipe":
        return from_mapping(cls, d, where)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: the keys of an epoch's history record that time it (wall, CPU): the only ones two runs of
#: the same seed may differ in
TIMING_KEYS = ("epoch_time_s", "epoch_cpu_s")


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` takes CUDA where this process finds a GPU, else the CPU; ``cpu``; ``cuda``
    (or ``cuda:N``), which fails clearly where no GPU is visible."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device: {spec!r} was asked for, but this job sees no CUDA GPU "
            "(use device: auto or cpu, or request GPUs with gpus_per_job)"
        )
    return dev


def seed_everything(seed: int) -> None:
    """Seed torch's global RNGs (model initialisation, random masks, noise directions)."""
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000,
             forward: Callable | None = None) -> dict:
    """Mean cross-entropy loss and classification error (%) over ``(x, y)``, in eval mode;
    ``forward``: computes the model's logits another way (its compacted network)."""
    was_training = model.training
    model.eval()
    # a conv net handed over in the standard layout is evaluated channels-last (LeNet-5 over
    # 10,000 images, 1 thread: 2.75 s against 5.2 s) and handed back as it came
    convert = (forward is None and channels_last_pays(model, x.device)
               and not all(m.weight.is_contiguous(memory_format=torch.channels_last)
                           for m in model.modules() if isinstance(m, nn.Conv2d)))
    if convert:
        model.to(memory_format=torch.channels_last)
    forward = forward or model
    loss_sum = torch.zeros((), device=x.device, dtype=torch.float64)
    wrong = torch.zeros((), device=x.device, dtype=torch.int64)
    try:
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            out = forward(xb)
            loss_sum += F.cross_entropy(out, yb, reduction="sum").double()
            wrong += (out.argmax(1) != yb).sum()
    finally:
        model.train(was_training)
        if convert:
            model.to(memory_format=torch.contiguous_format)
    n = max(len(x), 1)
    return {"loss": float(loss_sum) / n, "error": 100.0 * float(wrong) / n}


def channels_last_pays(model: nn.Module, device) -> bool:
    """Whether ``model`` computes in channels-last layout on ``device``: conv nets on the CPU
    (oneDNN's native layout: training ~1.3-1.4x faster, benchmarks/bench_training.py;
    evaluation ~2x). Values are the same up to fp32 summation order."""
    return (torch.device(device).type == "cpu"
            and any(isinstance(m, nn.Conv2d) for m in model.modules()))


class Callback:
    """A method's hooks into the loop. ``before_epoch`` runs before each epoch's first step,
    ``after_step`` after each optimizer step (before the mask is re-applied), ``after_epoch``
    after each epoch's evaluation; any may change
    ``trainer.mask`` or set ``trainer.stop``. State that must survive a resume goes through
    ``state_dict`` / ``load_state_dict``."""

    def on_start(self, trainer: "Trainer") -> None:
        pass

    def before_epoch(self, trainer: "Trainer") -> None:
        pass

    def after_step(self, trainer: "Trainer") -> None:
        pass

    def after_epoch(self, trainer: "Trainer", record: dict) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class Compaction:
    """The compacted network of the trainer's current mask, rebuilt when the mask changes.

    Exactness: ``compact.compact_model`` computes the logits of the masked network exactly
    (dead units dropped, the constant outputs of units without a kept incoming weight from a
    live unit folded into the next layer's bias), and its ``functional`` form is
    differentiable with respect to the full parameters: every kept weight and every bias,
    those of constant units included, gets the gradient the dense computation gives it.
    Pruned entries get zero or a gradient the engine zeroes anyway (as in the dense path); a
    parameter outside the compacted graph gets an explicit zero gradient, as the dense
    backward gives it (SGD would otherwise skip its weight decay and momentum).

    The contract with callbacks: a change of mask assigns a new ``trainer.mask`` (LOBSTER,
    GMP and IMP do); the compaction follows the object, not its contents."""

    def __init__(self, mode: str, name: str):
        self.mode, self.name = mode, name
        self.mask = None  # the mask the current decision was made for
        self.net = None
        self.info: dict | None = None

    def net_for(self, trainer: "Trainer", input_shape):
        """The compacted network for ``trainer.mask``, or None for the dense path."""
        mask = trainer.mask
        if self.mode == "never" or mask is None:
            self.mask, self.net = mask, None
            return None
        if mask is self.mask:
            return self.net
        self.mask, self.net = mask, None
        t0 = time.perf_counter()
        net, self.info = compacted_network(trainer.model, mask, input_shape, self.mode, trainer.device)
        if net is None:
            _log.info(f"[{self.name}] dense path: {self.info['reason']}")
            return None
        self.net, self.nhwc = net, trainer.channels_last
        self.params = dict(trainer.model.named_parameters())
        _log.info(f"[{self.name}] compacted path at {100 * mask.pruned_fraction:.2f} % pruned: alive units "
                  f"{self.info['alive_units']}; {self.info['multiply_add_ratio']:.1%} of the dense multiply-adds "
                  f"(built in {time.perf_counter() - t0:.2f}s)")
        return net

    def logits(self, xb):
        return self.net.functional(self.params, xb, nhwc=self.nhwc)

    def fill_grads(self) -> None:
        for p in self.params.values():
            if p.grad is None:
                p.grad = torch.zeros_like(p)

    def evaluator(self):
        """Inference through the compacted network at the current weights, or None."""
        return None if self.net is None else self.net.load(self.params)

    def evaluator_for(self, trainer: "Trainer", mask, input_shape):
        """Inference through the compacted network of another ``mask`` (``{name: bool
        tensor}``) at the model's current weights, where this run's rule would compute
        compacted; else None (the dense path). For LOBSTER's threshold trials: a network is
        built per trial (~10-30 ms for a LeNet, against ~200 ms for a dense LeNet-5
        validation pass)."""
        return compacted_network(trainer.model, mask, input_shape, self.mode, trainer.device)[0]


def compacted_network(model: nn.Module, mask, input_shape, mode: str, device):
    """``(net, info)``: the compacted network of ``model`` under ``mask`` (``{name: bool
    tensor}``) where ``mode`` (:data:`COMPACT_MODES`) and :func:`compaction_pays` have it
    compute, else ``(None, info)`` with ``info["reason"]``. The one decision the training
    steps, LOBSTER's threshold trials and the estimate take."""
    if mode == "never" or mask is None:
        return None, {"compacted": False, "reason": "compact_training: never" if mask is not None else "no mask"}
    from .compact import compact_model

    net, info = compact_model(model, mask)
    if net is None:
        return None, {"compacted": False, "reason": info["reason"]}
    ours, full = net.multiply_adds(input_shape)
    ratio = ours / max(full, 1)
    out = {"compacted": mode == "always" or compaction_pays(ours, full, device),
           "multiply_add_ratio": round(ratio, 4),
           "alive_units": ", ".join(f"{k} {v['alive']}/{v['units']}" for k, v in info["layers"].items())}
    if not out["compacted"]:
        out["reason"] = (f"the compacted network would compute {ratio:.0%} of the dense multiply-adds, "
                         f"saving {full - ours:,} per sample, on {device} (training.compaction_pays)")
        return None, out
    return net, out


class Trainer:
    """State of one run; built and driven by :func:`train`."""

    def __init__(self, model, data, recipe: Recipe, *, seed, device, mask=None,
                 callbacks=(), augment=None, selection="last", fingerprint=None, name="train"):
        self.device = torch.device(device)
        self.model = model.to(device)
        # train() restores the standard layout before it returns the model
        self.channels_last = channels_last_pays(model, self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.data = data
        self.recipe = recipe
        self.seed = seed
        self.mask: Mask | None = mask.to(device) if mask is not None else None
        self.callbacks = list(callbacks)
        self.augment = augment
        self.optimizer = recipe.make_optimizer(model.parameters())
        self.scheduler = optim.MultiStepLR(self.optimizer, milestones=list(recipe.milestones),
                                           gamma=recipe.gamma)
        # Batches and augmentation draw from their own generator, so that evaluation or a
        # callback's randomness never shifts the data order (and resume restores it exactly).
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.epoch = 0  # epochs completed
        self.history: list[dict] = []
        self.stop = False
        self.last_loss: torch.Tensor | None = None
        # every "best" rule's candidate so far: its metric's value, the epoch and the weights
        self.selection = check_selection(selection)
        self.best = {rule: {"value": math.inf, "epoch": None, "state": None} for rule in SELECTION_METRIC}
        self.last_state: dict | None = None  # the last epoch's weights, kept by apply_selection
        self.selected_epoch: int | None = None  # set when train() returns
        self.fingerprint = fingerprint
        self.compaction = Compaction(recipe.compact_training, name)

    # -- checkpointing -------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "epoch": self.epoch,
            "history": self.history,
            "stop": self.stop,
            "mask": None if self.mask is None else self.mask.state_dict(),
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "recipe": self.recipe.to_dict(),
            "seed": self.seed,
            "selection": self.selection,
            "best": self.best,
            "fingerprint": self.fingerprint,
        }

    def differences(self, state: dict) -> list[str]:
        """Why ``state`` (a checkpoint) is not this run's: empty when it is."""
        from .provenance import fingerprint_diff

        out = []
        saved, now = dict(state.get("recipe") or {}), self.recipe.to_dict()
        if {k: v for k, v in saved.items() if k != "epochs"} != {k: v for k, v in now.items() if k != "epochs"}:
            out.append(f"recipe {state.get('recipe')} -> {now}")
        elif saved.get("epochs") != now["epochs"] and not state.get("epoch", 0) < min(saved.get("epochs", 0),
                                                                                      now["epochs"]):
            # another budget is the same run up to where both go (the schedule is the recipe's
            # milestones, nothing reads the budget before its last epoch), unless the checkpoint
            # is at or past either budget's end, where the old run ended (or the new one has)
            out.append(f"recipe.epochs {saved.get('epochs')} -> {now['epochs']}: the checkpoint is at epoch "
                       f"{state.get('epoch')}, the end of a budget")
        if state.get("seed") != self.seed:
            out.append(f"seed {state.get('seed')} -> {self.seed}")
        if state.get("selection", "last") != self.selection:
            out.append(f"selection {state.get('selection', 'last')} -> {self.selection}")
        if set(state.get("best") or {}) != set(SELECTION_METRIC):
            out.append("written by an older version (without every selection rule's candidate)")
        if self.fingerprint is not None or state.get("fingerprint") is not None:
            out += fingerprint_diff(state.get("fingerprint"), self.fingerprint)
        return out

    def load_state_dict(self, state: dict) -> None:
        diff = self.differences(state)
        if diff:
            raise ValueError("the checkpoint was written by another run: " + "; ".join(diff))
        if state["recipe"]["epochs"] != self.recipe.epochs:
            _log.info(f"[{self.compaction.name}] the budget moves from {state['recipe']['epochs']} to {self.recipe.epochs} "
                      f"epochs at epoch {state['epoch']}: the same run so far")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch = state["epoch"]
        self.history = state["history"]
        self.stop = state["stop"]
        self.mask = None if state["mask"] is None else Mask(state["mask"]).to(self.device)
        for cb, s in zip(self.callbacks, state["callbacks"]):
            cb.load_state_dict(s)
        self.best = state["best"]

    @property
    def best_val_loss(self) -> float:
        return self.best["best_val"]["value"]

    def _clone_weights(self) -> dict:
        return {k: t.detach().clone() for k, t in self.model.state_dict().items()}

    def consider_for_selection(self, record: dict) -> None:
        """After an epoch's evaluation: keep these weights where a rule may return them
        (every rule's, whichever the run reports: the others are judged at the end)."""
        if record.get("val_loss") is None:
            if self.selection in SELECTION_METRIC:
                raise ValueError(f"selection {self.selection} needs a validation set "
                                 "(val_samples > 0); use selection: last without one")
            return
        for rule, metric in SELECTION_METRIC.items():
            b = self.best[rule]
            if record[metric] < b["value"]:
                b.update(value=record[metric], epoch=self.epoch, state=self._clone_weights())

    def apply_selection(self) -> None:
        """Load the weights the rule selects; ``selected_epoch`` says which epoch's they are."""
        self.last_state = self._clone_weights()
        b = self.best.get(self.selection)
        if b is not None and b["state"] is not None:
            self.model.load_state_dict(b["state"])
            self.selected_epoch = b["epoch"]
        else:
            self.selected_epoch = self.epoch

    def selection_candidates(self) -> dict[str, tuple[int, dict]]:
        """After :meth:`apply_selection`: per rule of :data:`SELECTIONS`, the epoch and the
        weights it picks (rules without a validation set fall back to the last epoch)."""
        out = {}
        for rule in SELECTIONS:
            b = self.best.get(rule)
            if b is not None and b["state"] is not None:
                out[rule] = (b["epoch"], b["state"])
            else:
                out[rule] = (self.epoch, self.last_state)
        return out

    # -- the loop ------------------------------------------------------------------------
    def train_epoch(self) -> dict:
        model, opt, mask = self.model, self.optimizer, self.mask
        x, y = self.data.train
        model.train()
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        wrong = torch.zeros((), device=self.device, dtype=torch.int64)
        n = len(x)
        perm = torch.randperm(n, generator=self.generator, device=self.device)
        for i in range(0, n, self.recipe.batch_size):
            idx = perm[i : i + self.recipe.batch_size]
            xb, yb = x[idx], y[idx]
            if self.augment is not None:
                xb = self.augment(xb, self.generator)
            opt.zero_grad(set_to_none=True)
            net = self.compaction.net_for(self, xb.shape[1:])
            out = model(xb) if net is None else self.compaction.logits(xb)
            loss = F.cross_entropy(out, yb)
            loss.backward()
            if net is not None:
                self.compaction.fill_grads()
            if mask is not None:
                mask.apply_to_grads(model)
            opt.step()
            self.last_loss = loss
            for cb in self.callbacks:
                cb.after_step(self)
            mask = self.mask  # a callback may have pruned more
            if mask is not None:
                mask.apply(model)
            # Train loss and error come from the training forward passes themselves (one
            # data pass per epoch, no separate evaluation of the training set).
            loss_sum += loss.detach().double() * len(idx)
            wrong += (out.detach().argmax(1) != yb).sum()
        train_loss = float(loss_sum) / n
        if not math.isfinite(train_loss):
            raise DivergedError(
                f"training diverged at epoch {self.epoch + 1}: the mean training loss is "
                f"{train_loss} (lr={self.optimizer.param_groups[0]['lr']}); lower the learning "
                "rate or check the data"
            )
        return {"train_loss": train_loss, "train_error": 100.0 * float(wrong) / n}


def train(
    model: nn.Module,
    data,
    recipe: Recipe,
    *,
    seed: int,
    device="cpu",
    mask: Mask | None = None,
    callbacks: Iterable[Callback] = (),
    checkpoint: str | Path | None = None,
    augment: Callable | None = None,
    evaluate_test: bool = True,
    name: str = "train",
    selection: str = "last",
    fingerprint: dict | None = None,
) -> Trainer:
    """Train ``model`` on ``data`` (an object with ``train``, ``val``, ``test`` tensor pairs)
    for ``recipe.epochs`` epochs, or until a callback sets ``trainer.stop``.

    With ``checkpoint`` set, the run state is saved there after every epoch and, when the
    file exists at start, the run resumes from it. The caller removes it when it has written
    its final outputs. Returns the :class:`Trainer` (``history``, ``model``, ``mask``).

    ``selection`` (:data:`SELECTIONS`) picks the weights returned: ``last`` (the last epoch's),
    ``best_val`` (the epoch with the lowest validation loss) or ``best_val_error`` (lowest
    validation error); ``trainer.selected_epoch`` says which, and
    ``trainer.selection_candidates()`` gives every rule's pick.

    ``fingerprint`` (``provenance.fingerprint``): what else the checkpoint must share with
    this run to be resumed. A checkpoint of another run (other recipe, seed, selection or
    fingerprint) is removed and the run starts over, logging the file and what differs; one
    that cannot be read is treated the same way."""
    trainer = Trainer(model, data, recipe, seed=seed, device=device, mask=mask,
                      callbacks=callbacks, augment=augment, selection=selection,
                      fingerprint=fingerprint, name=name)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    state = None
    if ckpt is not None and ckpt.exists():
        try:
            state = torch.load(ckpt, map_location=trainer.device, weights_only=False)
            diff = trainer.differences(state)
        except Exception as e:  # a truncated or foreign file: not this run's state
            diff = [f"unreadable ({type(e).__name__}: {e})"]
        if diff:
            _log.warning(f"[{name}] not resuming from {ckpt}: written by another run "
                         f"({'; '.join(diff)}); starting over")
            ckpt.unlink()
            state = None
    if state is not None:
        trainer.load_state_dict(state)
        _log.info(f"[{name}] resumed from {ckpt} after epoch {trainer.epoch}")
    else:
        if trainer.mask is not None:
            trainer.mask.apply(trainer.model)
        for cb in trainer.callbacks:
            cb.on_start(trainer)
    start = time.perf_counter()
    first_epoch = trainer.epoch
    while trainer.epoch < recipe.epochs and not trainer.stop:
        t0, c0 = time.perf_counter(), time.process_time()
        record = {"epoch": trainer.epoch + 1, "lr": trainer.optimizer.param_groups[0]["lr"]}
        for cb in trainer.callbacks:
            cb.before_epoch(trainer)
        record.update(trainer.train_epoch())
        trainer.scheduler.step()
        # the epoch's evaluations through the compacted network of the mask it ended with
        fwd = (trainer.compaction.evaluator()
               if trainer.compaction.net_for(trainer, data.train[0].shape[1:]) is not None else None)
        if trainer.compaction.info is not None and trainer.mask is not None:
            record["multiply_add_ratio"] = (trainer.compaction.info.get("multiply_add_ratio")
                                            if fwd is not None else 1.0)
        if data.val is not None and len(data.val[0]):
            v = evaluate(trainer.model, *data.val, recipe.eval_batch_size, forward=fwd)
            record.update(val_loss=v["loss"], val_error=v["error"])
        if evaluate_test:
            t = evaluate(trainer.model, *data.test, recipe.eval_batch_size, forward=fwd)
            record.update(test_loss=t["loss"], test_error=t["error"])
        trainer.epoch += 1
        trainer.consider_for_selection(record)
        for cb in trainer.callbacks:
            cb.after_epoch(trainer, record)
        record["epoch_time_s"] = round(time.perf_counter() - t0, 3)
        # the process's CPU time (all its threads): what the epoch cost, which neither a pause
        # nor another job on the same cores lengthens as they do its wall time
        record["epoch_cpu_s"] = round(time.process_time() - c0, 3)
        trainer.history.append(record)
        if ckpt is not None:
            atomic_torch_save(trainer.state_dict(), ckpt)
        done = trainer.epoch - first_epoch
        eta = (time.perf_counter() - start) / done * (recipe.epochs - trainer.epoch)
        _log.info(f"[{name}] " + _format_record(record) + f" eta={_fmt_time(eta)}")
    trainer.apply_selection()
    if trainer.selection in SELECTION_METRIC:
        b = trainer.best[trainer.selection]
        _log.info(f"[{name}] selection {trainer.selection}: the weights of epoch {trainer.selected_epoch} "
                  f"({SELECTION_METRIC[trainer.selection]} {b['value']:.4g}) of {trainer.epoch}")
    if trainer.channels_last:
        trainer.model.to(memory_format=torch.contiguous_format)
    return trainer


def _format_record(r: dict) -> str:
    parts = []
    for k, v in r.items():
        if isinstance(v, float):
            parts.append(f"{k}={v:.4g}")
        else:
            parts.append(f"{k}={v}")
    return " ".join(parts)


def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"

