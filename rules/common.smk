# All Python of the workflow: config validation, wildcard constraints, paths, input
# functions and resources. Rules stay declarative.

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
from sharpminima import settings as _settings


def config_error(problems):
    """Stop before any job: one line per problem, each naming the key path first."""
    raise WorkflowError(
        "invalid configuration:\n" + "\n".join(f"  config: {p}" for p in problems)
    )


def check_config(config):
    """Stop before any job on the schema's problems, then Snakemake's own validation (which
    fills in the defaults), then the rules the schema cannot say."""
    import yaml

    schema = yaml.safe_load(open(workflow.source_path("../schemas/config.schema.yaml")))
    problems = _checks.schema_problems(config, schema)
    if problems:
        config_error(problems)
    validate(config, schema="../schemas/config.schema.yaml")
    problems = _checks.rule_problems(config)
    if problems:
        config_error(problems)


check_config(config)

PANELS = config["panels"]


FEATURES = config["features"]
TRANSFER_PAIRS = FEATURES["transfer"]["pairs"]
# the panels' data sets, and the second data sets of the transfer probe
DATASETS = sorted(
    {p["dataset"] for p in PANELS.values()} | set(TRANSFER_PAIRS.values())
)
DATA_DIR = config["data_dir"]


def _alternatives(names):
    return "|".join(sorted(names))


GRADUAL_USED = sorted(
    {m for p in PANELS.values() for m in _settings.gradual_methods(config, p)}
)


wildcard_constraints:
    panel=_alternatives(PANELS),
    pruner=_alternatives(GRADUAL_USED),
    dataset=_alternatives(DATASETS),
    seed=r"\d+",
    target=r"\d+(\.\d+)?",
    figure=_alternatives(
        [p["figure"] for p in PANELS.values() if p["figure"]] or ["none"]
    ),


# Every job runs the package of this checkout (workflow_scripts/_adapter.py); its code
# version is what the results' provenance records. Snakemake's code-change trigger does not
# see the package: after editing sharpminima/, rerun the affected outputs with --forcerun.


def manifest_path(dataset):
    return f"{DATA_DIR}/{dataset}.manifest.json"


def split_for_panel(wildcards):
    return f"results/splits/{PANELS[wildcards.panel]['dataset']}.json"


def manifest_for_panel(wildcards):
    return manifest_path(PANELS[wildcards.panel]["dataset"])


# -- resources: portable names only (threads, mem_mb, runtime, gpu); cluster specifics
#    (partition, account, GPU model) belong in profiles/.
def panel_threads(wildcards):
    return PANELS[wildcards.panel]["threads"]


def panel_mem_mb(wildcards):
    return PANELS[wildcards.panel]["mem_mb"]


def panel_runtime(wildcards):
    return PANELS[wildcards.panel]["runtime"]


GPUS = config["gpus_per_job"]


DATA_KEYS = ("model", "dataset", "train_samples", "val_samples", "test_samples")


def settings_for(step):
    """Input function: the settings of a panel that change the result of ``step`` (dense,
    gradual, retrain, oneshot, landscape) and nothing else, so Snakemake's params trigger
    reruns exactly the jobs a config change affects. ``gradual``: the block of the method of
    the ``pruner`` wildcard (its recipe, else the dense one, made explicit)."""

    def settings(wildcards):
        p = PANELS[wildcards.panel]
        out = {k: p[k] for k in DATA_KEYS}
        # a masked training computes through its compacted network or not
        if step != "dense":
            out["compact_training"] = config["compact_training"]
        if step == "retrain":  # Scratch-E: the dense recipe unless one is given
            out["retrain"] = _settings.retrain_recipe(
                p, wildcards.method, wildcards.pruner
            )
            if RETRAINING_METHODS[wildcards.method].budget == "gradual":
                # the job reads it as the gradual method's recipe (settings.retrain_recipe)
                out[wildcards.pruner] = {"recipe": out["retrain"]}
        elif step == "gradual":
            block = dict(p.get(wildcards.pruner) or {})
            block["recipe"] = _settings.gradual_recipe(p, wildcards.pruner)
            out[wildcards.pruner] = block
        elif step != "landscape":  # the landscape needs the data settings only
            key = {"oneshot": "oneshot_finetune"}.get(step, step)
            out[key] = p[key]
        return out

    return settings


def target_str(t):
    """A target sparsity as it appears in paths: 98.0 -> '98', 99.57 -> '99.57'."""
    return f"{float(t):g}"


def panel_targets(wildcards):
    return [float(t) for t in PANELS[wildcards.panel]["targets"]]


# the retraining methods of `methods` (sharpminima/retraining.py): each retrains a snapshot's mask
RETRAIN_METHODS = [m for m in config["methods"] if m in RETRAINING_METHODS]


# -- targets
def dense_metrics(panel=None):
    """The dense runs of a panel (None: of every panel), each at its seeds."""
    return [
        f"results/{p}/dense/s{seed}/metrics.json"
        for p in ([panel] if panel else PANELS)
        for seed in _settings.seeds_of(config, p)
    ]


def gradual_trajectories(panel, pruner=None):
    """The trajectories of a panel's gradual runs (every method of the panel, or ``pruner``;
    each at its seeds)."""
    return [
        f"results/{panel}/{m}/s{seed}/trajectory.json"
        for m in ([pruner] if pruner else _settings.gradual_methods(config, panel))
        for seed in _settings.gradual_seeds(config, panel, m)
    ]


def method_metrics(panel):
    """Metrics files of every retraining (of the masks of each gradual method at its targets,
    ``settings.retrain_targets``; its first seed's: the retrainings' own seeds are
    ``retrain_seeds``, as the paper retrains one LOBSTER run's masks) and one-shot run (every
    dense seed) of a panel's Fig. 1."""
    targets = [target_str(t) for t in PANELS[panel]["targets"]]
    oneshot = ["oneshot"] if "oneshot" in config["methods"] else []
    seed = _settings.retrained_seed(config, panel)
    retrained = [
        f"results/{panel}/{pruner}/{method}/s{seed}/t{target_str(t)}/metrics.json"
        for pruner, ts in _settings.retrain_targets(config, panel).items()
        for method in RETRAIN_METHODS
        for t in _settings.method_targets(PANELS[panel], method, ts)
    ]
    return retrained + expand(
        "results/{panel}/{method}/s{seed}/t{target}/metrics.json",
        panel=panel,
        method=oneshot,
        seed=_settings.seeds_of(config, panel),
        target=targets,
    )


FIGURE_PANEL = {p["figure"]: name for name, p in PANELS.items() if p["figure"]}
# every figure is a PDF, a PNG and the CSV of the plotted numbers
FIGURE_FORMATS = ["pdf", "png", "csv"]


def fig1_inputs(wildcards):
    panel = FIGURE_PANEL[wildcards.figure]
    return {
        "dense": dense_metrics(panel),
        "trajectories": gradual_trajectories(panel),
        "methods": method_metrics(panel),
    }


def fig1_figures():
    return expand(
        "results/figures/{figure}.{ext}", figure=FIGURE_PANEL, ext=FIGURE_FORMATS
    )


# -- the landscape (Fig. 2, 3, 4)
LANDSCAPE = config["landscape"]
LANDSCAPE_MAP_KIND = {name: f.map_kind for name, f in MAP_FIGURES.items()}
# what the landscape jobs compute with: not which landscapes are drawn (panels, methods), nor
# G's target and 1-S's seed (each plane's own params), so adding a landscape reruns no other
LANDSCAPE_SETTINGS = {
    k: v
    for k, v in LANDSCAPE.items()
    if k not in ("panel", "panels", "methods", "target", "retrain_seed")
}
# every (panel, gradual method) whose landscape is drawn; the first is the paper's Fig. 2-4
LANDSCAPES = list(
    dict.fromkeys(
        (panel, method)
        for panel in [LANDSCAPE["panel"], *LANDSCAPE["panels"]]
        for method in LANDSCAPE["methods"]
    )
)
PAPER_LANDSCAPE = LANDSCAPES[0]
LANDSCAPE_DIR = "results/landscape/{}/{}".format(*PAPER_LANDSCAPE)


def landscape_dir(panel, pruner):
    return f"results/landscape/{panel}/{pruner}"


def landscape_target(panel):
    """The target of G: ``landscape.target`` on the paper's panel, else (None) the highest
    target the gradual run reached."""
    return LANDSCAPE["target"] if panel == LANDSCAPE["panel"] else None


def landscape_retrain_seed(panel):
    """Which rewind retraining is the plane's 1-S: ``landscape.retrain_seed``, else (None)
    the one with the lowest validation loss (chosen by the plane job)."""
    return LANDSCAPE["retrain_seed"]


def plane_inputs(wildcards):
    return plane_runs(wildcards.panel, wildcards.pruner)


def plane_runs(panel, pruner):
    """G needs the gradual run (its first seed); 1-S the rewind retraining of its mask at the
    chosen target, or at every target when the choice is 'the highest reached' (known only
    after the gradual run)."""
    return _landscape_runs(
        panel, pruner, _settings.gradual_seeds(config, panel, pruner)[0]
    )


def landscape_points_inputs(wildcards):
    """Every seed of G (each gradual seed's run) and the rewind retrainings of each one's mask."""
    runs = [
        _landscape_runs(wildcards.panel, wildcards.pruner, s)
        for s in _settings.gradual_seeds(config, wildcards.panel, wildcards.pruner)
    ]
    return {k: [f for r in runs for f in _as_list(r[k])] for k in runs[0]}


def _as_list(x):
    return x if isinstance(x, list) else [x]


def _landscape_runs(panel, pruner, seed):
    target = landscape_target(panel)
    targets = PANELS[panel]["targets"] if target is None else [target]
    base = f"results/{panel}/{pruner}/rewind/s{seed}"
    return {
        "trajectory": f"results/{panel}/{pruner}/s{seed}/trajectory.json",
        "snapshots": f"results/{panel}/{pruner}/s{seed}/snapshots.pt",
        "rewind_metrics": [f"{base}/t{target_str(t)}/metrics.json" for t in targets],
        "rewind_models": [f"{base}/t{target_str(t)}/models.pt" for t in targets],
    }


def landscape_solutions_inputs(wildcards):
    """The maps and Hessian points of one landscape, and the runs that give G's and 1-S's
    test errors."""
    d = landscape_dir(wildcards.panel, wildcards.pruner)
    runs = plane_runs(wildcards.panel, wildcards.pruner)
    return {
        "plane": f"{d}/plane.json",
        "loss": f"{d}/loss.csv",
        "loss_meta": f"{d}/loss.json",
        "psp": f"{d}/psp.csv",
        "hessian": f"{d}/hessian.csv",
        "trajectory": runs["trajectory"],
        "rewind_metrics": runs["rewind_metrics"],
    }


def landscape_solutions():
    return [f"{landscape_dir(p, m)}/solutions.csv" for p, m in LANDSCAPES]


def landscape_figures():
    """The paper's Fig. 2-4 (results/figures/fig2a.pdf, ...) and every other landscape's
    under results/figures/landscape/<panel>/<method>/."""
    paper = expand(
        "results/figures/{figure}.{ext}", figure=LANDSCAPE_FIGURES, ext=FIGURE_FORMATS
    )
    others = [
        f"results/figures/landscape/{p}/{m}/{figure}.{ext}"
        for p, m in LANDSCAPES[1:]
        for figure in LANDSCAPE_FIGURES
        for ext in FIGURE_FORMATS
    ]
    return paper + others


def claims_inputs(wildcards):
    """Every Fig. 1 panel's points and gradual runs; every landscape's points at every seed
    and its plane's maps; the paper landscape's training-length probe."""
    out = {
        "landscape_points": "results/tables/landscape_points.csv",
        "probe": f"{LANDSCAPE_DIR}/probe.csv",
    }
    for panel, pruner in LANDSCAPES:
        d = landscape_dir(panel, pruner)
        for name in ("plane.json", "loss.csv", "psp.csv", "hessian_map.csv"):
            out[f"map_{panel}_{pruner}_{name.split('.')[0]}"] = f"{d}/{name}"
    for figure, panel in FIGURE_PANEL.items():
        out[f"points_{panel}"] = f"results/figures/{figure}.csv"
        out[f"trajectories_{panel}"] = gradual_trajectories(panel)
    out.update(transfer_tables())
    return out


def landscape_points():
    return [f"{landscape_dir(p, m)}/points.csv" for p, m in LANDSCAPES]


# -- the features of every solution (similarity to the dense model, transfer probe)
def solution_inputs(wildcards):
    """Every solution of a panel's Fig. 1: the dense models, each gradual method's
    snapshots, the retrainings and one-shot runs (weights and metrics, paired by position).
    """
    panel = wildcards.panel
    gradual = gradual_trajectories(panel)
    methods = method_metrics(panel)
    retrain = [m for m in methods if "/oneshot/" not in m]
    oneshot = [m for m in methods if "/oneshot/" in m]
    return {
        "dense_metrics": dense_metrics(panel),
        "dense_models": [
            m.replace("metrics.json", "model.pt") for m in dense_metrics(panel)
        ],
        "trajectories": gradual,
        "snapshots": [t.replace("trajectory.json", "snapshots.pt") for t in gradual],
        "retrain_metrics": retrain,
        "retrain_models": [m.replace("metrics.json", "models.pt") for m in retrain],
        "oneshot_metrics": oneshot,
        "oneshot_models": [m.replace("metrics.json", "model.pt") for m in oneshot],
    }


def transfer_target_inputs(wildcards):
    return {
        "target_manifest": manifest_path(wildcards.dataset),
        "target_split": f"results/splits/{wildcards.dataset}.json",
    }


def feature_figures():
    similarity = expand(
        "results/figures/similarity/{panel}.{ext}",
        panel=FEATURES["panels"],
        ext=FIGURE_FORMATS,
    )
    transfer = [
        f"results/figures/{kind}/{panel}_to_{dataset}.{ext}"
        for panel, dataset in TRANSFER_PAIRS.items()
        for kind in ("transfer", "entropy_transfer")
        for ext in FIGURE_FORMATS
    ]
    return similarity + transfer


def transfer_tables():
    return {
        f"transfer_{panel}": f"results/{panel}/features/transfer_{dataset}.csv"
        for panel, dataset in TRANSFER_PAIRS.items()
    }


def all_targets():
    return [
        *feature_figures(),
        "results/tables/claims.csv",
        "results/tables/dense.csv",
        "results/tables/fig1.csv",
        *fig1_figures(),
        *landscape_figures(),
        "results/tables/landscape.csv",
        "results/tables/landscape_points.csv",
    ]
