"""The runs the workflow performs, each from settings to files.

Each function here takes plain settings (a panel's dict from config.yaml, paths, a seed)
and writes its outputs atomically, with provenance. The workflow scripts only unpack
``snakemake`` objects and call these; a user can call them from Python just as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from . import data as data_mod
from .masks import sparsity_report
from .models import build_model
from .provenance import Timer, atomic_torch_save, atomic_write_json, provenance
from .training import Recipe, evaluate, resolve_device, seed_everything, train


def load_panel_data(panel: dict, data_dir, split_path, device) -> data_mod.PanelData:
    return data_mod.panel_data(
        panel["dataset"], data_dir, split_path, device=device,
        train_samples=panel.get("train_samples"), val_samples=panel.get("val_samples"),
        test_samples=panel.get("test_samples"),
    )


def setup(panel: dict, device_spec: str, threads: int | None, log: Callable[[str], None]):
    """Threads and device of a job, said in its log."""
    if threads:
        torch.set_num_threads(int(threads))
    device = resolve_device(device_spec)
    log(f"device={device} (asked: {device_spec}) torch_threads={torch.get_num_threads()} "
        f"cuda_visible={torch.cuda.device_count() if torch.cuda.is_available() else 0}")
    return device


def final_metrics(model, data, recipe: Recipe) -> dict:
    """Test, validation and training-set loss/error of the final weights (one eval pass each)."""
    out = {}
    for split in ("train", "val", "test"):
        x, y = getattr(data, split)
        if len(x):
            r = evaluate(model, x, y, recipe.eval_batch_size)
            out[f"{split}_loss"], out[f"{split}_error"] = r["loss"], r["error"]
    return out


def run_dense(*, panel_name: str, panel: dict, data_dir, split_path, seed: int,
              device_spec: str = "auto", threads: int | None = None,
              model_out, init_out, metrics_out, checkpoint, log=print) -> dict:
    """Train a panel's dense model with its recipe; write the final weights, the initial
    weights (the rewind point of later methods) and a metrics JSON with provenance."""
    timer = Timer()
    device = setup(panel, device_spec, threads, log)
    recipe = Recipe.from_dict(panel["dense"], where=f"panels.{panel_name}.dense")
    data = load_panel_data(panel, data_dir, split_path, device)
    log(f"data: {data.describe()}")
    seed_everything(seed)
    model = build_model(panel["model"], num_classes=data.num_classes)
    # The seeded init is the rewind point of later methods; a resumed job rebuilds the same.
    atomic_torch_save(model.state_dict(), init_out)
    trainer = train(model, data, recipe, seed=seed, device=device, checkpoint=checkpoint,
                    augment=data.augment_batch if data.augment else None, log=log,
                    name=f"{panel_name}/dense/s{seed}")
    metrics = {
        "panel": panel_name,
        "method": "dense",
        "model": panel["model"],
        "dataset": panel["dataset"],
        "seed": seed,
        **final_metrics(trainer.model, data, recipe),
        **sparsity_report(trainer.model),
        "epochs": trainer.epoch,
        "history": trainer.history,
        "data": data.describe(),
        "provenance": provenance(settings={"panel": panel, "recipe": recipe.to_dict()},
                                 seed=seed, device=device, wall_time_s=timer.elapsed),
    }
    atomic_torch_save(trainer.model.state_dict(), model_out)
    atomic_write_json(metrics_out, metrics)
    Path(checkpoint).unlink(missing_ok=True)
    log(f"done: test_error={metrics['test_error']:.3f}% in {timer.elapsed:.1f}s")
    return metrics
