# All Python of the workflow: config validation, wildcard constraints, paths, input
# functions and resources. Rules stay declarative.

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The library's registries that cost nothing to import (no torch) are the rules' lists too.
sys.path.insert(0, str(Path(workflow.basedir)))
from sharpminima.datasets import DATASETS as DATASET_REGISTRY
from sharpminima.paper_figures import LANDSCAPE_FIGURES, MAP_FIGURES, MAP_KINDS


def config_error(problems):
    """Stop before any job: one line per problem, each naming the key path first."""
    raise WorkflowError(
        "invalid configuration:\n" + "\n".join(f"  config: {p}" for p in problems)
    )


def check_config_schema(config):
    """The schema's verdict in one line per error (key path, what was found, what was
    expected), instead of jsonschema's dump of the schema; then Snakemake's own validation,
    which fills in the defaults."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(open(workflow.source_path("../schemas/config.schema.yaml")))
    problems = []
    for e in sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(config),
        key=lambda e: [str(p) for p in e.absolute_path],
    ):
        where = ".".join(map(str, e.absolute_path)) or "(top level)"
        if e.validator == "additionalProperties":
            allowed = sorted(e.schema.get("properties", {}))
            extra = sorted(set(e.instance) - set(allowed))
            problems.append(
                f"{where}: unknown key(s) {extra}; expected some of {allowed}"
            )
        elif e.validator == "uniqueItems":
            problems.append(f"{where}: found {e.instance!r}; expected distinct values")
        elif e.validator == "enum":
            problems.append(
                f"{where}: found {e.instance!r}; expected one of {e.validator_value}"
            )
        else:
            problems.append(
                f"{where}: found {e.instance!r}; {e.message} ({e.validator} {e.validator_value!r})"
            )
    if problems:
        config_error(problems)
    validate(config, schema="../schemas/config.schema.yaml")


check_config_schema(config)

PANELS = config["panels"]


def retrain_seeds_of(panel):
    """A panel's retraining seeds: its own, else the top-level ``retrain_seeds``."""
    return panel.get("retrain_seeds") or config["retrain_seeds"]


def check_config_rules(config):
    """The rules the schema cannot say, checked before any job."""
    problems = []
    if set(config["retrain_seeds"]) & set(config["seeds"]):  # a panel's own: below
        problems.append(
            f"retrain_seeds: found {config['retrain_seeds']}; expected seeds other "
            f"than seeds {config['seeds']} (a re-init with the LOBSTER run's own seed "
            "would be a rewind)"
        )
    owners = {}
    for name, p in config["panels"].items():
        if p["retrain_seeds"] and set(p["retrain_seeds"]) & set(config["seeds"]):
            problems.append(
                f"panels.{name}.retrain_seeds: found {p['retrain_seeds']}; expected seeds "
                f"other than seeds {config['seeds']}"
            )
        if p["dataset"] not in DATASET_REGISTRY:
            problems.append(
                f"panels.{name}.dataset: found {p['dataset']!r}; expected one of "
                f"{sorted(DATASET_REGISTRY)} (sharpminima/datasets.py registers them)"
            )
        if p["figure"]:
            owners.setdefault(p["figure"], []).append(name)
        targets = [float(t) for t in p["targets"]]
        if len(set(targets)) != len(targets):
            problems.append(
                f"panels.{name}.targets: found {p['targets']}; expected distinct "
                "sparsities (each is one point of Fig. 1)"
            )
    for figure, names in owners.items():
        if len(names) > 1:
            problems.append(
                f"panels.{names[1]}.figure: found {figure!r}, the figure of panel "
                f"{names[0]} too; expected one panel per figure (or null)"
            )
    ls = config["landscape"]
    if ls["panel"] not in config["panels"]:
        problems.append(
            f"landscape.panel: found {ls['panel']!r}; expected one of the panels "
            f"{sorted(config['panels'])}"
        )
    elif ls["target"] is not None and float(ls["target"]) not in [
        float(t) for t in config["panels"][ls["panel"]]["targets"]
    ]:
        problems.append(
            f"landscape.target: found {ls['target']}; expected one of the targets of "
            f"panel {ls['panel']}: {config['panels'][ls['panel']]['targets']}"
        )
    if "rewind" not in config["methods"]:
        problems.append(
            f"methods: found {config['methods']}; expected 'rewind' among them (the "
            "landscape's 1-S is the rewind retraining)"
        )
    rs = ls["retrain_seed"]
    ls_seeds = retrain_seeds_of(config["panels"].get(ls["panel"], {}))
    if rs is not None and rs not in ls_seeds:
        problems.append(
            f"landscape.retrain_seed: found {rs}; expected one of the retraining seeds "
            f"{ls_seeds} of panel {ls['panel']}"
        )
    if problems:
        config_error(problems)


check_config_rules(config)
SEEDS = config["seeds"]
DATASETS = sorted({p["dataset"] for p in PANELS.values()})
DATA_DIR = config["data_dir"]


def _alternatives(names):
    return "|".join(sorted(names))


wildcard_constraints:
    panel=_alternatives(PANELS),
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
    lobster, retrain, oneshot) and nothing else, so Snakemake's params trigger reruns exactly
    the jobs a config change affects."""

    def settings(wildcards):
        p = PANELS[wildcards.panel]
        out = {k: p[k] for k in DATA_KEYS}
        if step == "retrain":  # Scratch-E: the dense recipe unless one is given
            out["retrain"] = p.get("retrain") or p["dense"]
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


# every method but one-shot retrains a LOBSTER snapshot's mask (sharpminima.pruning.retrain)
RETRAIN_METHODS = [m for m in config["methods"] if m != "oneshot"]


# -- targets
def dense_metrics(panel=None):
    return expand(
        "results/{panel}/dense/s{seed}/metrics.json",
        panel=[panel] if panel else list(PANELS),
        seed=SEEDS,
    )


def lobster_trajectories(panel):
    return expand(
        "results/{panel}/lobster/s{seed}/trajectory.json", panel=panel, seed=SEEDS
    )


def method_metrics(panel):
    """Metrics files of every retraining and one-shot run of a panel's Fig. 1."""
    oneshot = ["oneshot"] if "oneshot" in config["methods"] else []
    return expand(
        "results/{panel}/{method}/s{seed}/t{target}/metrics.json",
        panel=panel,
        method=RETRAIN_METHODS + oneshot,
        seed=SEEDS,
        target=[target_str(t) for t in PANELS[panel]["targets"]],
    )


FIGURE_PANEL = {p["figure"]: name for name, p in PANELS.items() if p["figure"]}
# every figure is a PDF, a PNG and the CSV of the plotted numbers
FIGURE_FORMATS = ["pdf", "png", "csv"]


def fig1_inputs(wildcards):
    panel = FIGURE_PANEL[wildcards.figure]
    return {
        "dense": dense_metrics(panel),
        "trajectories": lobster_trajectories(panel),
        "methods": method_metrics(panel),
    }


def fig1_figures():
    return expand(
        "results/figures/{figure}.{ext}", figure=FIGURE_PANEL, ext=FIGURE_FORMATS
    )


# -- the landscape (Fig. 2, 3, 4)
LANDSCAPE = config["landscape"]
LANDSCAPE_RETRAIN_SEED = (
    LANDSCAPE["retrain_seed"]
    if LANDSCAPE["retrain_seed"] is not None
    else retrain_seeds_of(PANELS[LANDSCAPE["panel"]])[0]
)
LANDSCAPE_DIR = f"results/landscape/{LANDSCAPE['panel']}"
LANDSCAPE_MAP_KIND = {name: f.map_kind for name, f in MAP_FIGURES.items()}


def plane_inputs(wildcards):
    return plane_runs(wildcards.panel)


def plane_runs(panel):
    """G needs the LOBSTER run (first seed); 1-S the rewind retraining at the chosen target,
    or at every target when the choice is 'the highest reached' (known only after LOBSTER).
    """
    seed = SEEDS[0]
    targets = (
        PANELS[panel]["targets"]
        if LANDSCAPE["target"] is None
        else [LANDSCAPE["target"]]
    )
    base = f"results/{panel}/rewind/s{seed}"
    return {
        "trajectory": f"results/{panel}/lobster/s{seed}/trajectory.json",
        "snapshots": f"results/{panel}/lobster/s{seed}/snapshots.pt",
        "rewind_metrics": [f"{base}/t{target_str(t)}/metrics.json" for t in targets],
        "rewind_models": [f"{base}/t{target_str(t)}/models.pt" for t in targets],
    }


def landscape_table_inputs(wildcards):
    """The maps and Hessian points of the landscape panel, and the runs that give G's and
    1-S's test errors."""
    d, panel = LANDSCAPE_DIR, LANDSCAPE["panel"]
    runs = plane_runs(panel)
    return {
        "plane": f"{d}/plane.json",
        "loss": f"{d}/loss.csv",
        "loss_meta": f"{d}/loss.json",
        "psp": f"{d}/psp.csv",
        "hessian": f"{d}/hessian.csv",
        "trajectory": runs["trajectory"],
        "rewind_metrics": runs["rewind_metrics"],
    }


def landscape_figures():
    return expand(
        "results/figures/{figure}.{ext}", figure=LANDSCAPE_FIGURES, ext=FIGURE_FORMATS
    )


def claims_inputs(wildcards):
    """Every Fig. 1 panel's points and LOBSTER runs; the landscape's two solutions, its
    Hessian in both spaces and the training-length probe."""
    out = {
        "landscape": "results/tables/landscape.csv",
        "hessian_readings": f"{LANDSCAPE_DIR}/hessian_readings.csv",
        "probe": f"{LANDSCAPE_DIR}/probe.csv",
    }
    for figure, panel in FIGURE_PANEL.items():
        out[f"points_{panel}"] = f"results/figures/{figure}.csv"
        out[f"trajectories_{panel}"] = lobster_trajectories(panel)
    return out


def all_targets():
    return [
        "results/tables/claims.csv",
        "results/tables/dense.csv",
        "results/tables/fig1.csv",
        *fig1_figures(),
        *landscape_figures(),
        "results/tables/landscape.csv",
    ]
