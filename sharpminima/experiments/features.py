"""The features of every solution: layer similarity to the dense network, the transfer probe."""

from __future__ import annotations

import logging
from pathlib import Path


from .. import data as data_mod
from ..models import build_model
from ..provenance import atomic_write_json
from .job import Job

_log = logging.getLogger(__name__)


def _solution_rows(solutions) -> list[dict]:
    keys = ("method", "masks_of", "target", "seed", "pruned_params_pct", "test_error")
    return [{k: s[k] for k in keys} for s in solutions]


def run_similarity(*, panel_name: str, panel: dict, data_dir, split_path, solution_files: dict,
                   settings: dict, device_spec="auto", threads=None, table_out) -> None:
    """SVCCA and linear CKA of every hidden layer of every solution of a panel
    (``solutions.load_solutions`` over ``solution_files``) with the dense model's, on the
    first ``settings["samples"]`` test images of the panel (``similarity.compare_layers``)."""
    import pandas as pd

    from ..similarity import compare_layers, layer_activations
    from ..solutions import load_solutions
    from ..tables import write_csv

    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    device = job.device
    data = job.data()
    x = data.test[0][: settings["samples"]]
    solutions = load_solutions(**solution_files)
    model = build_model(panel["model"], num_classes=data.num_classes).to(device)

    def acts(state):
        model.load_state_dict(state)
        return layer_activations(model, x)

    # each solution against the dense model of the seed it comes from (the first otherwise)
    dense = {d["origin_seed"]: d for d in solutions if d["method"] == "dense"}
    first = next(iter(dense.values()))
    refs = {}
    rows = []
    for s, info in zip(solutions, _solution_rows(solutions)):
        d = dense.get(s.get("origin_seed"), first)
        if d["seed"] not in refs:
            refs[d["seed"]] = acts(d["state_dict"])
        ref = refs[d["seed"]]
        for r in compare_layers(ref, acts(s["state_dict"]), keep=settings["keep"],
                                max_rows=settings["max_rows"], seed=settings["seed"]):
            rows.append({"panel": panel_name, **info, **r})
        _log.info(f"similarity: {info['method']} t{info['target']:g} s{info['seed']}: "
                  + ", ".join(f"{r['layer']} {r['svcca']:.3f}/{r['cka']:.3f}" for r in rows[-len(ref):]))
    df = pd.DataFrame(rows)
    write_csv(df, table_out)
    atomic_write_json(Path(table_out).with_suffix(".json"), {
        "what": "SVCCA and linear CKA of each hidden layer with the dense model's",
        "n_samples": int(len(x)), "split": "test (first samples of the panel's test split)",
        "settings": settings, "n_solutions": len(solutions),
        "provenance": job.provenance({"panel": panel, "features": settings}, settings["seed"])})
    _log.info(f"similarity: {len(solutions)} solutions in {job.elapsed:.1f}s")


def run_transfer(*, panel_name: str, panel: dict, data_dir, split_path, target_dataset: str,
                 target_split_path, solution_files: dict, settings: dict, entropy2: str = "agreement",
                 device_spec="auto", threads=None, table_out) -> None:
    """The transfer probe (``transfer.py``) of every solution of a panel on
    ``target_dataset`` and, as the control, on the panel's own data set; beside it each
    solution's PSP entropies on the panel's first ``settings["samples"]`` test images (the
    paper's explanation: higher second-order entropy, features less class-specific)."""
    import pandas as pd

    from ..psp import psp_statistics
    from ..solutions import load_solutions
    from ..tables import write_csv
    from ..transfer import features, probe_error

    job = Job(panel, device_spec, threads, data_dir=data_dir, split_path=split_path)
    device = job.device
    t = settings["transfer"]
    source = job.data()
    target = data_mod.panel_data(target_dataset, data_dir, target_split_path, device=device,
                                 train_samples=t["train_samples"], val_samples=0,
                                 test_samples=t["test_samples"])
    probe_sets = {
        panel["dataset"]: (source.train[0][: t["train_samples"]], source.train[1][: t["train_samples"]],
                           source.test[0][: t["test_samples"]], source.test[1][: t["test_samples"]]),
        target_dataset: (*target.train, *target.test),
    }
    xe, ye = source.test[0][: settings["samples"]], source.test[1][: settings["samples"]]
    solutions = load_solutions(**solution_files)
    model = build_model(panel["model"], num_classes=source.num_classes).to(device)
    rows = []
    for s, info in zip(solutions, _solution_rows(solutions)):
        model.load_state_dict(s["state_dict"])
        model.eval()
        st = psp_statistics(model, xe, ye, source.num_classes, second_order=(entropy2,))
        ent = {"entropy1": st["entropy1"], "entropy2": st[f"entropy2_{entropy2}"]}
        for name, (xtr, ytr, xte, yte) in probe_sets.items():
            p = probe_error(features(model, xtr, t["layers"]), ytr.cpu().numpy(),
                            features(model, xte, t["layers"]), yte.cpu().numpy(),
                            C=t["C"], max_iter=t["max_iter"])
            rows.append({"panel": panel_name, **info, "probe_data": name,
                         "control": name == panel["dataset"], **p, **ent})
        _log.info(f"transfer: {info['method']} t{info['target']:g} s{info['seed']}: "
                  f"probe error {rows[-1]['probe_error']:.2f} % on {target_dataset} "
                  f"(control {rows[-2]['probe_error']:.2f} %), entropy2 {ent['entropy2']:.4g}")
    df = pd.DataFrame(rows)
    write_csv(df, table_out)
    atomic_write_json(Path(table_out).with_suffix(".json"), {
        "what": "linear probe on frozen features, on a second data set and (control) the panel's own",
        "source": panel["dataset"], "target": target_dataset, "settings": settings,
        "entropy2_definition": entropy2, "n_solutions": len(solutions),
        "n_probe_train": {k: int(len(v[0])) for k, v in probe_sets.items()},
        "n_probe_test": {k: int(len(v[2])) for k, v in probe_sets.items()},
        "provenance": job.provenance({"panel": panel, "features": settings, "target": target_dataset})})
    _log.info(f"transfer: {len(solutions)} solutions in {job.elapsed:.1f}s")
