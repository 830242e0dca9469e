# All Python of the workflow: config validation, wildcard constraints, paths, input
# functions and resources. Rules stay declarative.

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

PANELS = config["panels"]
SEEDS = config["seeds"]
DATASETS = sorted({p["dataset"] for p in PANELS.values()})
DATA_DIR = config["data_dir"]


def _alternatives(names):
    return "|".join(sorted(names))


wildcard_constraints:
    panel=_alternatives(PANELS),
    dataset=_alternatives(DATASETS),
    seed=r"\d+",


# Every job runs the package of this checkout (workflow_scripts/_adapter.py); its code
# version is what the results' provenance records. Snakemake's code-change trigger does not
# see the package: after editing sharpminima/, rerun the affected outputs with --forcerun.


def manifest_path(dataset):
    return f"{DATA_DIR}/{dataset}.manifest.json"


def panel_of(wildcards):
    return PANELS[wildcards.panel]


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


def data_settings(wildcards):
    """The settings of a panel that shape its data (for params: a change reruns the job)."""
    p = PANELS[wildcards.panel]
    return {k: p[k] for k in ("model", "dataset", "train_samples", "val_samples", "test_samples")}


# -- targets
def dense_metrics(panel=None):
    panels = [panel] if panel else list(PANELS)
    return [f"results/{p}/dense/s{s}/metrics.json" for p in panels for s in SEEDS]


def all_targets():
    return ["results/tables/dense.csv"]
