"""The paper's figures, drawn from tidy tables (never from checkpoints).

Each function takes the table a rule wrote and returns a matplotlib Figure; the caller
saves it (PDF and PNG) next to the CSV of the plotted numbers.
"""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")  # figures are files; no display is ever needed

import matplotlib.pyplot as plt
from matplotlib.colors import LogNorm
from matplotlib.ticker import FuncFormatter
import numpy as np
import pandas as pd

from .paper_figures import MAP_FIGURES
from .retraining import role_of

# One style per method, in the paper's order of Fig. 1, then the gradual methods beyond it.
METHOD_STYLE = {
    "lobster": ("LOBSTER (gradual)", "C0", "o", "-"),
    "imp": ("IMP, rewind (gradual)", "C5", "P", "-"),
    "gmp": ("GMP, cubic (gradual)", "C6", "X", "-"),
    "rewind": ("Frankle & Carbin (rewind)", "C1", "s", "--"),
    "reinit": ("Liu et al. (re-init)", "C2", "^", "--"),
    "random": ("random pruning", "C3", "v", ":"),
    "oneshot": ("one-shot magnitude", "C4", "D", "-."),
    "rewind_matched": ("rewind, gradual's budget", "C8", "s", (0, (1, 1))),
}


def _wrap(title: str, width: int) -> str:
    """Wrap each line of a title so that none runs off the figure."""
    return "\n".join(textwrap.fill(line, width) for line in title.splitlines())


def sparsity_axis(pct):
    """Position of a sparsity on Fig. 1's bottom axis: -log10(1 - pct/100), so that 90 %,
    99 % and 99.57 % are as readable as 40 % and 60 % (the paper spaces its ticks likewise)."""
    pct = np.minimum(np.asarray(pct, dtype=float), 99.999)
    return -np.log10(1.0 - pct / 100.0)


def _method_styles(methods) -> dict:
    """The paper's methods in their order and style, then any other method (one a user
    added) in a style of its own, so that no curve is silently left out."""
    styles = dict(METHOD_STYLE)
    extra = sorted(set(methods) - set(styles) - {"dense"})
    for k, m in enumerate(extra):
        styles[m] = (m, f"C{(5 + k) % 10}", "xP*hX"[k % 5], "-")
    return styles


def _bottom_ticks(gradual_pct, other_pct, min_gap: float = 0.05) -> list:
    """The first gradual method's snapshot sparsities, then every other sparsity (one-shot
    prunes to the exact target) that is not within ``min_gap`` of a tick already there on
    the log axis, so every point has a readable label and none overlap."""
    ticks = sorted(float(v) for v in pd.unique(np.asarray(gradual_pct, dtype=float)))
    for v in sorted(pd.unique(np.asarray(other_pct, dtype=float))):
        if all(abs(sparsity_axis(v) - sparsity_axis(t)) >= min_gap for t in ticks):
            ticks.append(float(v))
    return sorted(ticks)


def _gradual_methods(points: pd.DataFrame) -> list[str]:
    """The gradual methods of a Fig. 1 table, in the registry's order (LOBSTER, the paper's,
    first), then any other; the first is the one the top axis and the ticks follow."""
    from .gradual import GRADUAL_METHODS

    roles = points["method"].map(role_of)
    if "role" in points:  # the table's own column where it has one
        roles = points["role"].astype(object).where(points["role"].notna(), roles)
    own = list(pd.unique(points.loc[roles == "gradual", "method"]))
    return [*[m for m in GRADUAL_METHODS if m in own], *[m for m in own if m not in GRADUAL_METHODS]]


def _name(method: str) -> str:
    """A method's name in sentences: the gradual registry's label, else the method's key."""
    from .gradual import GRADUAL_METHODS

    return GRADUAL_METHODS[method].label if method in GRADUAL_METHODS else method


def _mask_source(row, gradual: list[str]):
    """The gradual method whose mask a retraining row retrained (tables without a
    ``masks_of`` column: the first gradual method, as before there was a choice)."""
    masks = getattr(row, "masks_of", None)
    if isinstance(masks, str):
        return masks
    return gradual[0] if gradual and role_of(row.method) == "retraining" else None


def _missed_targets(points: pd.DataFrame) -> list[str]:
    """One line per target sparsity some method did not reach. A target a gradual method
    missed has no snapshot, hence no retraining from it: said once, with the highest
    sparsity reached."""
    lines = []
    missed = points[~points.reached]
    gradual = _gradual_methods(points)
    sources = {_mask_source(r, gradual) for r in points.itertuples(index=False)} - {None}
    said = set()
    for row in missed[missed.method.isin(gradual)].itertuples(index=False):
        best = f" (highest reached: {row.max_reached:.4g} %)" if pd.notna(row.max_reached) else ""
        lines.append(f"target {row.target:g} % not reached by {_name(row.method)}{best}"
                     + (": no snapshot there, so no retraining from it" if row.method in sources else ""))
        said.add((row.method, row.target))
    for row in missed[~missed.method.isin(gradual)].itertuples(index=False):
        if (_mask_source(row, gradual), row.target) in said:
            continue
        lines.append(f"target {row.target:g} % not reached by {_name(row.method)}")
    return list(dict.fromkeys(lines))


def _mask_style(masks: str) -> str:
    """The line style of the retrainings of one gradual method's masks."""
    from .gradual import GRADUAL_METHODS

    order = list(GRADUAL_METHODS)
    return ["--", ":", "-."][(order.index(masks) if masks in order else len(order)) % 3]


def _curves(points: pd.DataFrame) -> pd.DataFrame:
    """A ``curve`` column: the method, or for retrainings of several gradual methods' masks
    ``method:masks_of``, each of which gets a line of its own."""
    out = points.copy()
    masks = out["masks_of"] if "masks_of" in out else pd.Series(None, index=out.index)
    several = masks.dropna().nunique() > 1
    out["curve"] = [f"{m}:{k}" if several and isinstance(k, str) else m
                    for m, k in zip(out.method, masks)]
    return out


def _method_curves(ax, points: pd.DataFrame, value: str, std: str | None = None,
                   seeds: bool = False) -> None:
    """One line per method (and mask source: ``_curves``) of ``value`` against pruned
    parameters on Fig. 1's axis, the paper's methods first, with a +-``std`` band; ``seeds``:
    the label says over how many seeds (when more than one)."""
    points = _curves(points)
    styles = _method_styles(points.method.unique())
    for curve in dict.fromkeys([*[c for c in styles if c in set(points.curve)],
                                *sorted(set(points.curve))]):
        d = points[points.curve == curve].sort_values("pruned_params_pct")
        if d.empty or curve == "dense":
            continue
        method, _, masks = curve.partition(":")
        label, color, marker, ls = styles[method]
        if masks:  # one colour per method, one line style per mask source
            label, ls = f"{label}, {masks} masks", _mask_style(masks)
        n = int(d.n_seeds.max()) if "n_seeds" in d else 1
        x = sparsity_axis(d.pruned_params_pct)
        ax.plot(x, d[value], ls=ls, marker=marker, color=color, ms=5,
                label=f"{label} (n={n})" if seeds and n > 1 else label)
        band = d[std].fillna(0.0) if std else None
        if band is not None and (band > 0).any():  # kept above 0 for a log axis
            low = np.maximum(d[value] - band, 0.5 * d[value]) if ax.get_yscale() == "log" else d[value] - band
            ax.fill_between(x, low, d[value] + band, color=color, alpha=0.15)


def fig1(points: pd.DataFrame, title: str, note: str = "") -> plt.Figure:
    """Test error (%) against pruned parameters (%) per method, mean with a +-std band over
    seeds; pruned neurons (%) of the first gradual method's solutions (LOBSTER in the paper)
    on the top axis. Targets a method did not reach are listed under the axes instead of
    being silently dropped; ``note`` (what the configuration changes from the paper) is
    printed under them."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    reached = points[points.reached]
    errors = reached["test_error_mean"].astype(float)
    if (errors > 0).all() and len(errors):
        # the paper's logarithmic error axis: its 0.7-3 % region stays readable beside the
        # tens of percent of random masks at 90 % and above; labels at 1-2-5 steps
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))
        ax.tick_params(axis="y", which="minor", labelsize=7)
    _method_curves(ax, reached, "test_error_mean", "test_error_std", seeds=True)
    dense = reached[reached.method == "dense"]
    if not dense.empty:
        ax.axhline(float(dense.test_error_mean.iloc[0]), color="0.4", lw=0.8, ls=":",
                   label=f"dense (n={int(dense.n_seeds.iloc[0])})")
    gradual = _gradual_methods(points)
    first = gradual[0] if gradual else None
    lead = reached[reached.method == first].sort_values("pruned_params_pct")
    ticks = _bottom_ticks(lead.pruned_params_pct,
                          reached[~reached.method.isin(["dense", first])].pruned_params_pct)
    ax.set_xticks(sparsity_axis(ticks))
    ax.set_xticklabels([f"{v:.4g}" for v in ticks], rotation=45, fontsize=8)
    ax.set_xlabel("pruned parameters (%)")
    ax.set_ylabel("test error (%)")
    if not lead.empty:
        top = ax.secondary_xaxis("top")
        top.set_xticks(sparsity_axis(lead.pruned_params_pct))
        top.set_xticklabels([f"{v:.3g}" for v in lead.pruned_neurons_pct], rotation=45, fontsize=8)
        top.set_xlabel(f"pruned neurons (%) of the {_name(first)} solutions")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(_wrap(title, 90), fontsize=9)
    footer = []
    footer.extend(_missed_targets(points))
    if note:
        footer.append("differs from the paper: " + note)
    text = "\n".join(textwrap.fill(line, 120) for line in footer)
    if text:
        fig.text(0.01, 0.01, text, fontsize=6.5, color="0.3", va="bottom")
    fig.tight_layout(rect=(0, 0.025 * (text.count("\n") + 1) + 0.01 if text else 0, 1, 1))
    return fig


def plane_map(df: pd.DataFrame, value: str, title: str, label: str, log: bool = False,
              marks=((0.0, 0.0, "G"), (1.0, 0.0, "1-S"))) -> plt.Figure:
    """A quantity on the plane theta(G) + a u + b v, with G and 1-S marked."""
    grid = df.pivot(index="b", columns="a", values=value).sort_index().sort_index(axis=1)
    a, b, z = grid.columns.values, grid.index.values, grid.values
    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    if log:
        positive = z[np.isfinite(z) & (z > 0)]
        norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size else None
        mesh = ax.pcolormesh(a, b, z, shading="nearest", norm=norm, cmap="viridis")
    else:
        mesh = ax.pcolormesh(a, b, z, shading="nearest", cmap="viridis")
    cbar = fig.colorbar(mesh, ax=ax)
    cbar.set_label(label)
    for x, y, name in marks:
        ax.plot([x], [y], marker="*", color="white", markeredgecolor="black", markersize=14)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6), color="white",
                    fontweight="bold")
    ax.set_xlabel("a (along u = 1-S - G)")
    ax.set_ylabel("b (along v: random on the mask, orthogonal to u)", fontsize=9)
    ax.set_title(_wrap(title, 70), fontsize=9)
    fig.tight_layout()
    return fig


# Fig. 2a, 3, 4a, 4b: which column of which map, and how it is drawn (the one list).
LANDSCAPE_MAPS = MAP_FIGURES


def hessian_figure(points: pd.DataFrame, grid: pd.DataFrame, title: str) -> plt.Figure:
    """Fig. 2b: the top-k eigenvalues at G and 1-S side by side, and (when computed) the
    mean of the top-k on a coarse grid of the plane."""
    eig_cols = [c for c in points.columns if c.startswith("eig") and c[3:].isdigit()]
    has_map = grid is not None and len(grid) > 0
    fig, axes = plt.subplots(1, 2 if has_map else 1, figsize=(11 if has_map else 5.6, 4.4))
    ax = axes[0] if has_map else axes
    k = np.arange(1, len(eig_cols) + 1)
    width = 0.38
    for off, (_, row) in zip((-width / 2, width / 2), points.iterrows()):
        vals = row[eig_cols].astype(float).values
        ax.bar(k + off, vals, width, label=row["solution"])
    ax.set_xticks(k)
    ax.set_xlabel("eigenvalue rank")
    ax.set_ylabel("Hessian eigenvalue (sparse subspace)")
    positive = points[eig_cols].astype(float).values
    if (positive > 0).all():
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")  # "3", not "3 x 10^0"
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(_wrap(title, 80), fontsize=9)
    if has_map:
        g = grid.pivot(index="b", columns="a", values="eig_mean").sort_index().sort_index(axis=1)
        z = g.values
        # The mean top-k spans orders of magnitude across the plane: log colours when it can.
        norm = LogNorm() if np.isfinite(z).all() and (z > 0).all() else None
        mesh = axes[1].pcolormesh(g.columns.values, g.index.values, z, shading="nearest",
                                  cmap="magma", norm=norm)
        bs = g.index.values
        dy = float(np.min(np.diff(bs))) if len(bs) > 1 else 1.0
        for (i, j), v in np.ndenumerate(z):  # a coarse grid: print each value in its cell,
            # under the centre (where G and 1-S are marked), light on dark colours
            axes[1].text(g.columns.values[j], bs[i] - 0.3 * dy, f"{v:.3g}", ha="center",
                         va="center", fontsize=7,
                         color="white" if mesh.norm(v) < 0.5 else "black")
        fig.colorbar(mesh, ax=axes[1]).set_label(f"mean of the top-{len(eig_cols)} eigenvalues")
        for x, y, name in ((0.0, 0.0, "G"), (1.0, 0.0, "1-S")):
            axes[1].plot([x], [y], marker="*", color="white", markeredgecolor="black", markersize=14)
            axes[1].annotate(name, (x, y), textcoords="offset points", xytext=(6, 6), color="white", fontweight="bold")
        axes[1].set_xlabel("a (along u = 1-S - G)")
        axes[1].set_ylabel("b (along v)")
        axes[1].set_title("coarse grid of the same plane", fontsize=9)
    fig.tight_layout()
    return fig


# -- the features of every solution (beyond the paper) -----------------------------------------


def _sparsity_ticks(ax, pct) -> None:
    ticks = _bottom_ticks(pct, [])
    ax.set_xticks(sparsity_axis(ticks))
    ax.set_xticklabels([f"{v:.4g}" for v in ticks], rotation=45, fontsize=7)


def similarity_figure(points: pd.DataFrame, title: str) -> plt.Figure:
    """SVCCA (top row) and linear CKA (bottom row) of each hidden layer (columns) with the
    dense model's, against pruned parameters (%), one line per method (mean over seeds)."""
    layers = points.sort_values("depth").layer.unique()
    fig, axes = plt.subplots(2, len(layers), figsize=(3.0 * len(layers) + 1.0, 5.4), squeeze=False,
                             sharey="row")
    for j, layer in enumerate(layers):
        d = points[points.layer == layer]
        for i, (value, name) in enumerate((("svcca", "SVCCA"), ("cka", "linear CKA"))):
            ax = axes[i, j]
            _method_curves(ax, d, value, f"{value}_std")
            _sparsity_ticks(ax, d.pruned_params_pct)
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(layer, fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{name} with dense")
            if i == 1:
                ax.set_xlabel("pruned parameters (%)", fontsize=8)
    axes[0, -1].legend(fontsize=6, loc="lower left")
    fig.suptitle(_wrap(title, 110), fontsize=9)
    fig.tight_layout()
    return fig


def transfer_figure(points: pd.DataFrame, title: str) -> plt.Figure:
    """The linear probe's test error (%) on the second data set (left) and on the solution's
    own (right, the control) against pruned parameters (%), one line per method; the dense
    model's as a dotted line."""
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.2))
    for ax, control in zip(axes, (False, True)):
        d = points[points.control == control]
        if d.empty:
            continue
        _method_curves(ax, d, "probe_error", "probe_error_std")
        dense = d[d.method == "dense"]
        if not dense.empty:
            ax.axhline(float(dense.probe_error.iloc[0]), color="0.4", lw=0.8, ls=":", label="dense")
        _sparsity_ticks(ax, d[d.method != "dense"].pruned_params_pct)
        ax.set_title(f"probed on {d.probe_data.iloc[0]}" + (" (the control: its own data)" if control else ""),
                     fontsize=9)
        ax.set_xlabel("pruned parameters (%)")
        ax.set_ylabel("probe test error (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(_wrap(title, 110), fontsize=9)
    fig.tight_layout()
    return fig


def entropy_transfer_figure(runs: pd.DataFrame, title: str) -> plt.Figure:
    """Every solution's second-order PSP entropy (on its own data) against its probe error
    on the second data set, coloured by method, with Pearson's r (and its p) over the pruned
    ones."""
    from scipy.stats import pearsonr

    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    styles = _method_styles(runs.method.unique())
    for method in dict.fromkeys([*[m for m in styles if m in set(runs.method)], *sorted(set(runs.method))]):
        d = runs[runs.method == method]
        label, color, marker, _ = ("dense", "0.3", "*", "-") if method == "dense" else styles[method]
        ax.scatter(d.entropy2, d.probe_error, color=color, marker=marker, label=label, s=22)
    pruned = runs[runs.method != "dense"]  # as the claims table: the pruned solutions
    if len(pruned) > 2 and pruned.entropy2.nunique() > 1 and pruned.probe_error.nunique() > 1:
        r, p = pearsonr(pruned.entropy2, pruned.probe_error)
        title += f"\nPearson r = {r:.3f} (p = {p:.2g}, n = {len(pruned)} pruned solutions)"
    ax.set_xlabel("second-order PSP entropy (bits)")
    ax.set_ylabel("probe test error on the second data set (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(_wrap(title, 80), fontsize=9)
    fig.tight_layout()
    return fig
