"""Where everything the workflow writes lives: the one table of its paths.

Each run or analysis has a folder, spelled once here as a pattern in Snakemake's wildcard
syntax; the rules use the patterns for their outputs, fill them for their inputs, and derive
each job's log and benchmark file from its folder (:func:`log`, :func:`benchmark`); the
library's readers (``record.py``) fill the same patterns. In the spirit of OpenLTH's
``foundations/paths.py``.

The wildcards, one name per concept (config, rules and library alike): ``panel``, ``dataset``,
``seed``, ``target`` (as :func:`target_str` spells it), ``gradual`` (a gradual method,
``gradual.GRADUAL_METHODS``), ``retraining`` (a retraining method,
``retraining.RETRAINING_METHODS``), ``map_kind`` (a map on the plane, ``paper_figures.MAP_KINDS``),
``figure``.

The run folders a configuration asks for (:func:`dense_runs`, :func:`gradual_runs`,
:func:`retraining_runs`, :func:`oneshot_runs`, :func:`landscape_runs`) are listed here too, for
the rules' input functions and the records alike.

Imports nothing heavy (no torch), so that the rules read it at no cost.
"""

from __future__ import annotations

from typing import Any, Mapping

from . import settings as _settings

RESULTS = "results"

SPLIT = "results/splits/{dataset}.json"
DENSE = "results/{panel}/dense/s{seed}"
GRADUAL = "results/{panel}/{gradual}/s{seed}"
RETRAINING = "results/{panel}/{gradual}/{retraining}/s{seed}/t{target}"
ONESHOT = "results/{panel}/oneshot/s{seed}/t{target}"
LANDSCAPE = "results/landscape/{panel}/{gradual}"
FEATURES = "results/{panel}/features"
TABLES = "results/tables"
FIGURES = "results/figures"
LANDSCAPE_FIGURES_DIR = "results/figures/landscape/{panel}/{gradual}"

# every figure is a PDF, a PNG and the CSV of the plotted numbers
FIGURE_FORMATS = ("pdf", "png", "csv")


def target_str(t) -> str:
    """A target sparsity as it appears in paths: 98.0 -> '98', 99.57 -> '99.57'."""
    return f"{float(t):g}"


def fill(pattern: str, **wildcards) -> str:
    """``pattern`` with its wildcards filled (a ``target`` spelled by :func:`target_str`)."""
    if "target" in wildcards:
        wildcards["target"] = target_str(wildcards["target"])
    return pattern.format(**wildcards)


def file_in(pattern: str, name: str, wildcards) -> str:
    """The file ``name`` in the folder ``pattern`` filled with a job's ``wildcards`` (a
    mapping; Snakemake's wildcards object): a job's resumable state, for one."""
    return f"{fill(pattern, **dict(wildcards.items()))}/{name}"


def _job(folder: str, step: str | None) -> str:
    rel = folder.removeprefix(RESULTS + "/")
    return f"{rel}/{step}" if step else rel


def log(folder: str, step: str | None = None) -> str:
    """The log file of the job that writes ``folder`` (or its ``step``)."""
    return f"logs/{_job(folder, step)}.log"


def benchmark(folder: str, step: str | None = None) -> str:
    """The benchmark file (Snakemake's ``benchmark:``) of the job that writes ``folder``."""
    return f"{RESULTS}/benchmarks/{_job(folder, step)}.tsv"


#: The benchmark file of every rule that has one, by rule name: the rules' ``benchmark:`` reads
#: it, and the record sets a run's benchmark files beside the estimate's jobs (``record.py``)
#: by filling it with each job's wildcards.
BENCHMARKS = {
    "train_dense": benchmark(DENSE),
    "gradual": benchmark(GRADUAL),
    "retrain": benchmark(RETRAINING),
    "oneshot": benchmark(ONESHOT),
    "plane_map": benchmark(LANDSCAPE, "{map_kind}"),
    "hessian": benchmark(LANDSCAPE, "hessian"),
    "landscape_probe": benchmark(LANDSCAPE, "probe"),
    "landscape_points": benchmark(LANDSCAPE, "points"),
    "similarity": benchmark(FEATURES, "similarity"),
    "transfer": benchmark(FEATURES, "transfer_{dataset}"),
}


def figure_files(folder: str, figure: str) -> list[str]:
    """A figure's files (:data:`FIGURE_FORMATS`) in ``folder``."""
    return [f"{folder}/{figure}.{ext}" for ext in FIGURE_FORMATS]


# -- the run folders a configuration asks for

Config = Mapping[str, Any]


def dense_runs(cfg: Config, panel: str) -> list[str]:
    """A panel's dense runs, one per seed."""
    return [fill(DENSE, panel=panel, seed=s) for s in _settings.seeds_of(cfg, panel)]


def gradual_runs(cfg: Config, panel: str, gradual: str | None = None) -> list[str]:
    """A panel's gradual runs (of every gradual method of the panel, or ``gradual``), each
    method at its seeds (``settings.gradual_seeds``)."""
    methods = [gradual] if gradual else _settings.gradual_methods(cfg, panel)
    return [fill(GRADUAL, panel=panel, gradual=m, seed=s)
            for m in methods for s in _settings.gradual_seeds(cfg, panel, m)]


def retraining_runs(cfg: Config, panel: str) -> list[str]:
    """A panel's retrainings for Fig. 1: of each gradual method's masks at its targets
    (``settings.retrain_targets``), of its first seed (the retrainings' own seeds are
    ``retrain_seeds``, as the paper retrains one LOBSTER run's masks), by every retraining
    method of ``methods``."""
    from .retraining import RETRAINING_METHODS

    p, seed = cfg["panels"][panel], _settings.retrained_seed(cfg, panel)
    methods = [m for m in cfg["methods"] if m in RETRAINING_METHODS]
    return [fill(RETRAINING, panel=panel, gradual=g, retraining=r, seed=seed, target=t)
            for g, ts in _settings.retrain_targets(cfg, panel).items()
            for r in methods for t in _settings.method_targets(p, r, ts)]


def oneshot_runs(cfg: Config, panel: str) -> list[str]:
    """A panel's one-shot runs: every dense seed at every target (none unless ``methods``
    names ``oneshot``)."""
    if "oneshot" not in cfg["methods"]:
        return []
    targets = cfg["panels"][panel]["targets"]
    return [fill(ONESHOT, panel=panel, seed=s, target=t)
            for s in _settings.seeds_of(cfg, panel) for t in targets]


def landscape_runs(cfg: Config, panel: str, gradual: str, seed: int) -> tuple[str, list[str]]:
    """A landscape's G at one gradual ``seed`` (the gradual run) and the rewind retrainings
    of its mask: at the landscape's target, or at every target when G's target is 'the highest
    reached' (known only after the gradual run)."""
    target = _settings.landscape_target(cfg, panel)
    targets = cfg["panels"][panel]["targets"] if target is None else [target]
    return (fill(GRADUAL, panel=panel, gradual=gradual, seed=seed),
            [fill(RETRAINING, panel=panel, gradual=gradual, retraining="rewind", seed=seed, target=t)
             for t in targets])


# -- what a configuration draws and writes (the default target)


def transfer_tables(cfg: Config) -> dict[str, str]:
    """Each transfer pair's table: ``{transfer_<panel>: path}``."""
    pairs = cfg["features"]["transfer"]["pairs"]
    return {f"transfer_{p}": f"{fill(FEATURES, panel=p)}/transfer_{d}.csv" for p, d in pairs.items()}


def figures(cfg: Config) -> list[str]:
    """Every figure of a configuration: each panel's Fig. 1; every landscape's Fig. 2-4 and
    the paper's (the first landscape's, under the paper's names); the features' figures."""
    from .paper_figures import LANDSCAPE_FIGURES

    panels = [p["figure"] for p in cfg["panels"].values() if p["figure"]]
    landscapes = _settings.landscapes(cfg)
    folders = [(FIGURES, LANDSCAPE_FIGURES)] + [
        (fill(LANDSCAPE_FIGURES_DIR, panel=p, gradual=g), LANDSCAPE_FIGURES) for p, g in landscapes]
    out = [f for fig in panels for f in figure_files(FIGURES, fig)]
    out += [f for folder, names in folders for fig in names for f in figure_files(folder, fig)]
    out += [f for p in cfg["features"]["panels"] for f in figure_files(f"{FIGURES}/similarity", p)]
    out += [f for p, d in cfg["features"]["transfer"]["pairs"].items()
            for kind in ("transfer", "entropy_transfer") for f in figure_files(f"{FIGURES}/{kind}", f"{p}_to_{d}")]
    return out


def all_targets(cfg: Config) -> list[str]:
    """The default target: every figure and every table of the run."""
    tables = ("claims", "dense", "fig1", "landscape", "landscape_points")
    return [*figures(cfg), *[f"{TABLES}/{t}.csv" for t in tables]]
