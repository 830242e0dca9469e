"""The verdict rule (sharpminima/verdicts.py; docs/methods.md §8) against scipy's tests."""

import math

import pytest
from scipy import stats

from sharpminima.verdicts import (FAILS, HOLDS, NEGATIVE, POSITIVE, UNRESOLVED, UNTESTABLE, all_of,
                                  at_most, between, decide, difference_interval, mean_interval)

A = [2.1, 2.3, 2.2, 2.6]
B = [2.9, 3.4, 3.1]


def test_welch_interval_is_the_one_sided_welch_test_in_each_direction():
    alpha = 0.05
    est = difference_interval(A, B, alpha)
    p_less = stats.ttest_ind(A, B, equal_var=False, alternative="less").pvalue
    # the interval's upper end is below 0 exactly when the one-sided test rejects at alpha
    assert (est.high < 0) == (p_less < alpha)
    assert decide(est, NEGATIVE) == HOLDS and decide(est, POSITIVE) == FAILS
    # the level where the upper end touches 0 is the test's p-value
    lo = difference_interval(A, B, p_less)
    assert lo.high == pytest.approx(0.0, abs=1e-9)


def test_unresolved_when_the_interval_straddles_the_edge_or_a_group_has_one_seed():
    close = difference_interval([2.0, 2.4, 2.2], [2.1, 2.5, 2.3], 0.05)
    assert decide(close, NEGATIVE) == UNRESOLVED and decide(close, POSITIVE) == UNRESOLVED
    one = difference_interval([2.0], B, 0.05)
    assert math.isinf(one.low) and decide(one, NEGATIVE) == UNRESOLVED
    assert decide(difference_interval([], B, 0.05), NEGATIVE) == UNTESTABLE
    # a mean inside / outside / across a closed range
    assert decide(mean_interval([0.79, 0.81, 0.8], 0.05), between(0.6, 1.0)) == HOLDS
    assert decide(mean_interval([1.5, 1.6, 1.55], 0.05), between(0.6, 1.0)) == FAILS
    assert decide(mean_interval([0.5, 1.2, 0.9], 0.05), between(0.6, 1.0)) == UNRESOLVED
    # no spread at all: the interval is the point, closed ends count as inside
    assert decide(mean_interval([0.5, 0.5], 0.05), at_most(0.5)) == HOLDS


def test_a_claim_of_several_comparisons():
    assert all_of([HOLDS, HOLDS]) == HOLDS
    assert all_of([HOLDS, UNRESOLVED]) == UNRESOLVED
    assert all_of([UNRESOLVED, FAILS]) == FAILS
    assert all_of([UNTESTABLE, UNTESTABLE]) == UNTESTABLE
