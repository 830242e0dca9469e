"""The paper's claims, each checked against this run's numbers (results/tables/claims.csv).

One row per claim: the claim in a few words, where the paper makes it, the paper's number or
range, ours (mean ± std over seeds, how many), the effect with its confidence interval, the
preset and a verdict (:mod:`sharpminima.verdicts`, docs/methods.md §8):

- ``holds`` / ``does not hold``: the interval of the quantity over seeds lies wholly inside /
  wholly outside the region where the claim is true (the rule is printed in ``words``);
- ``unresolved at n seeds``: the interval straddles the region's edge (the difference is
  within the spread of the seeds; a group of one seed has no known spread), or the verdict
  reverses between selection rules (Fig. 1: every rule of ``training.SELECTIONS`` is judged
  from the same runs; the configured one decides unless another reverses it);
- ``not testable at this scale``: the claim is about an absolute number (an error, a loss, a
  colour-bar range) that only a run at the paper's scale can test, and this panel runs at
  reduced scale (the reason is in ``note``); or the run never reached the point the claim is
  about (say a sparsity LOBSTER did not reach).

The words that turn numbers into regions are settings (``claims`` in config.yaml): ``alpha``
(the level of the intervals), ``about_rel`` ("about x": within ``about_rel * x``),
``comparable_rel`` ("comparable": the difference within that fraction of the larger value;
by default the paper's own Fig. 4a colour bar, 1.82-1.90, 4.2 % of its top),
``slightly_points`` ("only slightly better": better by at most that many points of test
error), ``recovered_points`` (a method "recovers" the dense error when it is at most that many
points above it).

The paper's numbers are in :data:`PAPER_FIG1` and :data:`PAPER_LANDSCAPE` (read from its
figures and text; docs/methods.md lists them with their sources). A panel whose (model, data
set) the paper does not have gets no Fig. 1 rows; the landscape rows compare G with 1-S on
any panel, and the colour-bar ranges only where the paper drew them (LeNet-5 on MNIST).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .gradual import GRADUAL_METHODS, PAPER_GRADUAL
from .retraining import RETRAINING_METHODS, role_of
from .settings import from_mapping
from .tables import SELECTIONS, split_values
from .verdicts import (FAILS, HOLDS, NEGATIVE, POSITIVE, UNRESOLVED, UNTESTABLE, VERDICTS, Estimate,
                       Region, across_rules, all_of, at_most, between, decide,
                       difference_interval, mean_interval)

COLUMNS = ["id", "claim", "where", "panel", "paper", "ours", "ours_mean", "ours_std", "n_seeds",
           "effect", "preset", "verdict", "words", "note"]

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
        # "about 99.20 % accuracy at 98 % pruned" (Sec. 5.1, the paragraph on retraining)
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
        # the paper gives no number (its Fig. 1d axis starts at 7.2 %): its sources do, He et
        # al. 7.51 % and the training code it cites 7.37 %
        "dense_error": (7.37, 7.51),
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

RETRAIN_KINDS = tuple(RETRAINING_METHODS)  # the registry (sharpminima/retraining.py)
# the paper's Fig. 1 baselines among them (its claims compare LOBSTER with these only)
PAPER_RETRAININGS = tuple(k for k, m in RETRAINING_METHODS.items() if m.paper)
#: the retrainings Sec. 5.1 speaks of ("the original initialisation ... and a random one")
SEC51_RETRAININGS = ("rewind", "reinit")
#: "at the paper's sparsity" within this many percentage points (a few parameters of LeNet-5)
SPARSITY_SLACK_PCT = 1e-3
#: the target at or below which retraining is "at low compression" (Sec. 5.1)
LOW_COMPRESSION_PCT = 60.0


@dataclass
class Words:
    """The level of the intervals and the tolerances behind the verdicts (config ``claims``)."""

    alpha: float = 0.05
    about_rel: float = 0.25
    comparable_rel: float = 0.042
    slightly_points: float = 1.0
    recovered_points: float = 0.5

    @classmethod
    def from_dict(cls, d: dict | None) -> "Words":
        return from_mapping(cls, d, "claims")

    def rule(self) -> str:
        return f"{100 * (1 - 2 * self.alpha):g} % interval over seeds (Welch; t for one group)"


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


def _pm_values(values, unit="") -> str:
    m, sd, n = _mean_std(values)
    return _pm(m, sd, n, unit)


def _row(**kw) -> dict:
    row = {c: None for c in COLUMNS}
    row.update(kw)
    return row


def _mean_std(values):
    s = pd.Series([v for v in values if v is not None], dtype=float)
    if not len(s):
        return None, None, 0
    return float(s.mean()), (float(s.std(ddof=1)) if len(s) > 1 else 0.0), int(len(s))


def _words(words: Words, region_text: str) -> str:
    return f"{region_text}; {words.rule()}"


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


def _first_events(trajectories: list[dict]) -> list[float]:
    """Per run, the sparsity of its first pruning event (the lowest mask it has)."""
    out = []
    for t in trajectories:
        pruned = [e["pruned_params_pct"] for e in t["events"] if e["pruned_params_pct"] > 0]
        if pruned:
            out.append(min(pruned))
    return out


def _roles(points: pd.DataFrame) -> pd.Series:
    """Each row's role (dense, gradual, retraining, oneshot): its column, else the registry's
    (tables written before the column)."""
    roles = points["method"].map(role_of)
    return points["role"].astype(object).where(points["role"].notna(), roles) if "role" in points else roles


def _reached(points: pd.DataFrame, method: str) -> pd.DataFrame:
    p = points[(points["method"] == method) & points["reached"].astype(bool)]
    return p.set_index("target")


def _low_compression(points: pd.DataFrame, methods: list[str]):
    """The retrainings (each of ``methods``) of the least-pruned mask at or below
    ``LOW_COMPRESSION_PCT`` pruned: of LOBSTER's masks where it has one, else of another
    gradual method's (**decision**: at reduced scale LOBSTER's first event can land above
    60 %; IMP's first round is Frankle and Carbin's own lottery-ticket regime). Returns
    ``({method: row}, mask source, target)`` or None."""
    masks = (points["masks_of"].fillna("") if "masks_of" in points else pd.Series("", index=points.index))
    masks = masks.replace("", PAPER_GRADUAL)
    low = points[points["method"].isin(methods) & points["reached"].astype(bool)
                 & (points["pruned_params_pct"].astype(float) <= LOW_COMPRESSION_PCT + 1e-9)]
    for source in [PAPER_GRADUAL, *sorted(set(masks[low.index]) - {PAPER_GRADUAL})]:
        rows = low[masks[low.index] == source].sort_values("pruned_params_pct")
        for t in dict.fromkeys(rows["target"]):
            at = {mt: rows[(rows["method"] == mt) & (rows["target"] == t)] for mt in methods}
            if all(len(a) for a in at.values()):
                return {mt: a.iloc[0] for mt, a in at.items()}, source, float(t)
    return None


def _errors(row, rule: str | None = None) -> list[float]:
    """A Fig. 1 point's per-seed test errors (under ``rule``, else the configured one)."""
    return split_values(row[f"test_errors_{rule}"] if rule else row["test_errors"])


def _judge(pairs, region: Region, words: Words, selection: str, shift: float = 0.0):
    """Claims on Fig. 1 points: every ``(a, b)`` pair's difference of mean test errors
    (``a - b - shift``) must lie in ``region``, under each selection rule. Returns the
    verdict (:func:`verdicts.across_rules`), its note, and the configured rule's estimates."""
    by_rule, est = {}, {}
    for rule in SELECTIONS:
        es = [difference_interval(_errors(a, rule), [e + shift for e in _errors(b, rule)], words.alpha)
              for a, b in pairs]
        by_rule[rule], est[rule] = all_of(decide(e, region) for e in es), es
    verdict, note = across_rules(by_rule, selection)
    return verdict, note, est[selection]


def _judge_mean(row, region: Region, words: Words, selection: str):
    """A claim on one Fig. 1 point's mean test error, under each selection rule."""
    by_rule, est = {}, {}
    for rule in SELECTIONS:
        est[rule] = mean_interval(_errors(row, rule), words.alpha)
        by_rule[rule] = decide(est[rule], region)
    verdict, note = across_rules(by_rule, selection)
    return verdict, note, est[selection]


def _effects(names, estimates: list[Estimate]) -> str:
    return "; ".join(f"{n}: {e.text()}" for n, e in zip(names, estimates))


def _notes(*parts) -> str | None:
    return "; ".join(p for p in parts if p) or None


def _early(points: pd.DataFrame) -> str | None:
    """Runs whose selection fell in the first tenth of their budget (they barely trained)."""
    if "early_selections" not in points:
        return None
    p = points[points["early_selections"].fillna(0) > 0]
    if p.empty:
        return None
    return "selected in the first tenth of the budget: " + ", ".join(
        f"{r.method}@{r.target:g} {int(r.early_selections)}/{int(r.n_seeds)}" for r in p.itertuples())


def _paper_view(points: pd.DataFrame, trajectories: list[dict]):
    """The paper's Fig. 1 within ours: dense, LOBSTER, the retrainings of LOBSTER's masks and
    one-shot (the other gradual methods have rows of their own: :func:`gradual_claims`)."""
    masks = points["masks_of"] if "masks_of" in points else pd.Series(None, index=points.index)
    retrained = points["method"].isin(PAPER_RETRAININGS) & (masks.isna() | (masks == PAPER_GRADUAL))
    keep = points["method"].isin(["dense", PAPER_GRADUAL, "oneshot"]) | retrained
    return points[keep], [t for t in trajectories if t.get("method", PAPER_GRADUAL) == PAPER_GRADUAL]


def fig1_claims(panel_name: str, panel: dict, points: pd.DataFrame, trajectories: list[dict],
                words: Words, preset: str, selection: str = "best_val") -> list[dict]:
    """The claims of the paper's Fig. 1 (and Sec. 5.1) about one panel, from its Fig. 1
    points (``tables.fig1_points``: per-seed errors under every selection rule) and gradual
    trajectories (the paper's are LOBSTER's); ``selection``: the configured rule."""
    paper = PAPER_FIG1.get((panel["model"], panel["dataset"]))
    every_mask = points
    points, trajectories = _paper_view(points, trajectories)
    if paper is None or not trajectories:
        return []
    fig, rows = paper["figure"], []
    full = at_paper_scale(panel)
    base = dict(panel=panel_name, preset=preset)
    dense = points[points["method"] == "dense"].iloc[0]
    dense_err = float(dense["test_error_mean"])
    early = _early(points)
    recovers_words = _words(words, f"recovers: at most {words.recovered_points:g} points above the dense error")

    # highest sparsity, and the pruned neurons there
    top_s, top_n = _lobster_max(trajectories)
    m, sd, n = _mean_std(top_s)
    p_max = paper["sparsities"][-1]
    est = mean_interval(top_s, words.alpha)
    reached_all = all(s >= p_max - SPARSITY_SLACK_PCT for s in top_s)
    rows.append(_row(**base, id=f"{panel_name}:max_sparsity", where=fig,
                     claim="LOBSTER reaches the paper's highest sparsity (pruned parameters %)",
                     paper=f"{p_max} %", ours=_pm(m, sd, n, " %"), ours_mean=m, ours_std=sd,
                     n_seeds=n, effect=est.text(),
                     # reaching is per run: every seed at or above it holds, none fails
                     verdict=HOLDS if reached_all else (
                         FAILS if all(s < p_max - SPARSITY_SLACK_PCT for s in top_s) else UNRESOLVED),
                     words="reaches: every seed at or above the paper's value (none: does not hold)",
                     note=None if reached_all else
                     f"LOBSTER stopped at {', '.join(_fmt(s) for s in top_s)} %: its epoch budget ended first"))
    hit = [e for e in _first_at_or_above(trajectories, p_max) if e is not None]
    p_neur = paper["neurons"][-1]
    about_words = _words(words, f"about: within {words.about_rel:g} x the paper's value")
    if hit:
        vals = [e["pruned_neurons_pct"] for e in hit]
        est = mean_interval(vals, words.alpha)
        v = decide(est, between(p_neur * (1 - words.about_rel), p_neur * (1 + words.about_rel)))
        m, sd, n = _mean_std(vals)
        note = f"at the first LOBSTER event at or above {p_max} % ({', '.join(_fmt(e['pruned_params_pct']) for e in hit)} %)"
    else:
        m, sd, n = _mean_std(top_n)
        est, v = None, UNTESTABLE
        note = f"LOBSTER did not reach {p_max} %; at its highest sparsity ({_fmt(max(top_s))} %) {_fmt(m)} % of neurons are pruned"
    rows.append(_row(**base, id=f"{panel_name}:neurons_at_max", where=f"{fig} (top axis)",
                     claim="Pruned neurons at LOBSTER's highest sparsity", paper=f"{p_neur} %",
                     ours=_pm(m, sd, n, " %"), ours_mean=m, ours_std=sd, n_seeds=n, verdict=v,
                     effect=est.text() if est else None, words=about_words, note=note))

    # the comparison at LOBSTER's highest sparsity, between all methods
    lob = _reached(points, PAPER_GRADUAL)
    others = [mt for mt in points["method"].unique() if mt not in ("dense", PAPER_GRADUAL)]
    common = [t for t in sorted(lob.index) if all(t in _reached(points, mt).index for mt in others)]
    if common and others:
        t = common[-1]
        rows_at = {mt: _reached(points, mt).loc[t] for mt in others}
        lob_row = lob.loc[t]
        detail = ", ".join(f"{mt} {_pm(r['test_error_mean'], r['test_error_std'], int(r['n_seeds']))}"
                           for mt, r in rows_at.items())
        v, rule_note, ests = _judge([(lob_row, r) for r in rows_at.values()], NEGATIVE, words, selection)
        rows.append(_row(**base, id=f"{panel_name}:lobster_best_at_max", where=f"{fig}, Sec. 5.1",
                         claim="At LOBSTER's highest sparsity its test error is below every other method's",
                         paper="LOBSTER lowest", ours=f"LOBSTER {_pm(lob_row['test_error_mean'], lob_row['test_error_std'], int(lob_row['n_seeds']))} vs {detail}",
                         ours_mean=float(lob_row["test_error_mean"]), ours_std=float(lob_row["test_error_std"]),
                         n_seeds=min(int(lob_row["n_seeds"]), *(int(r["n_seeds"]) for r in rows_at.values())),
                         effect="LOBSTER minus " + _effects(others, ests), verdict=v,
                         words=_words(words, "below: LOBSTER minus each other method's mean error < 0"),
                         note=_notes(f"target {t:g} % (LOBSTER at {_fmt(lob_row['pruned_params_pct'])} %)", rule_note, early)))
        sec51 = [mt for mt in SEC51_RETRAININGS if mt in rows_at]
        if sec51:
            v, rule_note, ests = _judge([(rows_at[mt], dense) for mt in sec51],
                                        Region(low=words.recovered_points), words, selection)
            rows.append(_row(**base, id=f"{panel_name}:retraining_fails_high", where="Sec. 5.1, Sec. 6",
                             claim="Retraining from the original or a random initialisation fails to recover the dense error at high compression",
                             paper="both fail", ours=", ".join(f"{mt} {_pm(rows_at[mt]['test_error_mean'], rows_at[mt]['test_error_std'], int(rows_at[mt]['n_seeds']))}"
                                                               for mt in sec51) + f" vs dense {_pm(dense_err, dense['test_error_std'], int(dense['n_seeds']))}",
                             ours_mean=min(float(rows_at[mt]["test_error_mean"]) for mt in sec51),
                             n_seeds=min(int(rows_at[mt]["n_seeds"]) for mt in sec51),
                             effect="minus dense: " + _effects(sec51, ests), verdict=v,
                             words=_words(words, f"fails: more than {words.recovered_points:g} points above the dense error, each"),
                             note=_notes(f"at target {t:g} %", rule_note)))
    else:
        rows.append(_row(**base, id=f"{panel_name}:lobster_best_at_max", where=f"{fig}, Sec. 5.1",
                         claim="At LOBSTER's highest sparsity its test error is below every other method's",
                         paper="LOBSTER lowest", verdict=UNTESTABLE, words="below: a lower mean test error (%)",
                         note="no target reached by LOBSTER and retrained by every method"))

    # gradual pruning keeps near-dense error at its highest sparsity (Sec. 5.1, Fig. 1)
    if len(lob):
        t = max(lob.index)
        v, rule_note, ests = _judge([(lob.loc[t], dense)], at_most(words.recovered_points), words, selection)
        rows.append(_row(**base, id=f"{panel_name}:gradual_near_dense", where=f"{fig}, Sec. 5.1",
                         claim="Pruned gradually (LOBSTER), the network keeps about its dense error at its highest sparsity",
                         paper="near dense", ours=f"LOBSTER {_pm(lob.loc[t, 'test_error_mean'], lob.loc[t, 'test_error_std'], int(lob.loc[t, 'n_seeds']))} vs dense {_fmt(dense_err)}",
                         ours_mean=float(lob.loc[t, "test_error_mean"]), n_seeds=int(lob.loc[t, "n_seeds"]),
                         effect="minus dense: " + ests[0].text(), verdict=v, words=recovers_words,
                         note=_notes(f"target {t:g} % (LOBSTER at {_fmt(lob.loc[t, 'pruned_params_pct'])} %)", rule_note)))

    # at low compression the retrainings recover the dense error (the lottery-ticket regime)
    sec51 = [mt for mt in SEC51_RETRAININGS if (every_mask["method"] == mt).any()]
    low = _low_compression(every_mask, sec51) if sec51 else None
    claim = "At low compression the rewound and re-initialised networks recover the dense error"
    if low:
        at, source, t = low
        first = _first_events(trajectories)
        v, rule_note, ests = _judge([(at[mt], dense) for mt in sec51], at_most(words.recovered_points), words, selection)
        why = (f"; LOBSTER's first pruning event is at {_fmt(min(first))} % here, so the masks are {source.upper()}'s"
               if source != PAPER_GRADUAL and first else "")
        rows.append(_row(**base, id=f"{panel_name}:retraining_recovers_low", where="Sec. 5.1",
                         claim=claim, paper="recover", ours=", ".join(
                             f"{mt} {_pm(r['test_error_mean'], r['test_error_std'], int(r['n_seeds']))}" for mt, r in at.items())
                         + f" vs dense {_fmt(dense_err)}",
                         ours_mean=max(float(r["test_error_mean"]) for r in at.values()),
                         n_seeds=min(int(r["n_seeds"]) for r in at.values()),
                         effect="minus dense: " + _effects(sec51, ests), verdict=v, words=recovers_words,
                         note=_notes(f"target {t:g} %: {source.upper()}'s mask at "
                                     f"{_fmt(at[sec51[0]]['pruned_params_pct'])} %{why}", rule_note)))
    elif sec51:
        rows.append(_row(**base, id=f"{panel_name}:retraining_recovers_low", where="Sec. 5.1", claim=claim,
                         paper="recover", verdict=UNTESTABLE, words=recovers_words,
                         note=f"no mask at or below {LOW_COMPRESSION_PCT:g} % pruned was retrained"
                              + (f" (LOBSTER's first pruning event is at {_fmt(min(first))} % here: its "
                                 "masks start above it)" if (first := _first_events(trajectories)) else "")))

    # beyond the paper: is LOBSTER's advantage only its training budget? (rewind_matched)
    masks = every_mask["masks_of"].fillna("") if "masks_of" in every_mask else pd.Series("", index=every_mask.index)
    matched = _reached(every_mask[masks.isin(["", PAPER_GRADUAL])], "rewind_matched")
    both_at = [t for t in sorted(lob.index) if t in matched.index]
    if both_at:
        t = both_at[-1]
        v, rule_note, ests = _judge([(lob.loc[t], matched.loc[t])], NEGATIVE, words, selection)
        rows.append(_row(**base, id=f"{panel_name}:not_only_the_budget", where="beyond the paper",
                         claim="LOBSTER's advantage is not only its training budget: at its highest "
                               "sparsity it beats rewinding trained with LOBSTER's own recipe and epochs",
                         paper="(not in the paper)",
                         ours=f"LOBSTER {_pm(lob.loc[t, 'test_error_mean'], lob.loc[t, 'test_error_std'], int(lob.loc[t, 'n_seeds']))}"
                              f" vs rewind_matched {_pm(matched.loc[t, 'test_error_mean'], matched.loc[t, 'test_error_std'], int(matched.loc[t, 'n_seeds']))}",
                         ours_mean=float(lob.loc[t, "test_error_mean"]) - float(matched.loc[t, "test_error_mean"]),
                         n_seeds=min(int(lob.loc[t, "n_seeds"]), int(matched.loc[t, "n_seeds"])),
                         effect="LOBSTER minus rewind_matched: " + ests[0].text(), verdict=v,
                         words=_words(words, "beats: a lower mean test error (%)"),
                         note=_notes(f"target {t:g} % (LOBSTER at {_fmt(lob.loc[t, 'pruned_params_pct'])} %); does not "
                                     "hold: the budget explains the gap", rule_note)))

    # rewind vs re-init: the original initialisation is only slightly better
    rw, ri = _reached(points, "rewind"), _reached(points, "reinit")
    both = [t for t in rw.index if t in ri.index]
    if both:
        gaps = [float(ri.loc[t, "test_error_mean"]) - float(rw.loc[t, "test_error_mean"]) for t in both]
        gap = sum(gaps) / len(gaps)
        # per target: re-init minus rewind in (0, slightly_points]; every target must say so
        v, rule_note, ests = _judge([(ri.loc[t], rw.loc[t]) for t in both],
                                    Region(0.0, words.slightly_points, False, True), words, selection)
        rows.append(_row(**base, id=f"{panel_name}:rewind_slightly_better", where="Sec. 5.1",
                         claim="The original initialisation (rewind) is only slightly better than a random re-init",
                         paper="slightly better", ours=f"re-init minus rewind: {_fmt(gap)} points (mean over targets {', '.join(f'{t:g}' for t in both)})",
                         ours_mean=gap, n_seeds=int(rw["n_seeds"].min()),
                         effect="re-init minus rewind: " + _effects([f"{t:g} %" for t in both], ests), verdict=v,
                         words=_words(words, f"only slightly better: re-init minus rewind in (0, {words.slightly_points:g}] points at every target"),
                         note=rule_note))

    # panel-specific anchors of the text
    retrainers = [mt for mt in RETRAIN_KINDS if mt in others]
    key = (panel["model"], panel["dataset"])
    if key == ("lenet300", "mnist") and retrainers:
        high = [t for t in sorted(lob.index) if t >= 95.0 - 1e-9
                and all(t in _reached(points, mt).index for mt in retrainers)]
        if high:
            pairs = [(_reached(points, mt).loc[t], dense) for t in high for mt in retrainers]
            v, rule_note, ests = _judge(pairs, Region(low=words.recovered_points), words, selection)
            worst = {t: min(float(_reached(points, mt).loc[t, "test_error_mean"]) for mt in retrainers) for t in high}
            rows.append(_row(**base, id=f"{panel_name}:no_retrain_below_5pct", where="Sec. 5.1",
                             claim="LeNet-300 cannot be retrained below about 5 % remaining parameters",
                             paper="fails below 5 % remaining", ours=", ".join(
                                 f"{t:g} %: best retraining {_fmt(e)}" for t, e in worst.items()) + f"; dense {_fmt(dense_err)}",
                             ours_mean=min(worst.values()), n_seeds=int(_reached(points, retrainers[0])["n_seeds"].min()),
                             effect="minus dense: " + _effects([f"{mt}@{t:g}" for t in high for mt in retrainers], ests),
                             verdict=v, words=_words(words, f"fails: every retraining more than {words.recovered_points:g} points above the dense error"),
                             note=_notes(f"every reached target >= 95 %, each of {', '.join(retrainers)}", rule_note)))
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
            at = {mt: _reached(points, mt).loc[t80] for mt in retrainers}
            best = min(float(r["test_error_mean"]) for r in at.values())
            v, rule_note, ests = _judge([(r, dense) for r in at.values()], Region(low=words.recovered_points),
                                        words, selection)
            rows.append(_row(**base, id=f"{panel_name}:cost_at_80", where="Sec. 5.1",
                             claim="On Fashion-MNIST, 80 % pruning already costs accuracy",
                             paper="degrades at 80 %", ours=f"best retraining {_fmt(best)} vs dense {_fmt(dense_err)} at {t80:g} %",
                             ours_mean=best, n_seeds=int(_reached(points, retrainers[0])["n_seeds"].min()),
                             effect="minus dense: " + _effects(retrainers, ests), verdict=v,
                             words=_words(words, f"costs: every retraining more than {words.recovered_points:g} points above the dense error"),
                             note=_notes(f"each of {', '.join(retrainers)} at the first target >= 80 %", rule_note)))
    if "error_at_98" in paper:
        sec51_98 = [mt for mt in SEC51_RETRAININGS if 98.0 in _reached(points, mt).index]
        p98 = paper["error_at_98"]
        claim = "LeNet-5 on MNIST keeps about 99.2 % accuracy at 98 % pruned (retrained)"
        if sec51_98:
            at = {mt: _reached(points, mt).loc[98.0] for mt in sec51_98}
            region = between(p98 * (1 - words.about_rel), p98 * (1 + words.about_rel))
            judged = [_judge_mean(r, region, words, selection) for r in at.values()]
            v = all_of(j[0] for j in judged) if full else UNTESTABLE
            rows.append(_row(**base, id=f"{panel_name}:error_at_98", where="Sec. 5.1",
                             claim=claim, paper=f"{p98} % error",
                             ours=", ".join(f"{mt} {_pm(r['test_error_mean'], r['test_error_std'], int(r['n_seeds']))} error"
                                            for mt, r in at.items()),
                             ours_mean=min(float(r["test_error_mean"]) for r in at.values()),
                             n_seeds=min(int(r["n_seeds"]) for r in at.values()),
                             effect=_effects(sec51_98, [j[2] for j in judged]), verdict=v,
                             words=_words(words, f"about: within {words.about_rel:g} x the paper's error, each"),
                             note=_notes(None if full else scale_reason(panel) + "; an absolute error needs the paper's data and budget",
                                         *(j[1] for j in judged))))
        else:
            rows.append(_row(**base, id=f"{panel_name}:error_at_98", where="Sec. 5.1", claim=claim,
                             paper=f"{p98} % error", verdict=UNTESTABLE, words="about",
                             note="no retraining at target 98 %"))
    if "dense_error" in paper:
        lo, hi = paper["dense_error"]
        v, rule_note, est = _judge_mean(dense, between(lo * (1 - words.about_rel), hi * (1 + words.about_rel)),
                                        words, selection)
        rows.append(_row(**base, id=f"{panel_name}:dense_error", where="Fig. 1d (He et al.; the code the paper cites)",
                         claim="ResNet-32's dense test error is that of its sources", paper=f"{lo}-{hi} %",
                         ours=_pm(dense_err, dense['test_error_std'], int(dense['n_seeds']), " %"),
                         ours_mean=dense_err, ours_std=float(dense["test_error_std"]),
                         n_seeds=int(dense["n_seeds"]), effect=est.text(), verdict=v if full else UNTESTABLE,
                         words=_words(words, f"about: within {words.about_rel:g} x the sources' range"),
                         note=_notes(None if full else scale_reason(panel) + f"; {panel['dense']['epochs']} dense epochs (paper: 200)",
                                     rule_note)))
    return rows


def gradual_claims(panel_name: str, points: pd.DataFrame, words: Words, preset: str,
                   labels: dict | None = None, selection: str = "best_val") -> list[dict]:
    """The paper's conclusion, per gradual method (LOBSTER, IMP, GMP, ...): pruned
    gradually, a network ends with a lower test error than pruned in one shot and fine-tuned
    (Sec. 5.1 and 6 draw it from LOBSTER alone). Judged at the highest target both reached."""
    labels = labels or {}
    base = dict(panel=panel_name, preset=preset)
    own = set(points.loc[_roles(points) == "gradual", "method"])
    oneshot = _reached(points, "oneshot")
    rows = []
    for m in sorted(own, key=lambda k: (k != PAPER_GRADUAL, k)):
        name = labels.get(m, m)
        g = _reached(points, m)
        common = [t for t in sorted(g.index) if t in oneshot.index]
        claim = f"Pruned gradually ({name}), the network has a lower test error than pruned in one shot"
        lower_words = _words(words, f"lower: {name} minus one-shot < 0")
        if not common:
            rows.append(_row(**base, id=f"{panel_name}:gradual_beats_oneshot:{m}", where="Sec. 5.1, Sec. 6",
                             claim=claim, paper="gradual lower", verdict=UNTESTABLE, words=lower_words,
                             note=f"no target reached by both {name} and one-shot"))
            continue
        t = common[-1]
        a, b = g.loc[t], oneshot.loc[t]
        v, rule_note, ests = _judge([(a, b)], NEGATIVE, words, selection)
        rows.append(_row(**base, id=f"{panel_name}:gradual_beats_oneshot:{m}", where="Sec. 5.1, Sec. 6",
                         claim=claim, paper="gradual lower",
                         ours=f"{name} {_pm(a['test_error_mean'], a['test_error_std'], int(a['n_seeds']))} "
                              f"at {_fmt(a['pruned_params_pct'])} % vs one-shot {_pm(b['test_error_mean'], b['test_error_std'], int(b['n_seeds']))} "
                              f"at {_fmt(b['pruned_params_pct'])} %",
                         ours_mean=float(a["test_error_mean"]), ours_std=float(a["test_error_std"]),
                         n_seeds=min(int(a["n_seeds"]), int(b["n_seeds"])), effect=ests[0].text(),
                         verdict=v, words=lower_words,
                         note=_notes(f"target {t:g} %, the highest both reached", rule_note)))
    return rows


# -- the features beyond the paper (Sec. 6's closing claim) --------------------------------


def transfer_claims(panel_name: str, runs: pd.DataFrame, words: Words, preset: str,
                    labels: dict | None = None) -> list[dict]:
    """The paper's closing claim, tested: gradually pruned features (higher second-order PSP
    entropy, "less class-specific") "potentially" transfer better. From the transfer probe's
    runs (``experiments.features.run_transfer``, one row per solution and seed): per gradual method,
    its probe error on the second data set against every non-gradual pruned method's at the
    highest target all reached (retrainings of its own masks where Fig. 1 has them, else of
    LOBSTER's), each difference judged over seeds; and whether the second-order entropy goes
    with a lower probe error across all solutions (Pearson, at the level ``alpha``)."""
    from scipy.stats import pearsonr

    labels = labels or {}
    base = dict(panel=panel_name, preset=preset)
    runs = runs[~runs["control"].astype(bool)].copy()
    if runs.empty:
        return []
    runs["masks_of"] = runs["masks_of"].fillna("")
    data = runs["probe_data"].iloc[0]
    errors = {key: g["probe_error"].tolist() for key, g in runs.groupby(["method", "masks_of", "target"])}
    own = [m for m in runs["method"].unique() if role_of(m) == "gradual"]
    sources = set(runs.loc[runs["method"].isin(RETRAIN_KINDS), "masks_of"]) - {""}
    kinds = [k for k in RETRAIN_KINDS if (runs["method"] == k).any()]
    oneshot = {("oneshot", "")} if (runs["method"] == "oneshot").any() else set()
    better_words = _words(words, "better: the method's mean probe error minus each other's < 0")
    rows = []
    for m in sorted(own, key=lambda k: (k != PAPER_GRADUAL, k)):
        name = labels.get(m, m)
        src = m if m in sources else PAPER_GRADUAL
        others = sorted({(k, src) for k in kinds} | oneshot)
        targets = sorted(t for (mm, _, t) in errors if mm == m)
        common = [t for t in targets if all((k, s, t) in errors for k, s in others)]
        claim = f"Gradually pruned features ({name}) transfer better: a lower linear-probe error on {data}"
        if not common:
            rows.append(_row(**base, id=f"{panel_name}:transfer_better:{m}", where="Sec. 6 (future work)",
                             claim=claim, paper="potentially better", verdict=UNTESTABLE, words=better_words,
                             note="no target probed for every method"))
            continue
        t = common[-1]
        g = errors[(m, "", t)]
        rest = {k: errors[(k, s, t)] for k, s in others}
        ests = [difference_interval(g, e, words.alpha) for e in rest.values()]
        rows.append(_row(**base, id=f"{panel_name}:transfer_better:{m}", where="Sec. 6 (future work)",
                         claim=claim, paper="potentially better",
                         ours=f"{name} {_pm_values(g)} vs " + ", ".join(f"{k} {_pm_values(e)}" for k, e in rest.items()),
                         ours_mean=_mean_std(g)[0], ours_std=_mean_std(g)[1],
                         n_seeds=min(len(g), *(len(e) for e in rest.values())),
                         effect=f"{name} minus " + _effects(rest, ests),
                         verdict=all_of(decide(e, NEGATIVE) for e in ests), words=better_words,
                         note=f"target {t:g} %; retrainings of {src}'s masks; probe error in %"
                              + (f"; {m.upper()}'s snapshots are themselves rewound retrainings of their masks, "
                                 "so its rewind differs from it by the data order only" if getattr(GRADUAL_METHODS.get(m), "rewinds", False) else "")))
    pruned = runs[runs["method"] != "dense"]
    claim = "The second-order PSP entropy explains transfer: higher entropy, lower probe error"
    corr_words = (f"explains: Pearson r < 0 at p < {words.alpha:g} (r > 0 at p < {words.alpha:g}: "
                  "does not hold; else unresolved)")
    if len(pruned) > 2 and pruned["entropy2"].nunique() > 1 and pruned["probe_error"].nunique() > 1:
        r, p = pearsonr(pruned["entropy2"], pruned["probe_error"])
        r, p = float(r), float(p)
        v = UNRESOLVED if p >= words.alpha else (HOLDS if r < 0 else FAILS)
        rows.append(_row(**base, id=f"{panel_name}:entropy_explains_transfer", where="Sec. 6 (explanation)",
                         claim=claim, paper="higher entropy, better transfer",
                         ours=f"Pearson r = {_fmt(r, 3)} (p = {p:.2g}) over {len(pruned)} pruned solutions",
                         ours_mean=r, n_seeds=int(len(pruned)), effect=f"r = {_fmt(r, 3)}, p = {p:.2g}",
                         verdict=v, words=corr_words,
                         note=f"probed on {data}; every pruned solution of every method and seed"))
    else:
        rows.append(_row(**base, id=f"{panel_name}:entropy_explains_transfer", where="Sec. 6 (explanation)",
                         claim=claim, paper="higher entropy, better transfer", verdict=UNTESTABLE,
                         words=corr_words, note="fewer than three pruned solutions with distinct values"))
    return rows


# -- the landscape (Fig. 2-4) -------------------------------------------------------------

#: (id, where, claim, column of the points table, relation of G to 1-S)
LANDSCAPE_RELATIONS = [
    ("lower_loss", "Fig. 2a", "G lies in a lower-loss region than 1-S", "loss", "less"),
    ("narrower", "Fig. 2b", "G sits in a narrower minimum: larger top-5 Hessian eigenvalues (mean)", "eig_mean", "greater"),
    ("generalises", "Fig. 2b, Sec. 5.2", "G generalises (slightly) better: lower test error", "test_error", "less"),
    ("lower_psp_norm", "Fig. 3", "G has the lower PSP L2 norm", "psp_norm", "less"),
    ("entropy1_comparable", "Fig. 4a", "G and 1-S have comparable first-order PSP entropies", "entropy1", "comparable"),
    ("higher_entropy2", "Fig. 4b", "G has the higher second-order PSP entropy", "entropy2", "greater"),
]
RANGE_NAMES = {"loss": "training loss", "eig": "mean top-5 Hessian eigenvalue", "psp_norm": "PSP L2 norm",
               "entropy1": "first-order PSP entropy", "entropy2": "second-order PSP entropy"}
RANGE_COLUMNS = {"loss": "loss", "eig": "eig_mean", "psp_norm": "psp_norm", "entropy1": "entropy1",
                 "entropy2": "entropy2"}


def paired_differences(points: pd.DataFrame, column: str, relative: bool = False) -> list[float]:
    """Per G seed: G's value minus the mean of the 1-S seeds retrained from its mask (the
    two solutions of one mask are a pair; the G seeds are the independent replicates).
    ``relative``: divided by the larger of the two magnitudes."""
    out = []
    for _, grp in points.groupby("gradual_seed"):
        g = grp.loc[grp["solution"] == "G", column].astype(float)
        s = grp.loc[grp["solution"] == "1-S", column].astype(float)
        if g.empty or s.empty or g.isna().all() or s.isna().all():
            continue
        d = float(g.mean()) - float(s.mean())
        out.append(d / max(abs(float(g.mean())), abs(float(s.mean())), 1e-300) if relative else d)
    return out


def _values(points: pd.DataFrame, solution: str, column: str) -> list[float]:
    return [float(v) for v in points.loc[points["solution"] == solution, column] if pd.notna(v)]


def _eig_cols(points: pd.DataFrame) -> list[str]:
    return sorted([c for c in points.columns if c.startswith("eig") and c[3:].isdigit()], key=lambda c: int(c[3:]))


def landscape_claims(panel_name: str, panel: dict, points: pd.DataFrame, words: Words, preset: str,
                     method: str = PAPER_GRADUAL, label: str | None = None, maps: dict | None = None,
                     gaps: dict | None = None) -> list[dict]:
    """The claims about one landscape's two solutions, from the landscape's points
    (``experiments.landscape.run_landscape_points``: one row per seed of G and of 1-S; a table of
    several landscapes is filtered to ``panel_name`` and ``method``). Relations of G to 1-S
    are judged on the per-mask differences over G seeds (:func:`paired_differences`); the
    colour-bar ranges on each solution's mean over its seeds. ``maps``: the plane of this
    landscape (``loss``, ``psp`` and ``hessian_map`` tables) for the claims about the whole
    plane; ``gaps``: an explanation per range quantity, for the notes. Ids are
    ``landscape:<panel>:<method>:<claim>``."""
    if "method" in points:
        points = points[(points["method"] == method) & (points["panel"] == panel_name)]
    if points.empty:
        return []
    n_g = int((points["solution"] == "G").sum())
    n_s = int((points["solution"] == "1-S").sum())
    base = dict(panel=panel_name, preset=preset)
    who = f" (G: {label or method})"
    seeds_note = f"{n_g} G seeds, {n_s} 1-S seeds (the rewinds of each G seed's mask)"
    rewound_note = (f"{method.upper()}'s G is itself a rewound retraining of its mask: 1-S differs from it by "
                    "the data order and recipe only" if getattr(GRADUAL_METHODS.get(method), "rewinds", False) else None)
    panel_name = f"{panel_name}:{method}"  # the ids below
    paper = PAPER_LANDSCAPE.get((panel["model"], panel["dataset"]))
    rows = []
    if paper:
        sp = _values(points, "G", "pruned_params_pct")
        m, sd, n = _mean_std(sp)
        ok = [x >= paper["sparsity"] - SPARSITY_SLACK_PCT for x in sp]
        rows.append(_row(**base, id=f"landscape:{panel_name}:sparsity", where="Fig. 2-4",
                         claim="The landscape is drawn at the paper's sparsity" + who, paper=f"{paper['sparsity']} %",
                         ours=_pm(m, sd, n, " %"), ours_mean=m, ours_std=sd, n_seeds=n,
                         # a method pruning round(s * total) parameters may fall a fraction of one
                         # short in percent (GMP: 99.5699 % of LeNet-5's 431,080 at 99.57 %)
                         verdict=HOLDS if all(ok) else (FAILS if not any(ok) else UNRESOLVED),
                         words=f"at: every G seed at least the paper's sparsity (to {SPARSITY_SLACK_PCT:g} points)"))
    # the top-k by magnitude at every seed: a negative one is a saddle direction larger than
    # the positive curvature reported
    eig_cols = _eig_cols(points)
    lows = points[eig_cols].astype(float).min(axis=1)
    pos = lows > 0
    smallest = points["eig_min"].astype(float) if "eig_min" in points else pd.Series(dtype=float)
    rows.append(_row(**base, id=f"landscape:{panel_name}:eigenvalues_positive", where="Fig. 2b",
                     claim=f"The top-{len(eig_cols)} Hessian eigenvalues (largest in magnitude) are positive at G and 1-S" + who,
                     paper="all positive", ours=f"{int(pos.sum())} of {len(pos)} solutions all positive; "
                                                f"smallest of the top-{len(eig_cols)}: {_fmt(float(lows.min()))}",
                     ours_mean=float(lows.min()), n_seeds=len(pos),
                     # every seed of one solution with a negative one: not a minimum there
                     verdict=HOLDS if pos.all() else (
                         FAILS if any(not pos[points["solution"] == sol].any() for sol in SOLUTION_NAMES)
                         else UNRESOLVED),
                     words="positive: at every seed of G and 1-S (does not hold: a negative one at every "
                           "seed of G or of 1-S; else unresolved)",
                     note=_notes(seeds_note, "smallest algebraic eigenvalue of the whole spectrum (not claimed): "
                                 f"{_fmt(float(smallest.min()))}" if smallest.notna().any() else None)))
    if maps and maps.get("hessian_map") is not None and len(maps["hessian_map"]):
        hm = maps["hessian_map"]
        cols = _eig_cols(hm)
        grid_pos = hm[cols].astype(float).min(axis=1) > 0
        rows.append(_row(**base, id=f"landscape:{panel_name}:eigenvalues_positive_plane", where="Fig. 2b",
                         claim=f"The top-{len(cols)} Hessian eigenvalues are positive over the whole plane" + who,
                         paper="positive everywhere (log colour scale)",
                         ours=f"{int(grid_pos.sum())} of {len(grid_pos)} grid points all positive",
                         ours_mean=float(hm[cols].astype(float).min(axis=1).min()), n_seeds=1,
                         verdict=UNRESOLVED,
                         words="positive: at every point of the Hessian grid of the plane (G's first seed, 1-S the best rewind)",
                         note=_one_plane(HOLDS if grid_pos.all() else FAILS)))
    for key, where, text, q, rel in LANDSCAPE_RELATIONS:
        if q not in points or points[q].isna().all():
            continue
        comparable = rel == "comparable"
        diffs = paired_differences(points, q, relative=comparable)
        est = mean_interval(diffs, words.alpha)
        if rel == "less":
            region, w, claimed = NEGATIVE, "G minus 1-S < 0", "G < 1-S"
        elif rel == "greater":
            region, w, claimed = POSITIVE, "G minus 1-S > 0", "G > 1-S"
        else:
            c = words.comparable_rel
            region, claimed = between(-c, c), "G ≈ 1-S"
            w = f"comparable: (G minus 1-S) / the larger within ±{c:g}"
        note = [seeds_note, rewound_note]
        if q == "test_error":
            note.insert(0, f"'slightly' means at most {words.slightly_points:g} points")
        g_vals, s_vals = _values(points, "G", q), _values(points, "1-S", q)
        m, sd, n = _mean_std(g_vals)
        rows.append(_row(**base, id=f"landscape:{panel_name}:{key}", where=where, claim=text + who,
                         paper=claimed, ours=f"G {_pm_values(g_vals)}, 1-S {_pm_values(s_vals)}",
                         ours_mean=m, ours_std=sd, n_seeds=len(diffs),
                         effect=("relative " if comparable else "") + "G minus 1-S, per mask: " + est.text(),
                         verdict=decide(est, region),
                         words=_words(words, w + " (paired by mask, over G seeds)"), note=_notes(*note)))
    if maps and maps.get("loss") is not None and maps.get("psp") is not None:
        rows.append(_plane_region_row(base, panel_name, who, maps["loss"], maps["psp"], maps.get("at")))
    if paper:
        full = at_paper_scale(panel)
        for q, (where, (lo, hi)) in paper["ranges"].items():
            col = RANGE_COLUMNS[q]
            by_sol = {sol: _values(points, sol, col) for sol in SOLUTION_NAMES}
            ests = {sol: mean_interval(v, words.alpha) for sol, v in by_sol.items()}
            v = all_of(decide(e, between(lo, hi)) for e in ests.values()) if full else UNTESTABLE
            vals = [x for xs in by_sol.values() for x in xs]
            factor = _gap_factor(vals, lo, hi)
            parts = [] if full else [scale_reason(panel)]
            if factor > 1:
                parts.append(f"ours {factor:.3g}x {'below' if max(vals) < lo else 'above'} the range")
            parts += _reading_notes(q, points, lo, hi)
            if gaps and gaps.get(q):
                parts.append(gaps[q])
            rows.append(_row(**base, id=f"landscape:{panel_name}:range_{q}", where=where,
                             claim=f"The {RANGE_NAMES[q]} at G and 1-S lies in the paper's colour-bar range" + who,
                             paper=f"{lo:g} to {hi:g}",
                             ours=", ".join(f"{sol} {_pm_values(x)}" for sol, x in by_sol.items()),
                             ours_mean=_mean_std(by_sol["G"])[0], ours_std=_mean_std(by_sol["G"])[1],
                             n_seeds=min(len(x) for x in by_sol.values()),
                             effect="; ".join(f"{sol} mean {e.text()}" for sol, e in ests.items()), verdict=v,
                             words=_words(words, "inside: each solution's mean over seeds within the range"),
                             note=_notes(*parts)))
    return rows


SOLUTION_NAMES = ("G", "1-S")


def _plane_region_row(base, panel_name, who, loss: pd.DataFrame, psp: pd.DataFrame, at) -> dict:
    """Sec. 5.3: the plane has regions of lower z^2 (PSP norm) and lower first-order entropy
    than both solutions, but a higher loss than both: a low PSP norm or entropy alone does
    not mean a good minimum."""
    grid = loss[["i", "j", "loss"]].merge(psp[["i", "j", "psp_norm", "entropy1"]], on=["i", "j"])
    ends = grid.loc[[_grid_row(grid, at[s]) for s in SOLUTION_NAMES]] if at else grid.iloc[0:0]
    if ends.empty:
        n = 0
    else:
        sel = ((grid["psp_norm"] < ends["psp_norm"].min()) & (grid["entropy1"] < ends["entropy1"].min())
               & (grid["loss"] > ends["loss"].max()))
        n = int(sel.sum())
    return _row(**base, id=f"landscape:{panel_name}:plane_low_norm_high_loss", where="Sec. 5.3, Fig. 3-4a",
                claim="The plane has regions of lower z^2 and lower first-order entropy than G and 1-S, "
                      "but a higher loss" + who,
                paper="such regions exist", ours=f"{n} of {len(grid)} grid points", ours_mean=float(n),
                n_seeds=1, verdict=UNTESTABLE if ends.empty else UNRESOLVED,
                words="exist: at least one map point with PSP norm and first-order entropy below both "
                      "solutions' and loss above both",
                note=None if ends.empty else _one_plane(HOLDS if n > 0 else FAILS))


def _one_plane(seen: str) -> str:
    """The note of a claim read off the one plane a landscape draws (G's first seed, 1-S the
    best rewind). Our decision: such a row stays *unresolved at n seeds*, since one plane is
    one seed (n=1) and the grid points are not seeds; the plane's own answer is noted. With
    it decided, two disjoint seed sets reversed the Hessian-grid row (6 of 9 points positive
    on one plane, 9 of 9 on the other)."""
    return f"one plane (n=1; the grid points are not seeds): this plane alone says '{seen}'"


def _grid_row(grid: pd.DataFrame, index):
    """The row label of the grid point at ``index`` (i, j)."""
    i, j = index
    hit = grid[(grid["i"] == i) & (grid["j"] == j)]
    if hit.empty:
        raise ValueError(f"grid point {index} not in the maps")
    return hit.index[0]


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


def _reading_notes(q, points: pd.DataFrame, lo, hi) -> list[str]:
    """The readings *not* configured (the other PSP-norm reading, the other Hessian space),
    measured on the same seeds, and how far each lies from the paper's range."""
    cols = {"psp_norm": [("mean_square", "psp_norm_mean_square"), ("l2", "psp_norm_l2")],
            "eig": [("mask space", "eig_mean_mask"), ("full space", "eig_mean_full")]}.get(q, [])
    out = []
    for name, col in cols:
        if col not in points or points[col].isna().all():
            continue
        if q == "psp_norm" and (points[col] == points["psp_norm"]).all():
            continue
        if q == "eig" and (points[col] == points["eig_mean"]).all():
            continue
        vals = [float(v) for v in points[col] if pd.notna(v)]
        f = _gap_factor(vals, lo, hi)
        where = "inside the range" if f <= 1 else f"{f:.3g}x outside"
        out.append(f"reading '{name}': G {_fmt(_mean_std(_values(points, 'G', col))[0])}, "
                   f"1-S {_fmt(_mean_std(_values(points, '1-S', col))[0])} ({where})")
    return out


def claims_table(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    bad = set(df["verdict"]) - set(VERDICTS)
    if bad:
        raise ValueError(f"unknown verdicts {sorted(bad)}")
    return df


# -- what explains a magnitude gap: the training-length probe --------------------------------

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
