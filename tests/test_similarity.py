"""Layer similarity (SVCCA, linear CKA) on known cases, against scikit-learn's CCA, and the
transfer probe on a separable problem."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from sharpminima.similarity import (canonical_correlations, compare_layers, data_points,
                                    layer_activations, linear_cka, svcca)


def _random(n, p, seed):
    return torch.randn(n, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_a_layer_is_identical_to_itself_and_to_an_invertible_map_of_itself():
    x = _random(2000, 12, 0) @ _random(12, 12, 1)  # correlated neurons
    assert svcca(x, x) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    a = _random(12, 12, 2) + 3 * torch.eye(12, dtype=torch.float64)  # invertible
    assert torch.linalg.matrix_rank(a) == 12
    assert svcca(x, x @ a + 5.0, keep=1.0) == pytest.approx(1.0, abs=1e-9)
    # CKA: invariant to orthogonal maps and isotropic scaling (not to every invertible one)
    q, _ = torch.linalg.qr(_random(12, 12, 3))
    assert linear_cka(x, 7.0 * x @ q) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x @ a) < 1.0 - 1e-3


def test_independent_activations_are_not_similar_when_samples_outnumber_neurons():
    x, y = _random(20000, 10, 4), _random(20000, 10, 5)
    assert svcca(x, y) < 0.03
    assert linear_cka(x, y) < 0.01
    # with as many samples as neurons, CCA finds perfect correlations in noise: why max_rows
    # and the sample counts keep samples far above the widths
    assert svcca(_random(10, 10, 6), _random(10, 10, 7), keep=1.0) > 0.99


def test_canonical_correlations_agree_with_scikit_learn():
    from sklearn.cross_decomposition import CCA

    z = _random(3000, 2, 8)
    x = torch.cat([z + 0.5 * _random(3000, 2, 9), _random(3000, 2, 10)], 1)
    y = torch.cat([z @ torch.tensor([[1.0, 0.3], [0.2, 1.0]], dtype=torch.float64) + 1.0 * _random(3000, 2, 11),
                   _random(3000, 1, 12)], 1)
    ours = canonical_correlations(x, y).numpy()
    cca = CCA(n_components=2, max_iter=5000, tol=1e-12, scale=False).fit(x.numpy(), y.numpy())
    u, v = cca.transform(x.numpy(), y.numpy())
    theirs = [abs(np.corrcoef(u[:, i], v[:, i])[0, 1]) for i in range(2)]
    assert ours[:2] == pytest.approx(sorted(theirs, reverse=True), abs=2e-3)
    assert ours[0] > 0.5 and ours[-1] < 0.1  # the shared signal, then noise


def test_a_dead_layer_has_no_similarity_and_conv_channels_are_the_neurons():
    x = _random(500, 4, 13)
    assert math.isnan(svcca(x, torch.zeros(500, 4, dtype=torch.float64)))
    assert math.isnan(linear_cka(torch.zeros(500, 4, dtype=torch.float64), x))
    a = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    pts = data_points(a)
    assert pts.shape == (2 * 2 * 2, 3)  # (images x positions) x channels
    assert pts[1].tolist() == [1.0, 5.0, 9.0]  # image 0, position (0, 1), every channel


def test_compare_layers_on_a_network_and_a_copy_with_one_layer_changed():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))
    x = torch.randn(3000, 8)
    ref = layer_activations(net, x)
    assert list(ref) == ["0", "2"] and ref["0"].min() >= 0  # post-ReLU
    other = copy.deepcopy(net)
    with torch.no_grad():
        other[2].weight.normal_()
    rows = compare_layers(ref, layer_activations(other, x), max_rows=1000)
    assert [r["layer"] for r in rows] == ["0", "2"] and rows[0]["points"] == 1000
    assert rows[0]["svcca"] == pytest.approx(1.0, abs=1e-9) and rows[0]["cka"] == pytest.approx(1.0, abs=1e-9)
    assert rows[1]["cka"] < 0.99


def test_the_probe_separates_separable_features_and_says_when_it_did_not_converge():
    from sharpminima.transfer import features, probe_error

    g = np.random.default_rng(0)
    centres = g.normal(size=(3, 5)) * 4
    y = g.integers(0, 3, size=600)
    f = centres[y] + g.normal(size=(600, 5))
    r = probe_error(f[:400], y[:400], f[400:], y[400:])
    assert r["probe_error"] < 5.0 and r["converged"]
    noise = g.normal(size=(600, 5))
    assert probe_error(noise[:400], y[:400], noise[400:], y[400:])["probe_error"] > 40.0
    assert not probe_error(f[:400], y[:400], f[400:], y[400:], max_iter=1)["converged"]
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 4), nn.ReLU(), nn.Linear(4, 3))
    x = torch.randn(10, 5)
    assert features(net, x).shape == (10, 4) and features(net, x, "all").shape == (10, 11)
    with pytest.raises(ValueError, match="transfer.layers"):
        features(net, x, "last")
