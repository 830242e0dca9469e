"""How numbers over seeds become a verdict (results/tables/claims.csv; docs/methods.md §8).

A claim is a statement about a quantity: a difference between two groups of runs ("G has a
lower loss than 1-S": loss(G) - loss(1-S) < 0) or one group's mean ("about 0.8 %": within
[0.6, 1.0]). Each claim names the **region** of values where it is true. We estimate the
quantity with a confidence interval from the seeds, at the level ``alpha`` of the setting
``claims.alpha``, and read the verdict off the interval:

- ``holds``: the whole interval lies inside the region;
- ``does not hold``: the whole interval lies outside it;
- ``unresolved at n seeds``: the interval straddles the region's edge: the difference is
  within the spread of n seeds (or a group has one seed, whose spread is unknown);
- ``not testable at this scale``: decided by the caller (an absolute number of the paper at
  reduced scale, a point the run never reached).

The interval of a mean is Student's t (two-sided, ``1 - 2 alpha``); of a difference of two
independent groups Welch's (unequal variances, Welch-Satterthwaite degrees of freedom). For a
half-line region ("a < b") this is exactly the one-sided Welch test at level ``alpha`` in
each direction: a run calls the claim false when it is true (or true when false) with
probability at most ``alpha``, so two independent runs reverse each other's verdict with
probability at most ``2 alpha`` (``2 alpha^2`` when the true difference is zero). Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HOLDS, FAILS = "holds", "does not hold"
UNRESOLVED, UNTESTABLE = "unresolved at n seeds", "not testable at this scale"
VERDICTS = (HOLDS, FAILS, UNRESOLVED, UNTESTABLE)
DECIDED = (HOLDS, FAILS)


@dataclass(frozen=True)
class Region:
    """The values where a claim is true: an interval with open or closed ends."""

    low: float = -math.inf
    high: float = math.inf
    low_closed: bool = False
    high_closed: bool = False

    def contains(self, x: float) -> bool:
        above = x > self.low or (self.low_closed and x == self.low)
        below = x < self.high or (self.high_closed and x == self.high)
        return above and below

    def text(self) -> str:
        lo = "[" if self.low_closed else "("
        hi = "]" if self.high_closed else ")"
        return f"{lo}{self.low:g}, {self.high:g}{hi}"


#: the regions of the relations the claims use, for a difference ``a - b``
NEGATIVE = Region(high=0.0)                      # a < b
POSITIVE = Region(low=0.0)                       # a > b


def at_most(x: float) -> Region:
    return Region(high=x, high_closed=True)


def at_least(x: float) -> Region:
    return Region(low=x, low_closed=True)


def between(lo: float, hi: float) -> Region:
    return Region(lo, hi, True, True)


@dataclass(frozen=True)
class Estimate:
    """A quantity's estimate and its confidence interval; ``n``: seeds per group."""

    value: float
    low: float
    high: float
    n: tuple[int, ...]

    def text(self, digits: int = 3) -> str:
        if math.isnan(self.value):
            return "n/a"
        if math.isinf(self.low) or math.isinf(self.high):
            return f"{self.value:.{digits}g} (interval unknown at n={min(self.n)})"
        return f"{self.value:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}]"


def _clean(values) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def _t(q: float, df: float) -> float:
    from scipy.stats import t

    return float(t.ppf(q, df))


def mean_interval(values, alpha: float) -> Estimate:
    """The mean of ``values`` with its two-sided ``1 - 2 alpha`` Student t interval (one
    value: the interval is unknown, (-inf, inf))."""
    v = _clean(values)
    n = len(v)
    if n == 0:
        return Estimate(math.nan, -math.inf, math.inf, (0,))
    m = sum(v) / n
    if n < 2:
        return Estimate(m, -math.inf, math.inf, (n,))
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (n - 1))
    half = _t(1 - alpha, n - 1) * sd / math.sqrt(n) if sd > 0 else 0.0
    return Estimate(m, m - half, m + half, (n,))


def difference_interval(a, b, alpha: float) -> Estimate:
    """mean(a) - mean(b) with Welch's two-sided ``1 - 2 alpha`` interval (a group of one
    value: the interval is unknown)."""
    a, b = _clean(a), _clean(b)
    na, nb = len(a), len(b)
    if not na or not nb:
        return Estimate(math.nan, -math.inf, math.inf, (na, nb))
    ma, mb = sum(a) / na, sum(b) / nb
    d = ma - mb
    if na < 2 or nb < 2:
        return Estimate(d, -math.inf, math.inf, (na, nb))
    va = sum((x - ma) ** 2 for x in a) / (na - 1) / na
    vb = sum((x - mb) ** 2 for x in b) / (nb - 1) / nb
    se = math.sqrt(va + vb)
    if se == 0:
        return Estimate(d, d, d, (na, nb))
    df = (va + vb) ** 2 / ((va ** 2 / (na - 1) if va else 0.0) + (vb ** 2 / (nb - 1) if vb else 0.0))
    half = _t(1 - alpha, df) * se
    return Estimate(d, d - half, d + half, (na, nb))


def decide(est: Estimate, region: Region) -> str:
    """The verdict of one estimate against the region where the claim is true."""
    if math.isnan(est.value):
        return UNTESTABLE
    lo, hi = est.low, est.high
    inside = region.contains(lo) and region.contains(hi)
    if inside:
        return HOLDS
    # disjoint: the interval ends before the region starts, or starts after it ends
    before = hi < region.low or (hi == region.low and not region.low_closed)
    after = lo > region.high or (lo == region.high and not region.high_closed)
    return FAILS if (before or after) else UNRESOLVED


def all_of(verdicts) -> str:
    """A claim made of several comparisons ("below every other method"): it holds when each
    holds, fails when one fails, else is unresolved."""
    verdicts = list(verdicts)
    if any(v == FAILS for v in verdicts):
        return FAILS
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    if verdicts and all(v == UNTESTABLE for v in verdicts):
        return UNTESTABLE
    return UNRESOLVED


def across_rules(by_rule: dict[str, str], chosen: str) -> tuple[str, str | None]:
    """One claim judged under several selection rules: the chosen rule's verdict, unless
    another rule reverses it (holds against does not hold), which makes it unresolved.
    Returns the verdict and a note (None when every rule agrees)."""
    verdict = by_rule[chosen]
    decided = {v for v in by_rule.values() if v in DECIDED}
    if len(set(by_rule.values())) == 1:
        return verdict, None
    listing = ", ".join(f"{r}: {v}" for r, v in by_rule.items())
    if decided == set(DECIDED):
        return UNRESOLVED, f"reverses between selection rules ({listing})"
    return verdict, f"per selection rule: {listing}"
