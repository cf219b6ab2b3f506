"""Mutual-information estimators against distributions with known mutual information.

Tolerances (n = 20,000 samples): the plug-in estimator with the Miller-Madow correction is within
four standard errors of the closed-form value (the standard error is the standard deviation of
the pointwise information over sqrt(n), 0.002-0.012 nats here); discretised and probe estimates
of continuous variables are lower bounds (data processing, a finite-capacity classifier): within
0.03 nats below the truth and at most 0.03 above it (sampling error).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import integrate, stats

from otlens.activations import Activations, layer_names
from otlens.information import (
    binned_mi,
    context_codes,
    discrete_mi,
    entropy_discrete,
    information_plane,
    kmeans,
    probe_mi,
)

N = 20_000


@pytest.fixture(autouse=True)
def _threads(one_thread):
    yield


def _symmetric_channel(rng, m, p, n=N):
    x = rng.integers(0, m, n)
    err = rng.random(n) < p
    y = np.where(err, (x + rng.integers(1, m, n)) % m, x)  # a wrong symbol, uniformly
    right, wrong = np.log(m * (1 - p)), np.log(m * p / (m - 1))  # pointwise information
    true = (1 - p) * right + p * wrong
    se = np.sqrt(p * (1 - p) * (right - wrong) ** 2 / n)
    return x, y, true, se


@pytest.mark.parametrize("m, p", [(2, 0.1), (8, 0.2), (32, 0.5)])
def test_discrete_mi_recovers_symmetric_channels(rng, m, p):
    x, y, true, se = _symmetric_channel(rng, m, p)
    assert discrete_mi(x, y) == pytest.approx(true, abs=4 * se)
    assert discrete_mi(y, x) == pytest.approx(discrete_mi(x, y))  # symmetric


def test_discrete_mi_identity_and_independence(rng):
    x = rng.integers(0, 16, N)
    # I(X; X) = H(X) = log 16 for a uniform variable
    assert discrete_mi(x, x) == pytest.approx(np.log(16), abs=0.01)
    assert entropy_discrete(x) == pytest.approx(np.log(16), abs=0.01)
    # independent: the correction removes the plug-in's positive bias
    y = rng.integers(0, 16, N)
    assert discrete_mi(x, y) < 0.003 < discrete_mi(x, y, correction="none")
    # 2-D rows are joint symbols: (X, Y) carries all of X
    assert discrete_mi(np.stack([x, y], 1), x) == pytest.approx(discrete_mi(x, x), abs=1e-9)


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_binned_mi_on_correlated_gaussians(rng, rho):
    a = rng.standard_normal(N)
    b = rho * a + np.sqrt(1 - rho**2) * rng.standard_normal(N)
    true = -0.5 * np.log(1 - rho**2)
    qb = np.searchsorted(np.quantile(b, np.linspace(0, 1, 33)[1:-1]), b)  # b in 32 quantile bins
    est = binned_mi(a[:, None], qb, n_clusters=32)
    assert true - 0.03 < est < true + 0.03


def _mixture_mi(mu):
    f = lambda t: 0.5 * stats.norm.pdf(t, mu) + 0.5 * stats.norm.pdf(t, -mu)  # noqa: E731
    h_z = integrate.quad(lambda t: -f(t) * np.log(f(t)), -mu - 12, mu + 12)[0]
    return h_z - 0.5 * np.log(2 * np.pi * np.e)  # I(Y; Z) = h(Z) - h(Z | Y)


@pytest.mark.parametrize("mu", [0.5, 1.5])
def test_probe_and_binning_on_a_gaussian_mixture(rng, mu):
    y = rng.integers(0, 2, N)
    z = ((2 * y - 1) * mu + rng.standard_normal(N))[:, None]
    true = _mixture_mi(mu)
    assert true - 0.03 < probe_mi(z, y) < true + 0.03
    assert true - 0.03 < binned_mi(z, y, n_clusters=32) < true + 0.03


def test_probe_recovers_a_discrete_channel_from_one_hot_outputs(rng):
    x, y, true, se = _symmetric_channel(rng, 8, 0.2)
    assert probe_mi(np.eye(8)[y], x) == pytest.approx(true, abs=0.03)
    # a representation carrying nothing about the label
    assert probe_mi(rng.standard_normal((N, 4)), x) < 0.01


def test_kmeans_is_deterministic_and_separates_clusters(rng):
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = rng.integers(0, 3, 600)
    z = centres[truth] + 0.1 * rng.standard_normal((600, 2))
    lab = kmeans(z, 3, seed=1)
    assert np.array_equal(lab, kmeans(z, 3, seed=1))
    assert discrete_mi(lab, truth, correction="none") == pytest.approx(entropy_discrete(truth, correction="none"))


def test_context_codes_stay_inside_each_text():
    ids = np.array([5, 6, 7, 8, 9])
    txt = np.array([0, 0, 0, 1, 1])
    x, y, keep = context_codes(ids, txt, 2)
    assert keep.tolist() == [0, 1, 3]  # the last token of each text has no next token
    assert y.tolist() == [6, 7, 9]
    assert x.tolist() == [[-1, 5], [5, 6], [-1, 8]]  # padded at each text's start


def test_information_plane_table():
    g = torch.Generator().manual_seed(0)
    n, d = 600, 8
    ids = torch.randint(0, 5, (n,), generator=g)
    states = torch.randn(3, n, d, generator=g)
    states[2, :, 0] = ids.roll(-1).float() * 5  # the last layer encodes the next token
    acts = Activations(states=states, layer_names=layer_names(2), text_index=torch.zeros(n, dtype=torch.long),
                       token_ids=ids, model="toy", n_texts=1)
    df = information_plane(acts, k=1, n_clusters=8, n_tokens=None)
    assert isinstance(df, pd.DataFrame)
    v = df.set_index(["layer", "metric"]).value
    h_y = v[(-1, "h_y")]
    assert v[(2, "mi_yz")] > 0.8 * h_y > v[(0, "mi_yz")] + 0.5  # only the last layer knows Y
    assert v[(2, "mi_yz_probe")] > 0.8 * h_y
    assert (df[df.metric.isin(["mi_xz", "mi_yz"])].value <= np.log(8) + 1e-9).all()  # at most log K


def test_bad_inputs_raise_clear_errors(rng):
    with pytest.raises(ValueError, match="same number of samples"):
        discrete_mi([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="integer labels"):
        discrete_mi([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="correction"):
        discrete_mi([0, 1], [0, 1], correction="bayes")
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans(rng.standard_normal((5, 2)), 6)
    with pytest.raises(ValueError, match="NaN"):
        binned_mi(np.array([[0.0], [np.nan]]), [0, 1], n_clusters=2)
    with pytest.raises(ValueError, match="test_fraction"):
        probe_mi(rng.standard_normal((10, 2)), rng.integers(0, 2, 10), test_fraction=1.5)
    with pytest.raises(ValueError, match="one label per row"):
        probe_mi(rng.standard_normal((10, 2)), rng.integers(0, 2, 9))
    with pytest.raises(ValueError, match="Activations"):
        information_plane(torch.zeros(2, 3, 4))
