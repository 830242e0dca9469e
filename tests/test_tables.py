"""The landscape summary: G and 1-S read from the right grid points and runs (the paper's
statements about them are judged in claims.py, tests/test_claims.py)."""

import pandas as pd
import pytest

from sharpminima.tables import landscape_summary


def _write(tmp_path, g, s):
    """A 3 x 2 grid; G at index (0, 1), 1-S at (2, 1); other points hold decoys."""
    rows_loss, rows_psp = [], []
    for i in range(3):
        for j in range(2):
            v = g if (i, j) == (0, 1) else s if (i, j) == (2, 1) else {k: 999.0 for k in g}
            rows_loss.append({"i": i, "j": j, "a": i, "b": j, "loss": v["loss"], "error": 50.0})
            rows_psp.append({"i": i, "j": j, "a": i, "b": j, "psp_norm": v["psp_norm"],
                             "entropy1": v["entropy1"], "entropy2": v["entropy2"]})
    pd.DataFrame(rows_loss).to_csv(tmp_path / "loss.csv", index=False)
    pd.DataFrame(rows_psp).to_csv(tmp_path / "psp.csv", index=False)
    hess = [{"solution": name, "eig1": v["eig1"], "eig2": 1.0, "eig_mean": v["eig1"] / 2}
            for name, v in (("G", g), ("1-S", s))]
    hess.append({"solution": None, "eig1": 999.0, "eig2": 999.0, "eig_mean": 999.0})
    pd.DataFrame(hess).to_csv(tmp_path / "hessian.csv", index=False)


# plane.json of the grid _write draws: G at grid index (0, 1), 1-S at (2, 1)
PLANE = {"panel": "p", "target": 98.0, "g_index": [0, 1], "s_index": [2, 1],
         "pruned_params_pct": 98.3, "pruned_neurons_pct": 60.0}


def test_summary_reads_both_solutions(tmp_path):
    # G: sharper, lower loss, lower PSP norm, similar H1 (5 % apart), higher H2 ...
    g = {"loss": 0.1, "psp_norm": 5.0, "entropy1": 3.8, "entropy2": 9.5, "eig1": 8.0}
    # ... but here a worse test error than 1-S
    s = {"loss": 0.2, "psp_norm": 20.0, "entropy1": 4.0, "entropy2": 8.0, "eig1": 2.0}
    _write(tmp_path, g, s)
    plane = {**PLANE, "event": 3, "retrain_seed": 102}
    trajectory = {"events": [{"event": 2, "test_error": 50.0}, {"event": 3, "test_error": 3.0}]}
    rewind = {"runs": [{"seed": 101, "test_error": 50.0}, {"seed": 102, "test_error": 2.5}]}
    sol = landscape_summary(plane, tmp_path / "loss.csv", tmp_path / "psp.csv",
                            tmp_path / "hessian.csv", trajectory, rewind)
    sol = sol.set_index("solution")
    assert sol.loc["G", "loss"] == 0.1 and sol.loc["1-S", "psp_norm"] == 20.0
    assert sol.loc["G", "test_error"] == 3.0 and sol.loc["1-S", "test_error"] == 2.5
    assert sol.loc["G", "eig1"] == 8.0 and sol.loc["1-S", "eig_mean"] == 1.0


def test_missing_grid_point_is_named(tmp_path):
    g = {"loss": 0.1, "psp_norm": 5.0, "entropy1": 3.0, "entropy2": 9.5, "eig1": 8.0}
    _write(tmp_path, g, g)
    plane = {"panel": "p", "target": 98.0, "event": 0, "retrain_seed": 1, "g_index": [7, 7],
             "s_index": [2, 1], "pruned_params_pct": 98.3, "pruned_neurons_pct": 60.0}
    with pytest.raises(ValueError, match=r"\(7, 7\)"):
        landscape_summary(plane, tmp_path / "loss.csv", tmp_path / "psp.csv",
                          tmp_path / "hessian.csv", {"events": [{"event": 0, "test_error": 1}]},
                          {"runs": [{"seed": 1, "test_error": 1}]})
