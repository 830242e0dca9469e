"""Figure helpers: tick placement on Fig. 1's log axis and the honest footer."""

import pandas as pd

from sharpminima.figures import _bottom_ticks, _missed_targets, fig1, sparsity_axis
from sharpminima.tables import FIG1_COLUMNS


def test_bottom_ticks_label_every_point_without_overlap():
    # LOBSTER snapshots at 84.88 and 98.15; one-shot at the exact targets 80 and 98:
    # 80 is far from 84.88 on the log axis and gets a tick, 98 sits on 98.15 and does not.
    ticks = _bottom_ticks([84.88, 98.15], [80.0, 98.0, 84.88])
    assert ticks == [80.0, 84.88, 98.15]
    xs = sparsity_axis(ticks)
    assert all(b - a >= 0.05 for a, b in zip(xs, xs[1:]))


def _points(rows):
    """Rows without ``masks_of`` (retrainings: of the first gradual method's masks) and
    without ``role`` (the registries tell it)."""
    columns = [c for c in FIG1_COLUMNS if c not in ("masks_of", "role")]
    return pd.DataFrame([dict(zip(columns, r)) for r in rows], columns=FIG1_COLUMNS)


def test_missed_lobster_target_is_said_once_with_the_highest_sparsity():
    nan = float("nan")
    pts = _points([
        ("p", "dense", 0, True, 0.0, 0.0, 1, 60.0, 0.0, nan),
        ("p", "lobster", 40, True, 60.2, 0.0, 1, 70.0, 0.0, nan),
        ("p", "lobster", 80, False, nan, nan, 0, nan, nan, 65.69),
        ("p", "rewind", 40, True, 60.2, 0.0, 2, 68.0, 1.0, nan),
        ("p", "rewind", 80, False, nan, nan, 0, nan, nan, nan),
        ("p", "oneshot", 40, True, 40.0, 0.0, 1, 61.0, 0.0, nan),
        ("p", "oneshot", 80, True, 80.0, 0.0, 1, 62.0, 0.0, nan),
    ])
    lines = _missed_targets(pts)
    assert lines == ["target 80 % not reached by LOBSTER (highest reached: 65.69 %): "
                     "no snapshot there, so no retraining from it"]
    fig = fig1(pts, "a title " * 20, note="reduced scale")
    texts = [t.get_text() for t in fig.texts]
    assert any("65.69" in t and "differs from the paper: reduced scale" in t for t in texts)
    assert all(len(line) <= 90 for line in fig.axes[0].get_title().splitlines())
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["40", "60.2", "80"]
    assert fig.axes[0].get_yscale() == "log"  # the paper's error axis


def test_a_method_without_a_style_is_still_drawn():
    nan = float("nan")
    pts = _points([
        ("p", "lobster", 90, True, 91.0, 20.0, 1, 3.0, 0.0, nan),
        ("p", "snip", 90, True, 91.0, 20.0, 2, 4.0, 0.5, nan),
    ])
    labels = fig1(pts, "t").axes[0].get_legend_handles_labels()[1]
    assert labels == ["LOBSTER (gradual)", "snip (n=2)"]
