"""The landscape quantities and their figures (the paper's Fig. 2a, 2b, 3, 4a, 4b): the only list
of them, of the maps on the plane that feed them, and of how each map figure is drawn.

A landscape quantity drawn on the plane is one :class:`MapFigure` entry: the map that measures
it (``MAP_KINDS``: one job per map, every quantity of a map in one pass per point), the column,
the colour bar's label and scale. The rules draw every entry for every landscape
(``results/figures/<name>.pdf`` for the paper's, ``results/figures/landscape/<panel>/<method>/``
for the others); a column no map measures yet is computed in ``psp.measure`` (the second file).

Imports nothing heavy (no torch, no matplotlib), so that the Snakemake rules read it.
"""

from __future__ import annotations

from typing import NamedTuple

# The maps on the plane, one job each, and the quantities each measures in one pass per point
# (an alias of READINGS is measured in its configured reading: reading_columns).
MAP_KINDS: dict[str, tuple[str, ...]] = {
    "loss": ("loss", "error"),
    "psp": ("psp_norm_mean_square", "psp_norm_l2", "entropy1", "entropy2"),
}
# What a map costs per point and sample, in forward passes of the dense network, for
# `python -m sharpminima.estimate` (measured: the default run's 13 x 9 maps of LeNet-5 took
# 5.6 s (loss) and 55 s (psp) of work beyond their start-up, 2026-12-07)
MAP_PASSES: dict[str, float] = {"loss": 1.0, "psp": 10.0}
# Maps whose quantities are also written per hidden layer ("<quantity>:<layer>" columns)
MAP_PER_LAYER: dict[str, bool] = {"loss": False, "psp": True}


# Quantities measured in several readings: the configured one is drawn and judged under a name of
# its own (alias -> the landscape setting that chooses it, and reading -> measured column).
READINGS: dict[str, tuple[str, dict[str, str]]] = {
    # Fig. 3's "PSP L2 norm": mean of z^2 (ours) or per-sample Euclidean norm (literal)
    "psp_norm": ("psp_norm", {"mean_square": "psp_norm_mean_square", "l2": "psp_norm_l2"}),
    # Fig. 4b's second-order entropy: of each neuron pair's joint state, or of their agreement
    "entropy2": ("entropy2", {"agreement": "entropy2_agreement", "joint": "entropy2_joint"}),
}


def reading_columns(settings) -> dict[str, str]:
    """Each alias's measured column under the landscape ``settings`` (config ``landscape``)."""
    return {alias: cols[settings[key]] for alias, (key, cols) in READINGS.items()}


def readings_of(settings) -> dict[str, str]:
    """Each alias's configured reading (recorded beside every map and table)."""
    return {alias: settings[key] for alias, (key, _) in READINGS.items()}


class MapFigure(NamedTuple):
    """One figure drawn from a map: its map kind, the column drawn, the colour bar's label and
    whether the colours are logarithmic."""

    map_kind: str
    column: str
    label: str
    log_scale: bool


MAP_FIGURES: dict[str, MapFigure] = {
    "fig2a": MapFigure("loss", "loss", "training loss", True),
    # log colours: the norm spans orders of magnitude on the plane (G and 1-S differ ~10x)
    "fig3": MapFigure("psp", "psp_norm", "PSP L2 norm (mean z^2, summed over hidden layers)", True),
    "fig4a": MapFigure("psp", "entropy1", "first-order PSP entropy (bits)", False),
    "fig4b": MapFigure("psp", "entropy2", "second-order PSP entropy (bits)", False),
}

# Fig. 2b is drawn from the Hessian at G and 1-S and on its grid, not from a map.
HESSIAN_FIGURE = "fig2b"
# Every landscape figure: the map figures and Fig. 2b.
LANDSCAPE_FIGURES: tuple[str, ...] = tuple(sorted([*MAP_FIGURES, HESSIAN_FIGURE]))

assert {f.map_kind for f in MAP_FIGURES.values()} <= set(MAP_KINDS)
assert set(MAP_PASSES) == set(MAP_KINDS), "every map kind states its cost (MAP_PASSES)"
assert set(MAP_PER_LAYER) == set(MAP_KINDS), "every map kind says whether it has per-layer columns"
assert HESSIAN_FIGURE not in MAP_FIGURES
