"""The paper's claims, each checked against this run's numbers (results/tables/claims.csv).

One row per claim: the claim in a few words, where the paper makes it, the paper's number or
range, ours (mean, spread over seeds, how many seeds), the preset, and a verdict:

- ``holds`` / ``does not hold``: the numbers decide, by the rule printed in ``words``;
- ``not testable at this scale``: the claim is about an absolute number (an error, a loss, a
  colour-bar range) that only a run at the paper's scale can test, and this panel runs at
  reduced scale (the reason is in ``note``); or the run never reached the point the claim is
  about (say a sparsity LOBSTER did not reach).

The words that turn numbers into verdicts are settings (``claims`` in config.yaml):
``about_rel`` ("about x": within ``about_rel * x``), ``comparable_rel`` ("comparable",
"similar": within that fraction of the larger value), ``slightly_points`` ("only slightly
better": better by at most that many points of test error), ``recovered_points`` (a method
"recovers" the dense error when it is at most that many points above it).

The paper's numbers are in :data:`PAPER_FIG1` and :data:`PAPER_LANDSCAPE` (read from its
figures and text; docs/methods.md lists them with their sources). A panel whose (model, data
set) the paper does not have gets no Fig. 1 rows; the landscape rows compare G with 1-S on
any panel, and the colour-bar ranges only where the paper drew them (LeNet-5 on MNIST).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .settings import from_mapping

HOLDS, FAILS, UNTESTABLE = "holds", "does not hold", "not testable at this scale"
VERDICTS = (HOLDS, FAILS, UNTESTABLE)

COLUMNS = ["id", "claim", "where", "panel", "paper", "ours", "ours_mean", "ours_std", "n_seeds",
           "preset", "verdict", "words", "note"]

#: Fig. 1 of the paper per (model, data set): the LOBSTER sparsities (pruned parameters %) and
#: pruned neurons % of its points, its highest sparsity, and the text's anchors.
PAPER_FIG1 = {
    ("lenet300", "mnist"): {
        "figure": "Fig. 1a",
        "sparsities": [40.15, 60.64, 80.06, 90.07, 95.0, 98.0],
        "neurons": [0.98, 2.44, 11.7, 33.66, 48.54, 64.14],
    },
    ("lenet5", "mnist"): {
        "figure": "Fig. 1b",
        "sparsities": [63.05, 80.14, 90.01, 95.06, 98.0, 99.02, 99.57],
        "neurons": [1.55, 13.62, 37.75, 60.17, 74.31, 81.03, 83.45],
        # "about 99.20 % accuracy at 98 % pruned" (Sec. 5.1)
        "error_at_98": 0.8,
    },
    ("lenet5", "fashion_mnist"): {
        "figure": "Fig. 1c",
        "sparsities": [60.89, 80.53, 90.08, 95.02],
        "neurons": [0.0, 7.59, 30.17, 46.72],
    },
    ("resnet32", "cifar10"): {
        "figure": "Fig. 1d",
        "sparsities": [40.24, 60.72, 80.11],
        "neurons": [0.43, 0.52, 0.69],
        "dense_error": 7.5,  # "about 7.5 %" (Sec. 5.1; the axis of Fig. 1d starts at 7.2)
    },
}

#: The landscape of the paper (Fig. 2-4): LeNet-5 on MNIST at 99.57 % pruned; colour-bar
#: ranges of each map as printed (low, high).
PAPER_LANDSCAPE = {
    ("lenet5", "mnist"): {
        "sparsity": 99.57,
        "ranges": {
            "loss": ("Fig. 2a", (1e-5, 1e-4)),
            "eig": ("Fig. 2b", (1e2, 1e3)),
            "psp_norm": ("Fig. 3", (1e3, 1e4)),
            "entropy1": ("Fig. 4a", (1.82, 1.90)),
            "entropy2": ("Fig. 4b", (4.35, 4.50)),
        },
    },
}

RETRAIN_KINDS = ("rewind", "reinit", "random")
#: "at the paper's sparsity" within this many percentage points (a few parameters of LeNet-5)
SPARSITY_SLACK_PCT = 1e-3


@dataclass
class Words:
    """The tolerances behind the verdicts (config ``claims``)."""

    about_rel: float = 0.25
    comparable_rel: float = 0.1
    slightly_points: float = 1.0
    recovered_points: float = 0.5

    @classmethod
    def from_dict(cls, d: dict | None) -> "Words":
        return from_mapping(cls, d, "claims")


# -- the rules that turn numbers into verdicts --------------------------------------------

def verdict(ok: bool | None) -> str:
    return UNTESTABLE if ok is None else (HOLDS if ok else FAILS)


def about(ours: float, paper: float, rel: float) -> bool:
    return abs(ours - paper) <= rel * abs(paper)


def comparable(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b))


def within(values, lo: float, hi: float) -> bool:
    return all(lo <= v <= hi for v in values)


def slightly_better(better: float, worse: float, points: float) -> bool:
    """``better`` (an error) is lower than ``worse``, by at most ``points``."""
    return 0.0 < worse - better <= points


def recovers(error: float, dense_error: float, points: float) -> bool:
    return error <= dense_error + points


def at_paper_scale(panel: dict) -> bool:
    """A panel trained and evaluated on the whole data set, as the paper."""
    return all(panel.get(k) is None for k in ("train_samples", "val_samples", "test_samples"))


def scale_reason(panel: dict) -> str:
    sizes = ", ".join(f"{k.split('_')[0]} {panel[k]:,}" for k in
                      ("train_samples", "val_samples", "test_samples") if panel.get(k) is not None)
    return f"reduced scale ({sizes} images; the paper uses the whole data set)"


def _fmt(x, digits=4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}g}"


def _pm(mean, std, n, unit="") -> str:
    if mean is None:
        return "n/a"
    return (f"{_fmt(mean)}{unit} ± {_fmt(std, 2)}{unit} (n={n})" if n and n > 1
            else f"{_fmt(mean)}{unit} (n={n})")


def _row(**kw) -> dict:
    row = {c: None for c in COLUMNS}
    row.update(kw)
    return row


# -- Fig. 1 -------------------------------------------------------------------------------

def _lobster_max(trajectories: list[dict]):
    """Per LOBSTER seed, the event of highest sparsity: (sparsity %, neurons %) lists."""
    tops = [max(t["events"], key=lambda e: e["pruned_params_pct"]) for t in trajectories]
    return [e["pruned_params_pct"] for e in tops], [e["pruned_neurons_pct"] for e in tops]


def _first_at_or_above(trajectories: list[dict], sparsity: float):
    """Per LOBSTER seed, the first event at or above ``sparsity`` (None where none is)."""
    out = []
    for t in trajectories:
        ev = sorted(t["events"], key=lambda e: e["event"])
        out.append(next((e for e in ev if e["pruned_params_pct"] >= sparsity - 1e-9), None))
    return out


def _mean_std(values):
    s = pd.Series([v for v in values if v is not None], dtype=float)
    if not len(s):
        return None, None, 0
    return float(s.mean()), (float(s.std(ddof=1)) if len(s) > 1 else 0.0), int(len(s))


def _reached(points: pd.DataFrame, method: str) -> pd.DataFrame:
    p = points[(points["method"] == method) & points["reached"].astype(bool)]
    return p.set_index("target")


def _paper_view(points: pd.DataFrame, trajectories: list[dict]):
    """The paper's Fig. 1 within ours: dense, LOBSTER, the retrainings of LOBSTER's masks and
    one-shot (the other gradual methods have rows of their own: :func:`gradual_claims`)."""
    masks = points["masks_of"] if "masks_of" in points else pd.Series(None, index=points.index)
    retrained = points["method"].isin(RETRAIN_KINDS) & (masks.isna() | (masks == "lobster"))
    keep = points["method"].isin(["dense", "lobster", "oneshot"]) | retrained
    return points[keep], [t for t in trajectories if t.get("method", "lobster") == "lobster"]


def fig1_claims(panel_name: str, panel: dict, points: pd.DataFrame, trajectories: list[dict],
                words: Words, preset: str) -> list[dict]:
    """The claims of the paper's Fig. 1 (and Sec. 5.1) about one panel, from its Fig. 1
    points (``tables.fig1_points``) and gradual trajectories (the paper's are LOBSTER's)."""
    paper = PAPER_FIG1.get((panel["model"], panel["dataset"]))
    points, trajectories = _paper_view(points, trajectories)
    if paper is None or not trajectories:
        return []
    fig, rows = paper["figure"], []
    full = at_paper_scale(panel)
    base = dict(panel=panel_name, preset=preset)
    dense = points[points["method"] == "dense"].iloc[0]
    dense_err = float(dense["test_error_mean"])

    # highest sparsity, and the pruned neurons there
    top_s, top_n = _lobster_max(trajectories)
    m, sd, n = _mean_std(top_s)
    p_max = paper["sparsities"][-1]
    rows.append(_row(**base, id=f"{panel_name}:max_sparsity", where=fig,
                     claim="LOBSTER reaches the paper's highest sparsity (pruned parameters %)",
                     paper=f"{p_max} %", ours=_pm(m, sd, n, " %"), ours_mean=m, ours_std=sd,
                     n_seeds=n, verdict=verdict(m >= p_max - 1e-9), words="reaches: at least the paper's value",
                     note=None if m >= p_max else
                     f"LOBSTER stopped at {_fmt(m)} %: its epoch budget ended first"))
    at = _first_at_or_above(trajectories, p_max)
    hit = [e for e in at if e is not None]
    p_neur = paper["neurons"][-1]
    if hit:
        m, sd, n = _mean_std([e["pruned_neurons_pct"] for e in hit])
        v = verdict(about(m, p_neur, words.about_rel))
        note = f"at the first LOBSTER event at or above {p_max} % ({_fmt(hit[0]['pruned_params_pct'])} %)"
    else:
        m, sd, n = _mean_std(top_n)
        v = UNTESTABLE
        note = f"LOBSTER did not reach {p_max} %; at its highest sparsity ({_fmt(max(top_s))} %) {_fmt(m)} % of neurons are pruned"
    rows.append(_row(**base, id=f"{panel_name}:neurons_at_max", where=f"{fig} (top axis)",
                     claim="Pruned neurons at LOBSTER's highest sparsity", paper=f"{p_neur} %",
                     ours=_pm(m, sd, n, " %"), ours_mean=m, ours_std=sd, n_seeds=n, verdict=v,
                     words=f"about: within {words.about_rel:g} x the paper's value", note=note))

    # the comparison at LOBSTER's highest sparsity, between all methods
    lob = _reached(points, "lobster")
    others = [mt for mt in points["method"].unique() if mt not in ("dense", "lobster")]
    common = [t for t in sorted(lob.index) if all(t in _reached(points, mt).index for mt in others)]
    if common and others:
        t = common[-1]
        errs = {mt: _reached(points, mt).loc[t] for mt in others}
        lob_row = lob.loc[t]
        detail = ", ".join(f"{mt} {_pm(r['test_error_mean'], r['test_error_std'], int(r['n_seeds']))}"
                           for mt, r in errs.items())
        best_other = min(float(r["test_error_mean"]) for r in errs.values())
        rows.append(_row(**base, id=f"{panel_name}:lobster_best_at_max", where=f"{fig}, Sec. 5.1",
                         claim="At LOBSTER's highest sparsity its test error is below every other method's",
                         paper="LOBSTER lowest", ours=f"LOBSTER {_pm(lob_row['test_error_mean'], lob_row['test_error_std'], int(lob_row['n_seeds']))} vs {detail}",
                         ours_mean=float(lob_row["test_error_mean"]), ours_std=float(lob_row["test_error_std"]),
                         n_seeds=int(lob_row["n_seeds"]),
                         verdict=verdict(float(lob_row["test_error_mean"]) < best_other),
                         words="below: a lower mean test error (%)",
                         note=f"target {t:g} % (LOBSTER at {_fmt(lob_row['pruned_params_pct'])} %)"))
        rows.append(_row(**base, id=f"{panel_name}:oneshot_fails_high", where="Sec. 5.1, Sec. 6",
                         claim="Retraining in one shot fails to recover the dense error at high compression",
                         paper="fails", ours=f"best other method {_fmt(best_other)} vs dense {_fmt(dense_err)}",
                         ours_mean=best_other, n_seeds=int(min(int(r["n_seeds"]) for r in errs.values())),
                         verdict=verdict(not recovers(best_other, dense_err, words.recovered_points)),
                         words=f"recovers: within {words.recovered_points:g} points above the dense error",
                         note=f"at target {t:g} %, every method but LOBSTER ({', '.join(others)})"))
    else:
        rows.append(_row(**base, id=f"{panel_name}:lobster_best_at_max", where=f"{fig}, Sec. 5.1",
                         claim="At LOBSTER's highest sparsity its test error is below every other method's",
                         paper="LOBSTER lowest", verdict=UNTESTABLE, words="below: a lower mean test error (%)",
                         note="no target reached by LOBSTER and retrained by every method"))

    # rewind vs re-init: the original initialisation is only slightly better
    rw, ri = _reached(points, "rewind"), _reached(points, "reinit")
    both = [t for t in rw.index if t in ri.index]
    if both:
        gaps = [float(ri.loc[t, "test_error_mean"]) - float(rw.loc[t, "test_error_mean"]) for t in both]
        gap = sum(gaps) / len(gaps)
        rows.append(_row(**base, id=f"{panel_name}:rewind_slightly_better", where="Sec. 5.1",
                         claim="The original initialisation (rewind) is only slightly better than a random re-init",
                         paper="slightly better", ours=f"re-init minus rewind: {_fmt(gap)} points (mean over targets {', '.join(f'{t:g}' for t in both)})",
                         ours_mean=gap, n_seeds=int(rw["n_seeds"].min()),
                         verdict=verdict(0.0 < gap <= words.slightly_points),
                         words=f"only slightly better: ahead by more than 0 and at most {words.slightly_points:g} points",
                         note="per target: " + ", ".join(f"{t:g} %: {_fmt(g, 3)}" for t, g in zip(both, gaps))))

    # panel-specific anchors of the text
    retrainers = [mt for mt in RETRAIN_KINDS if mt in others]
    key = (panel["model"], panel["dataset"])
    if key == ("lenet300", "mnist") and retrainers:
        high = [t for t in sorted(lob.index) if t >= 95.0 - 1e-9
                and all(t in _reached(points, mt).index for mt in retrainers)]
        if high:
            worst = {t: min(float(_reached(points, mt).loc[t, "test_error_mean"]) for mt in retrainers) for t in high}
            ok = all(not recovers(e, dense_err, words.recovered_points) for e in worst.values())
            rows.append(_row(**base, id=f"{panel_name}:no_retrain_below_5pct", where="Sec. 5.1",
                             claim="LeNet-300 cannot be retrained below about 5 % remaining parameters",
                             paper="fails below 5 % remaining", ours=", ".join(
                                 f"{t:g} %: best retraining {_fmt(e)}" for t, e in worst.items()) + f"; dense {_fmt(dense_err)}",
                             ours_mean=min(worst.values()), n_seeds=int(_reached(points, retrainers[0])["n_seeds"].min()),
                             verdict=verdict(ok), words=f"recovers: within {words.recovered_points:g} points above the dense error",
                             note=f"every reached target >= 95 %, the best of {', '.join(retrainers)}"))
        else:
            rows.append(_row(**base, id=f"{panel_name}:no_retrain_below_5pct", where="Sec. 5.1",
                             claim="LeNet-300 cannot be retrained below about 5 % remaining parameters",
                             paper="fails below 5 % remaining", verdict=UNTESTABLE,
                             words=f"recovers: within {words.recovered_points:g} points above the dense error",
                             note="no target at or above 95 % was reached and retrained"))
    if key == ("lenet5", "fashion_mnist") and retrainers:
        t80 = next((t for t in sorted(lob.index) if t >= 80.0 - 1e-9
                    and all(t in _reached(points, mt).index for mt in retrainers)), None)
        if t80 is not None:
            best = min(float(_reached(points, mt).loc[t80, "test_error_mean"]) for mt in retrainers)
            rows.append(_row(**base, id=f"{panel_name}:cost_at_80", where="Sec. 5.1",
                             claim="On Fashion-MNIST, 80 % pruning already costs accuracy",
                             paper="degrades at 80 %", ours=f"best retraining {_fmt(best)} vs dense {_fmt(dense_err)} at {t80:g} %",
                             ours_mean=best, n_seeds=int(_reached(points, retrainers[0])["n_seeds"].min()),
                             verdict=verdict(not recovers(best, dense_err, words.recovered_points)),
                             words=f"costs: more than {words.recovered_points:g} points above the dense error",
                             note=f"the best of {', '.join(retrainers)} at the first target >= 80 %"))
    if "error_at_98" in paper:
        # the snapshot target 98 chose (its test error is measured); else the first event there
        chosen = [next((s for s in t.get("snapshots", []) if abs(float(s["target"]) - 98.0) < 1e-9 and s["reached"]), None)
                  for t in trajectories]
        at98 = [c if c is not None else e for c, e in zip(chosen, _first_at_or_above(trajectories, 98.0))]
        m, sd, n = _mean_std([e.get("test_error") for e in at98 if e is not None])
        ok = None if (not full or m is None) else about(m, paper["error_at_98"], words.about_rel)
        rows.append(_row(**base, id=f"{panel_name}:error_at_98", where="Sec. 5.1",
                         claim="LeNet-5 on MNIST keeps about 99.2 % accuracy at 98 % pruned (LOBSTER)",
                         paper=f"{paper['error_at_98']} % error", ours=_pm(m, sd, n, " %") + " error",
                         ours_mean=m, ours_std=sd, n_seeds=n, verdict=verdict(ok),
                         words=f"about: within {words.about_rel:g} x the paper's error",
                         note=None if full else scale_reason(panel) + "; an absolute error needs the paper's data and budget"))
    if "dense_error" in paper:
        ok = about(dense_err, paper["dense_error"], words.about_rel) if full else None
        rows.append(_row(**base, id=f"{panel_name}:dense_error", where="Sec. 5.1, Fig. 1d",
                         claim="ResNet-32's dense test error is about 7.5 %", paper=f"{paper['dense_error']} %",
                         ours=_pm(dense_err, dense['test_error_std'], int(dense['n_seeds']), " %"),
                         ours_mean=dense_err, ours_std=float(dense["test_error_std"]),
                         n_seeds=int(dense["n_seeds"]), verdict=verdict(ok),
                         words=f"about: within {words.about_rel:g} x the paper's value",
                         note=None if full else scale_reason(panel) + f"; {panel['dense']['epochs']} dense epochs (paper: 200)"))
    return rows


def gradual_claims(panel_name: str, points: pd.DataFrame, words: Words, preset: str,
                   labels: dict | None = None) -> list[dict]:
    """The paper's conclusion, per gradual method (LOBSTER, IMP, GMP, ...): pruned
    gradually, a network ends with a lower test error than pruned in one shot and fine-tuned
    (Sec. 5.1 and 6 draw it from LOBSTER alone). Judged at the highest target both reached."""
    labels = labels or {}
    base = dict(panel=panel_name, preset=preset)
    own = set(points["method"]) - {"dense", "oneshot", *RETRAIN_KINDS}
    oneshot = _reached(points, "oneshot")
    rows = []
    for m in sorted(own, key=lambda k: (k != "lobster", k)):
        name = labels.get(m, m)
        g = _reached(points, m)
        common = [t for t in sorted(g.index) if t in oneshot.index]
        claim = f"Pruned gradually ({name}), the network has a lower test error than pruned in one shot"
        if not common:
            rows.append(_row(**base, id=f"{panel_name}:gradual_beats_oneshot:{m}", where="Sec. 5.1, Sec. 6",
                             claim=claim, paper="gradual lower", verdict=UNTESTABLE,
                             words="lower: a lower mean test error (%)",
                             note=f"no target reached by both {name} and one-shot"))
            continue
        t = common[-1]
        a, b = g.loc[t], oneshot.loc[t]
        rows.append(_row(**base, id=f"{panel_name}:gradual_beats_oneshot:{m}", where="Sec. 5.1, Sec. 6",
                         claim=claim, paper="gradual lower",
                         ours=f"{name} {_pm(a['test_error_mean'], a['test_error_std'], int(a['n_seeds']))} "
                              f"at {_fmt(a['pruned_params_pct'])} % vs one-shot {_fmt(b['test_error_mean'])} "
                              f"at {_fmt(b['pruned_params_pct'])} %",
                         ours_mean=float(a["test_error_mean"]), ours_std=float(a["test_error_std"]),
                         n_seeds=int(a["n_seeds"]),
                         verdict=verdict(float(a["test_error_mean"]) < float(b["test_error_mean"])),
                         words="lower: a lower mean test error (%)",
                         note=f"target {t:g} %, the highest both reached"))
    return rows


# -- the features beyond the paper (Sec. 6's closing claim) --------------------------------


def transfer_claims(panel_name: str, runs: pd.DataFrame, words: Words, preset: str,
                    labels: dict | None = None) -> list[dict]:
    """The paper's closing claim, tested: gradually pruned features (higher second-order PSP
    entropy, "less class-specific") "potentially" transfer better. From the transfer probe's
    runs (``experiments.run_transfer``): per gradual method, its probe error on the second
    data set against every non-gradual pruned method's at the highest target all reached
    (retrainings of its own masks where Fig. 1 has them, else of LOBSTER's); and whether the
    second-order entropy goes with a lower probe error across all solutions (Pearson)."""
    from scipy.stats import pearsonr

    labels = labels or {}
    base = dict(panel=panel_name, preset=preset)
    runs = runs[~runs["control"].astype(bool)]
    if runs.empty:
        return []
    data = runs["probe_data"].iloc[0]
    mean = runs.groupby(["method", runs["masks_of"].fillna(""), "target"])["probe_error"].agg(["mean", "std", "size"])
    own = [m for m in runs["method"].unique() if m not in ("dense", "oneshot", *RETRAIN_KINDS)]
    sources = set(runs.loc[runs["method"].isin(RETRAIN_KINDS), "masks_of"].dropna())
    kinds = [k for k in RETRAIN_KINDS if (runs["method"] == k).any()]
    oneshot = {("oneshot", "")} if (runs["method"] == "oneshot").any() else set()
    rows = []
    for m in sorted(own, key=lambda k: (k != "lobster", k)):
        name = labels.get(m, m)
        src = m if m in sources else "lobster"
        others = {(k, src) for k in kinds} | oneshot
        targets = sorted(t for (mm, _, t) in mean.index if mm == m)
        common = [t for t in targets if all((k, s, t) in mean.index for k, s in others)]
        claim = f"Gradually pruned features ({name}) transfer better: a lower linear-probe error on {data}"
        if not common:
            rows.append(_row(**base, id=f"{panel_name}:transfer_better:{m}", where="Sec. 6 (future work)",
                             claim=claim, paper="potentially better", verdict=UNTESTABLE,
                             words="better: below every non-gradual pruned method at the same target",
                             note="no target probed for every method"))
            continue
        t = common[-1]
        g = mean.loc[(m, "", t)]
        rest = {k: mean.loc[(k, s, t)] for k, s in sorted(others)}
        rows.append(_row(**base, id=f"{panel_name}:transfer_better:{m}", where="Sec. 6 (future work)",
                         claim=claim, paper="potentially better",
                         ours=f"{name} {_fmt(g['mean'])} vs " + ", ".join(
                             f"{k} {_pm(v['mean'], v['std'] if v['size'] > 1 else 0.0, int(v['size']))}"
                             for k, v in rest.items()),
                         ours_mean=float(g["mean"]), n_seeds=int(g["size"]),
                         verdict=verdict(float(g["mean"]) < min(float(v["mean"]) for v in rest.values())),
                         words="better: below every non-gradual pruned method at the same target",
                         note=f"target {t:g} %; retrainings of {src}'s masks; probe error in %"
                              + ("; IMP's snapshots are themselves rewound retrainings of their masks, "
                                 "so its rewind differs from it by the data order only" if m == "imp" else "")))
    pruned = runs[runs["method"] != "dense"]
    claim = "The second-order PSP entropy explains transfer: higher entropy, lower probe error"
    if len(pruned) > 2 and pruned["entropy2"].nunique() > 1 and pruned["probe_error"].nunique() > 1:
        r, p = pearsonr(pruned["entropy2"], pruned["probe_error"])
        rows.append(_row(**base, id=f"{panel_name}:entropy_explains_transfer", where="Sec. 6 (explanation)",
                         claim=claim, paper="higher entropy, better transfer",
                         ours=f"Pearson r = {_fmt(float(r), 3)} (p = {float(p):.2g}) over {len(pruned)} pruned solutions",
                         ours_mean=float(r), n_seeds=int(len(pruned)),
                         verdict=verdict(bool(r < 0 and p < 0.05)),
                         words="explains: a negative correlation of entropy with probe error, p < 0.05",
                         note=f"probed on {data}; every pruned solution of every method and seed"))
    else:
        rows.append(_row(**base, id=f"{panel_name}:entropy_explains_transfer", where="Sec. 6 (explanation)",
                         claim=claim, paper="higher entropy, better transfer", verdict=UNTESTABLE,
                         words="explains: a negative correlation of entropy with probe error, p < 0.05",
                         note="fewer than three pruned solutions with distinct values"))
    return rows


# -- the landscape (Fig. 2-4) -------------------------------------------------------------

LANDSCAPE_RELATIONS = [
    ("lower_loss", "Fig. 2a", "G lies in a lower-loss region than 1-S", "loss", "less"),
    ("narrower", "Fig. 2b", "G sits in a narrower minimum: larger top-5 Hessian eigenvalues (mean)", "eig_mean", "greater"),
    ("generalises", "Fig. 2b, Sec. 5.2", "G generalises (slightly) better: lower test error", "test_error", "less"),
    ("lower_psp_norm", "Fig. 3", "G has the lower PSP L2 norm", "psp_norm", "less"),
    ("entropy1_comparable", "Fig. 4a", "G and 1-S have comparable first-order PSP entropies", "entropy1", "comparable"),
    ("higher_entropy2", "Fig. 4b", "G has the higher second-order PSP entropy", "entropy2", "greater"),
]


def landscape_claims(panel_name: str, panel: dict, solutions: pd.DataFrame, words: Words,
                     preset: str, readings: dict | None = None, gaps: dict | None = None,
                     method: str = "lobster", label: str | None = None) -> list[dict]:
    """The claims about one landscape's two solutions, from ``tables.landscape_summary``'s
    ``solutions`` (one row each for G and 1-S; a table of several landscapes is filtered
    to ``panel_name`` and ``method``: G is that gradual method's snapshot). ``readings``:
    the other definitions measured on the same points (``{"psp_norm": {reading: (G, 1-S)},
    "eig": {space: ([G top-k], [1-S top-k])}}``) and ``gaps``: an explanation per range
    quantity, both for the notes. Ids are ``landscape:<panel>:<method>:<claim>``."""
    if "method" in solutions:
        solutions = solutions[(solutions["method"] == method) & (solutions["panel"] == panel_name)]
    g = solutions[solutions["solution"] == "G"].iloc[0]
    s = solutions[solutions["solution"] == "1-S"].iloc[0]
    base = dict(panel=panel_name, preset=preset, n_seeds=1)
    who = f" (G: {label or method})"
    imp_note = ("IMP's G is itself a rewound retraining of its mask: 1-S differs from it by the "
                "data order and recipe only" if method == "imp" else None)
    panel_name = f"{panel_name}:{method}"  # the ids below
    paper = PAPER_LANDSCAPE.get((panel["model"], panel["dataset"]))
    rows = []
    sp = float(g["pruned_params_pct"])
    if paper:
        rows.append(_row(**base, id=f"landscape:{panel_name}:sparsity", where="Fig. 2-4",
                         claim="The landscape is drawn at the paper's sparsity" + who, paper=f"{paper['sparsity']} %",
                         ours=f"{_fmt(sp)} %", ours_mean=sp,
                         # a method pruning round(s * total) parameters may fall a fraction of one
                         # short in percent (GMP: 99.5699 % of LeNet-5's 431,080 at 99.57 %)
                         verdict=verdict(sp >= paper["sparsity"] - SPARSITY_SLACK_PCT),
                         words=f"at least the paper's sparsity (to {SPARSITY_SLACK_PCT:g} points)"))
    eig_cols = sorted([c for c in solutions.columns if c.startswith("eig") and c[3:].isdigit()],
                      key=lambda c: int(c[3:]))
    eig_g, eig_s = [float(g[c]) for c in eig_cols], [float(s[c]) for c in eig_cols]
    rows.append(_row(**base, id=f"landscape:{panel_name}:eigenvalues_positive", where="Fig. 2b",
                     claim=f"The top-{len(eig_cols)} Hessian eigenvalues are all positive at G and 1-S" + who,
                     paper="all positive", ours=f"smallest: G {_fmt(min(eig_g))}, 1-S {_fmt(min(eig_s))}",
                     ours_mean=min(eig_g + eig_s), verdict=verdict(min(eig_g + eig_s) > 0), words="> 0"))
    for key, where, text, q, rel in LANDSCAPE_RELATIONS:
        a, b = float(g[q]), float(s[q])
        if rel == "less":
            ok, w, claimed = a < b, "G's value below 1-S's", "G < 1-S"
        elif rel == "greater":
            ok, w, claimed = a > b, "G's value above 1-S's", "G > 1-S"
        else:
            ok, w = comparable(a, b, words.comparable_rel), f"comparable: within {words.comparable_rel:g} of the larger"
            claimed = "G ≈ 1-S"
        note = imp_note
        if q == "test_error":
            note = "; ".join(x for x in (f"gap {_fmt(b - a, 3)} points; 'slightly' (at most {words.slightly_points:g} points): "
                                         f"{'yes' if slightly_better(a, b, words.slightly_points) else 'no'}", imp_note) if x)
        rows.append(_row(**base, id=f"landscape:{panel_name}:{key}", where=where, claim=text + who,
                         paper=claimed, ours=f"G {_fmt(a)}, 1-S {_fmt(b)}", ours_mean=a,
                         verdict=verdict(bool(ok)), words=w, note=note))
    if paper:
        full = at_paper_scale(panel)
        values = {"loss": ([g["loss"]], [s["loss"]]), "eig": (eig_g, eig_s),
                  "psp_norm": ([g["psp_norm"]], [s["psp_norm"]]),
                  "entropy1": ([g["entropy1"]], [s["entropy1"]]),
                  "entropy2": ([g["entropy2"]], [s["entropy2"]])}
        names = {"loss": "training loss", "eig": f"top-{len(eig_cols)} Hessian eigenvalues",
                 "psp_norm": "PSP L2 norm", "entropy1": "first-order PSP entropy",
                 "entropy2": "second-order PSP entropy"}
        for q, (where, (lo, hi)) in paper["ranges"].items():
            vg, vs = [float(v) for v in values[q][0]], [float(v) for v in values[q][1]]
            inside = within(vg + vs, lo, hi)
            ours = (f"G {_fmt(min(vg))}-{_fmt(max(vg))}, 1-S {_fmt(min(vs))}-{_fmt(max(vs))}"
                    if len(vg) > 1 else f"G {_fmt(vg[0])}, 1-S {_fmt(vs[0])}")
            factor = _gap_factor(vg + vs, lo, hi)
            parts = []
            if not full:
                parts.append(scale_reason(panel))
            if factor > 1:
                parts.append(f"ours {factor:.3g}x {'below' if max(vg + vs) < lo else 'above'} the range")
            parts += _reading_notes(q, readings, lo, hi)
            if gaps and gaps.get(q):
                parts.append(gaps[q])
            rows.append(_row(**base, id=f"landscape:{panel_name}:range_{q}", where=where,
                             claim=f"The {names[q]} at G and 1-S lie in the paper's colour-bar range" + who,
                             paper=f"{lo:g} to {hi:g}", ours=ours, ours_mean=vg[0],
                             verdict=verdict(inside if full else None),
                             words="inside: every value within the range", note="; ".join(parts) or None))
    return rows


def _gap_factor(values, lo, hi) -> float:
    """How far the values lie outside [lo, hi], as a factor (1 = inside or touching)."""
    f = 1.0
    for v in values:
        if v <= 0:
            return math.inf if lo > 0 else 1.0
        if v < lo:
            f = max(f, lo / v)
        elif v > hi:
            f = max(f, v / hi)
    return f


def _reading_notes(q, readings, lo, hi) -> list[str]:
    out = []
    if not readings:
        return out
    key = {"psp_norm": "psp_norm", "eig": "eig"}.get(q)
    for name, (vg, vs) in (readings.get(key) or {}).items():
        vals = [*(vg if isinstance(vg, list) else [vg]), *(vs if isinstance(vs, list) else [vs])]
        f = _gap_factor(vals, lo, hi)
        where = "inside the range" if f <= 1 else f"{f:.3g}x outside"
        out.append(f"reading '{name}': G {_fmt(max(vg) if isinstance(vg, list) else vg)}, "
                   f"1-S {_fmt(max(vs) if isinstance(vs, list) else vs)} ({where})")
    return out


def claims_table(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    bad = set(df["verdict"]) - set(VERDICTS)
    if bad:
        raise ValueError(f"unknown verdicts {sorted(bad)}")
    return df


# -- what explains a magnitude gap: other readings, and the training-length probe ----------

def readings_from(solutions: pd.DataFrame, hessian_readings: pd.DataFrame | None,
                  psp_reading: str, hessian_space: str) -> dict:
    """The readings *not* configured, at G and 1-S, for the notes of the range claims."""
    out: dict = {"psp_norm": {}, "eig": {}}
    g = solutions[solutions["solution"] == "G"].iloc[0]
    s = solutions[solutions["solution"] == "1-S"].iloc[0]
    for name, col in (("mean_square", "psp_norm_mean_square"), ("l2", "psp_norm_l2")):
        if name != psp_reading and col in solutions.columns:
            out["psp_norm"][name] = (float(g[col]), float(s[col]))
    if hessian_readings is not None and len(hessian_readings):
        cols = [c for c in hessian_readings.columns if c.startswith("eig") and c[3:].isdigit()]
        for space, t in hessian_readings.groupby("space"):
            if space == hessian_space:
                continue
            tg, ts = t[t["solution"] == "G"].iloc[0], t[t["solution"] == "1-S"].iloc[0]
            out["eig"][f"{space} space"] = ([float(tg[c]) for c in cols], [float(ts[c]) for c in cols])
    return out


def gaps_from_probe(probe: pd.DataFrame | None, psp_reading: str, hessian_space: str) -> dict:
    """One sentence per range quantity: how it moved when G was trained further."""
    if probe is None or len(probe) < 2:
        return {}
    a, b = probe.iloc[0], probe.iloc[-1]
    e = int(b["epoch"])
    probe = probe.dropna(axis=1, how="all")
    cols = {"loss": "loss", "psp_norm": f"psp_norm_{psp_reading}", "eig": f"eig_mean_{hessian_space}",
            "entropy1": "entropy1", "entropy2": "entropy2"}
    out = {}
    for q, c in cols.items():
        if c not in probe.columns:
            continue
        x0, x1 = float(a[c]), float(b[c])
        if math.isnan(x0) or math.isnan(x1):
            continue
        ratio = (x1 / x0) if x0 else math.inf
        out[q] = (f"training length, measured: G trained {e} more epochs with its mask fixed moves it "
                  f"from {_fmt(x0)} to {_fmt(x1)} ({_fmt(ratio, 3)}x; probe.csv)")
    return out
