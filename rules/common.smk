# The workflow's Python: the config checked, wildcard constraints, input functions and
# resources. Paths come from sharpminima/paths.py, settings from sharpminima/settings.py;
# rules stay declarative.

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The library's registries that cost nothing to import (no torch) are the rules' lists too.
sys.path.insert(0, str(Path(workflow.basedir)))
from sharpminima.gradual import GRADUAL_METHODS
from sharpminima.retraining import RETRAINING_METHODS
from sharpminima.paper_figures import LANDSCAPE_FIGURES, MAP_FIGURES, MAP_KINDS
from sharpminima import config_checks as _checks
from sharpminima import paths
from sharpminima import settings as _settings
from sharpminima.paths import fill

# Stop before any job, one line per problem naming its key path (config_checks.py); Snakemake's
# own validation fills in the schema's defaults.
try:
    _checks.check(
        config,
        workflow.source_path("../schemas/config.schema.yaml"),
        lambda: validate(config, schema="../schemas/config.schema.yaml"),
    )
except ValueError as e:
    raise WorkflowError(str(e)) from None

PANELS = config["panels"]
FEATURES = config["features"]
TRANSFER_PAIRS = FEATURES["transfer"]["pairs"]
# the panels' data sets, and the second data sets of the transfer probe
DATASETS = sorted(
    {p["dataset"] for p in PANELS.values()} | set(TRANSFER_PAIRS.values())
)
DATA_DIR = config["data_dir"]
GPUS = config["gpus_per_job"]
# the retraining methods of `methods` (sharpminima/retraining.py): each retrains a snapshot's mask
RETRAIN_METHODS = [m for m in config["methods"] if m in RETRAINING_METHODS]
FIGURE_PANEL = {p["figure"]: name for name, p in PANELS.items() if p["figure"]}
LANDSCAPE = config["landscape"]
LANDSCAPE_SETTINGS = _settings.landscape_settings(config)
# every (panel, gradual method) whose landscape is drawn; the first is the paper's Fig. 2-4
LANDSCAPES = _settings.landscapes(config)
LANDSCAPE_DIR = fill(paths.LANDSCAPE, panel=LANDSCAPES[0][0], gradual=LANDSCAPES[0][1])
PAPER_LANDSCAPE_FIGURES = fill(
    paths.LANDSCAPE_FIGURES_DIR, panel=LANDSCAPES[0][0], gradual=LANDSCAPES[0][1]
)


def _alternatives(names):
    return "|".join(sorted(names)) or "none"


wildcard_constraints:
    panel=_alternatives(PANELS),
    gradual=_alternatives(
        {m for p in PANELS for m in _settings.gradual_methods(config, p)}
    ),
    dataset=_alternatives(DATASETS),
    seed=r"\d+",
    target=r"\d+(\.\d+)?",
    figure=_alternatives(FIGURE_PANEL),


# Every job runs the package of this checkout (workflow_scripts/_adapter.py); its code
# version is what the results' provenance records. Snakemake's code-change trigger does not
# see the package: after editing sharpminima/, rerun the affected outputs with --forcerun.


def manifest_path(dataset):
    return f"{DATA_DIR}/{dataset}.manifest.json"


def split_for_panel(wildcards):
    return fill(paths.SPLIT, dataset=PANELS[wildcards.panel]["dataset"])


def manifest_for_panel(wildcards):
    return manifest_path(PANELS[wildcards.panel]["dataset"])


# -- resources: portable names only (threads, mem_mb, runtime, gpu); cluster specifics
#    (partition, account, GPU model) belong in profiles/.
def panel_resource(key):
    return lambda wc: PANELS[wc.panel][key]


def settings_for(step):
    """Params function: what changes the result of a job of ``step``
    (``settings.job_settings``), so that a config change reruns exactly the jobs it affects.
    """
    return lambda wc: _settings.job_settings(
        config, step, wc.panel, wc.get("gradual"), wc.get("retraining")
    )


def panel_targets(wildcards):
    return [float(t) for t in PANELS[wildcards.panel]["targets"]]


# -- Fig. 1: every run a panel's figure reads (sharpminima/paths.py lists them)
def dense_metrics(panel=None):
    """The dense runs of a panel (None: of every panel), each at its seeds."""
    panels = [panel] if panel else PANELS
    return [f"{d}/metrics.json" for p in panels for d in paths.dense_runs(config, p)]


def gradual_trajectories(panel, gradual=None):
    """A panel's gradual runs (every method of the panel, or ``gradual``)."""
    return [f"{d}/trajectory.json" for d in paths.gradual_runs(config, panel, gradual)]


def method_metrics(panel):
    """Metrics of every retraining and one-shot run of a panel's Fig. 1."""
    runs = paths.retraining_runs(config, panel) + paths.oneshot_runs(config, panel)
    return [f"{d}/metrics.json" for d in runs]


def fig1_inputs(wildcards):
    panel = FIGURE_PANEL[wildcards.figure]
    return {
        "dense": dense_metrics(panel),
        "trajectories": gradual_trajectories(panel),
        "methods": method_metrics(panel),
    }


# -- the landscape (Fig. 2, 3, 4)
def landscape_dir(panel, gradual):
    return fill(paths.LANDSCAPE, panel=panel, gradual=gradual)


def _landscape_runs(panel, gradual, seed):
    """G's gradual run (at ``seed``) and the rewind retrainings of its mask."""
    run, rewinds = paths.landscape_runs(config, panel, gradual, seed)
    return {
        "trajectory": f"{run}/trajectory.json",
        "snapshots": f"{run}/snapshots.pt",
        "rewind_metrics": [f"{d}/metrics.json" for d in rewinds],
        "rewind_models": [f"{d}/models.pt" for d in rewinds],
    }


def g_inputs(wildcards):
    """Every gradual seed's trajectory: G's target is one all of them are measured at."""
    seeds = _settings.gradual_seeds(config, wildcards.panel, wildcards.gradual)
    return [
        _landscape_runs(wildcards.panel, wildcards.gradual, s)["trajectory"]
        for s in seeds
    ]


def plane_inputs(wildcards):
    """The plane's G is the first gradual seed's; 1-S a rewind of its mask."""
    seeds = _settings.gradual_seeds(config, wildcards.panel, wildcards.gradual)
    return _landscape_runs(wildcards.panel, wildcards.gradual, seeds[0])


def landscape_points_inputs(wildcards):
    """Every seed of G (each gradual seed's run) and the rewind retrainings of each one's mask."""
    seeds = _settings.gradual_seeds(config, wildcards.panel, wildcards.gradual)
    runs = [_landscape_runs(wildcards.panel, wildcards.gradual, s) for s in seeds]
    return {k: [f for r in runs for f in _as_list(r[k])] for k in runs[0]}


def _as_list(x):
    return x if isinstance(x, list) else [x]


def landscape_solutions_inputs(wildcards):
    """The maps and Hessian points of one landscape, and the runs that give G's and 1-S's
    test errors."""
    d = landscape_dir(wildcards.panel, wildcards.gradual)
    runs = plane_inputs(wildcards)
    files = {k: f"{d}/{k}.csv" for k in ("loss", "psp", "hessian")}
    return {
        **files,
        "plane": f"{d}/plane.json",
        "loss_meta": f"{d}/loss.json",
        "trajectory": runs["trajectory"],
        "rewind_metrics": runs["rewind_metrics"],
    }


def landscape_tables(name):
    """One table of every landscape (``solutions``, ``points``), the paper's first."""
    return [f"{landscape_dir(p, g)}/{name}.csv" for p, g in LANDSCAPES]


def landscape_map(name):
    """Input function of a landscape figure: its map's ``name`` (``csv``, ``json``)."""
    return (
        lambda wc: f"{landscape_dir(wc.panel, wc.gradual)}/{MAP_FIGURES[wc.lfig].map_kind}.{name}"
    )


def claims_inputs(wildcards):
    """Every Fig. 1 panel's points and gradual runs; every landscape's points at every seed
    and its plane's maps; the paper landscape's training-length probe."""
    out = {
        "landscape_points": f"{paths.TABLES}/landscape_points.csv",
        "probe": f"{LANDSCAPE_DIR}/probe.csv",
    }
    for panel, gradual in LANDSCAPES:
        d = landscape_dir(panel, gradual)
        for name in ("plane.json", "loss.csv", "psp.csv", "hessian_map.csv"):
            out[f"map_{panel}_{gradual}_{name.split('.')[0]}"] = f"{d}/{name}"
    for figure, panel in FIGURE_PANEL.items():
        out[f"points_{panel}"] = f"{paths.FIGURES}/{figure}.csv"
        out[f"trajectories_{panel}"] = gradual_trajectories(panel)
    return {**out, **paths.transfer_tables(config)}


# -- the features of every solution (similarity to the dense model, transfer probe)
def solution_inputs(wildcards):
    """Every solution of a panel's Fig. 1: the dense models, each gradual method's
    snapshots, the retrainings and one-shot runs (weights and metrics, paired by position).
    """
    panel = wildcards.panel
    dense, gradual = paths.dense_runs(config, panel), paths.gradual_runs(config, panel)
    retrain = paths.retraining_runs(config, panel)
    oneshot = paths.oneshot_runs(config, panel)
    return {
        "dense_metrics": [f"{d}/metrics.json" for d in dense],
        "dense_models": [f"{d}/model.pt" for d in dense],
        "trajectories": [f"{d}/trajectory.json" for d in gradual],
        "snapshots": [f"{d}/snapshots.pt" for d in gradual],
        "retrain_metrics": [f"{d}/metrics.json" for d in retrain],
        "retrain_models": [f"{d}/models.pt" for d in retrain],
        "oneshot_metrics": [f"{d}/metrics.json" for d in oneshot],
        "oneshot_models": [f"{d}/model.pt" for d in oneshot],
    }


def transfer_target_inputs(wildcards):
    return {
        "target_manifest": manifest_path(wildcards.dataset),
        "target_split": fill(paths.SPLIT, dataset=wildcards.dataset),
    }
