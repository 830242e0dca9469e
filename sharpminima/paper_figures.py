"""The landscape figures of the paper (Fig. 2a, 2b, 3, 4a, 4b): the only list of them, of the
maps on the plane that feed them, and of how each map figure is drawn.

Imports nothing heavy (no torch, no matplotlib), so that the Snakemake rules read it.
"""

from __future__ import annotations

from typing import NamedTuple

# The maps on the plane, one job each, and the quantities each measures in one pass per point
# ("entropy2" is measured by the configured second-order definition: entropy2_<definition>).
MAP_KINDS: dict[str, tuple[str, ...]] = {
    "loss": ("loss", "error"),
    "psp": ("psp_norm_mean_square", "psp_norm_l2", "entropy1", "entropy2"),
}


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

# Every landscape figure: the map figures and Fig. 2b (the Hessian at G and 1-S).
LANDSCAPE_FIGURES: tuple[str, ...] = ("fig2a", "fig2b", "fig3", "fig4a", "fig4b")

assert {f.map_kind for f in MAP_FIGURES.values()} <= set(MAP_KINDS)
assert set(MAP_FIGURES) < set(LANDSCAPE_FIGURES)
