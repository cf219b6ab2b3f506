"""Tests for otlens.depth: profile methods, PCA preparation, adjacent/pairwise profiles,
entropy profiles and profile-shape statistics, on small synthetic stacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose
from scipy.stats import ortho_group
from sklearn.decomposition import PCA

from otlens.activations import Activations, layer_names
from otlens.depth import (
    PROFILE_METHODS,
    PROFILE_SOLVER,
    ProfileMethod,
    adjacent_profile,
    has_interior_minimum,
    entropy_profile,
    get_method,
    pairwise_layer_ot,
    pca_project,
    prepare_transition,
    profile_shape,
    shape_table,
)
from otlens.entropy import norm_entropy

COLUMNS = ["experiment", "model", "trained", "method", "layer", "seed", "metric", "value", "n_samples", "n_iter",
           "converged", "marginal_error"]
N_TOKENS, D_MODEL = 40, 8
SHIFTS = (0.1, 0.2, 0.3, 0.4, 0.5)  # shift added by transition l -> l+1, growing with depth

# A method that converges in a few dozen iterations (reg large relative to unit-norm costs), for
# tests that compare numbers across calls at tight tolerances.
EASY = ProfileMethod("easy", estimator="divergence", reg=0.5, include_embedding=True)
TIGHT = dict(dtype=torch.float64, tol=1e-10, max_iter=20_000)


pytestmark = pytest.mark.usefixtures("one_thread")


def shift_stack(rng, shifts=SHIFTS, n_tokens=N_TOKENS, d=D_MODEL):
    """States [len(shifts)+1, n_tokens, d]: state l+1 = state l + shifts[l] * e_1 (a pure translation)."""
    base = rng.normal(size=(n_tokens, d))
    e1 = np.eye(d)[0]
    states = [base]
    for s in shifts:
        states.append(states[-1] + s * e1)
    return torch.tensor(np.stack(states), dtype=torch.float32)


@pytest.fixture
def stack(rng):
    return shift_stack(rng)


def profile(df, seed=0):
    return df[df.seed == seed].sort_values("layer").value.to_numpy()


# --- methods --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw,name", [
    (dict(basis="pca"), "`basis`"),
    (dict(normalize="l2"), "`normalize`"),
    (dict(estimator="emd"), "`estimator`"),
    (dict(reg=0.0), "`reg`"),
    (dict(reg=-0.1), "`reg`"),
    (dict(n_components=0), "`n_components`"),
])
def test_profile_method_validation(kw, name):
    with pytest.raises(ValueError, match=name):
        ProfileMethod("bad", **kw)


def test_presets_match_the_documented_methods():
    pub, shared, cor = PROFILE_METHODS["published"], PROFILE_METHODS["shared-basis"], PROFILE_METHODS["corrected"]
    assert (pub.basis, pub.n_components, pub.normalize, pub.estimator, pub.reg, pub.include_embedding) == (
        "per-layer-pca", 50, "row", "sinkhorn", 0.1, False)
    assert (shared.basis, shared.estimator, shared.include_embedding) == ("shared-pca", "sinkhorn", False)
    assert (cor.basis, cor.normalize, cor.estimator, cor.include_embedding) == ("none", "row", "divergence", True)
    for name in ("raw-scale", "layer-scale"):
        m = PROFILE_METHODS[name]
        assert m.relative_reg and m.estimator == "divergence" and m.normalize != "row"
    assert all(m.name == key for key, m in PROFILE_METHODS.items())


def test_get_method():
    assert get_method("corrected") is PROFILE_METHODS["corrected"]
    assert get_method(EASY) is EASY
    with pytest.raises(ValueError, match=r"`method` must be one of \[.*'corrected'.*'published'.*\]; got 'nope'"):
        get_method("nope")


# --- PCA ------------------------------------------------------------------------------------------
def test_pca_project_shape_centred_and_ordered(rng):
    z = torch.tensor(rng.normal(size=(60, 10)) * np.linspace(3, 0.5, 10) + 5.0)
    p = pca_project(z, 4)
    assert p.shape == (60, 4)
    assert_allclose(p.double().mean(0).numpy(), 0.0, atol=1e-5)
    var = p.double().var(0).numpy()
    assert (np.diff(var) <= 1e-9).all()
    # more components than dimensions or points: capped at min(n, d)
    assert pca_project(z, 50).shape == (60, 10)
    assert pca_project(z[:5], 50).shape == (5, 5)


def test_pca_project_equals_sklearn(rng):
    z = rng.normal(size=(80, 10)) * np.linspace(3, 0.5, 10) + 5.0  # distinct variances
    out = pca_project(torch.tensor(z), 4).numpy()
    ref = PCA(4, svd_solver="full").fit_transform(z)
    # up to the sign of each component ...
    assert_allclose(np.abs(out), np.abs(ref), atol=1e-5)
    # ... and exactly, since both make the largest loading of each component positive
    assert_allclose(out, ref, atol=1e-5)


def test_pca_project_fewer_points_than_dimensions_equals_sklearn(rng):
    # n < d takes the Gram-matrix branch; it must give the same projection as the covariance one
    z = rng.normal(size=(12, 40)) * np.linspace(4, 0.5, 40)
    out = pca_project(torch.tensor(z), 5).numpy()
    assert_allclose(out, PCA(5, svd_solver="full").fit_transform(z), atol=1e-6)


def test_pca_project_sign_is_deterministic(rng):
    z = torch.tensor(rng.normal(size=(30, 6)))
    assert torch.equal(pca_project(z, 3), pca_project(z.clone(), 3))
    # -z has the same covariance, hence the same (sign-fixed) axes: its scores are exactly negated
    assert_allclose(pca_project(-z, 3).numpy(), -pca_project(z, 3).numpy(), atol=1e-6)
    # a translation changes nothing (the data are centred first)
    assert_allclose(pca_project(z + 7.0, 3).numpy(), pca_project(z, 3).numpy(), atol=1e-5)


# --- preparation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["published", "shared-basis", "corrected"])
def test_prepare_transition_row_normalisation(stack, name):
    idx = torch.arange(0, N_TOKENS, 3)
    x, y = prepare_transition(stack, 1, idx, get_method(name))
    assert x.shape == y.shape == (len(idx), D_MODEL)  # PCA to min(50, n, d) = d components
    assert_allclose(x.norm(dim=1).numpy(), 1.0, rtol=1e-6)
    assert_allclose(y.norm(dim=1).numpy(), 1.0, rtol=1e-6)


def test_prepare_transition_layer_and_no_normalisation(stack):
    idx = torch.tensor([0, 5, 7])
    x, y = prepare_transition(stack, 2, idx, ProfileMethod("raw", normalize="none"))
    assert torch.equal(x, stack[2][idx]) and torch.equal(y, stack[3][idx])
    x, y = prepare_transition(stack, 2, torch.arange(N_TOKENS), ProfileMethod("lay", normalize="layer"))
    assert_allclose(float(x.norm(dim=1).mean()), 1.0, rtol=1e-6)
    assert_allclose(float(y.norm(dim=1).mean()), 1.0, rtol=1e-6)
    # layer scaling keeps the ratios between token norms
    ratio = stack[2].norm(dim=1) / x.norm(dim=1)
    assert_allclose(ratio.numpy(), float(ratio[0]), rtol=1e-5)


def test_shared_pca_of_identical_layers(rng):
    layer = torch.tensor(rng.normal(size=(N_TOKENS, D_MODEL)), dtype=torch.float32)
    states = torch.stack([layer, layer, layer])
    idx = torch.arange(N_TOKENS)
    x, y = prepare_transition(states, 0, idx, get_method("shared-basis"))
    assert torch.equal(x, y)
    shared = adjacent_profile(states, method="shared-basis", n_samples=N_TOKENS, progress=False)
    moved = adjacent_profile(shift_stack(rng, shifts=(1.0, 1.0)), method="shared-basis", n_samples=N_TOKENS,
                             progress=False)
    # only the entropic bias remains: far below the cost of a real move
    assert (shared.value < 0.1 * moved.value.min()).all()
    div = adjacent_profile(states, method=ProfileMethod("sd", basis="shared-pca", estimator="divergence"),
                           n_samples=N_TOKENS, progress=False)
    assert_allclose(div.value, 0.0, atol=1e-5)


def test_per_layer_pca_of_rotated_copy_matches_up_to_sign(rng):
    # For b = a R with R orthogonal, b's principal axes are R^T v_k and its scores are
    # (a R)(R^T v_k) = a v_k: the same numbers as for a. Only the sign convention (largest
    # *loading* positive) is decided on the rotated axes R^T v_k, which need not agree with
    # v_k, so each component may flip sign. Row normalisation does not change that.
    a = rng.normal(size=(N_TOKENS, D_MODEL)) * np.linspace(3, 0.5, D_MODEL)  # distinct variances
    R = ortho_group.rvs(D_MODEL, random_state=1)
    states = torch.tensor(np.stack([a, a @ R]), dtype=torch.float32)
    x, y = prepare_transition(states, 0, torch.arange(N_TOKENS), get_method("published"))
    signs = np.sign((x * y).sum(0).numpy())
    assert_allclose(x.numpy(), y.numpy() * signs, atol=1e-5)
    # whereas the shared basis sees the rotation
    xs, ys = prepare_transition(states, 0, torch.arange(N_TOKENS), get_method("shared-basis"))
    assert float((xs - ys).abs().max()) > 0.1


# --- adjacent profile -----------------------------------------------------------------------------
def test_adjacent_profile_table(stack):
    seeds = (0, 1, 2)
    df = adjacent_profile(stack, method="corrected", n_samples=30, seeds=seeds, model="toy", trained=False,
                          progress=False)
    assert list(df.columns) == COLUMNS
    n_transitions = stack.shape[0] - 1
    assert len(df) == len(seeds) * n_transitions
    assert (df.experiment == "adjacent_ot").all() and (df.model == "toy").all()
    assert (df.trained == False).all() and (df.method == "corrected").all()  # noqa: E712
    assert (df.metric == "ot_divergence").all() and (df.n_samples == 30).all()
    assert sorted(set(df.seed)) == list(seeds)
    for s in seeds:
        assert sorted(df[df.seed == s].layer) == list(range(0, n_transitions))
    assert df.converged.dtype == bool and (df.n_iter >= 1).all()
    assert (df.marginal_error < PROFILE_SOLVER["tol"]).all() == df.converged.all()


@pytest.mark.parametrize("name,first,metric", [("published", 1, "ot_cost"), ("shared-basis", 1, "ot_cost"),
                                               ("corrected", 0, "ot_divergence")])
def test_adjacent_profile_layers_respect_include_embedding(stack, name, first, metric):
    df = adjacent_profile(stack, method=name, n_samples=20, progress=False)
    assert list(df.layer) == list(range(first, stack.shape[0] - 1))
    assert (df.metric == metric).all()


def test_exact_estimator_metric(stack):
    df = adjacent_profile(stack, method=ProfileMethod("w2", estimator="exact", normalize="none"), n_samples=20,
                          progress=False)
    assert (df.metric == "w2_squared").all() and (df.n_iter == 0).all()
    # a pure translation by s: W2^2 = s^2 exactly
    assert_allclose(df.value, np.square(SHIFTS[1:]), rtol=1e-5)


def test_corrected_recovers_increasing_profile(stack):
    df = adjacent_profile(stack, method="corrected", n_samples=30, seeds=(0, 1), progress=False)
    for s in (0, 1):
        assert (np.diff(profile(df, s)) > 0).all()


def test_unnormalised_divergence_recovers_the_shifts(stack):
    # Without normalisation each transition is a translation, so S_eps = ||shift||^2 for any eps.
    m = ProfileMethod("plain", normalize="none", estimator="divergence", include_embedding=True)
    df = adjacent_profile(stack, method=m, n_samples=30, progress=False)
    assert_allclose(profile(df), np.square(SHIFTS), rtol=2e-3)


def test_published_is_blind_to_translations(stack):
    # Per-layer PCA centres each layer, so a translation leaves the two clouds identical and
    # every transition costs the same (the entropic bias of a cloud with itself). Solved tightly:
    # at the default float32 tol (1e-5) the four solves agree only to ~4e-4 (and err by ~2e-3).
    df = adjacent_profile(stack, method="published", n_samples=30, progress=False, **TIGHT)
    assert_allclose(df.value, df.value.iloc[0], rtol=1e-7)


def test_same_seed_same_values_different_seed_different_sample(stack):
    kw = dict(method="corrected", n_samples=20, progress=False)
    a = adjacent_profile(stack, seeds=(3,), **kw)
    b = adjacent_profile(stack, seeds=(3,), **kw)
    assert_allclose(a.value, b.value, rtol=0, atol=0)
    c = adjacent_profile(stack, seeds=(4,), **kw)
    assert not np.allclose(a.value, c.value, rtol=1e-3)


def test_n_samples_above_n_tokens_uses_all_tokens(stack):
    big = adjacent_profile(stack, method=EASY, n_samples=10 * N_TOKENS, seeds=(0, 1), progress=False)
    assert (big.n_samples == N_TOKENS).all()
    # every seed then samples the same (all) tokens, and it equals asking for exactly n_tokens
    assert_allclose(profile(big, 0), profile(big, 1), rtol=0, atol=0)
    full = adjacent_profile(stack, method=EASY, n_samples=N_TOKENS, progress=False)
    assert_allclose(profile(big, 0), profile(full, 0), rtol=0, atol=0)


def test_batch_size_does_not_change_values(stack):
    kw = dict(method=EASY, n_samples=30, seeds=(0, 1), progress=False, **TIGHT)
    one = adjacent_profile(stack, batch_size=1, **kw)
    eight = adjacent_profile(stack, batch_size=8, **kw)
    assert one.converged.all() and eight.converged.all()
    assert_allclose(one.value, eight.value, rtol=1e-5)


@pytest.mark.parametrize("name", ["published", "shared-basis"])
def test_batch_size_does_not_change_preset_values(stack, name):
    # Problems in a batch are frozen once they converge, so each gets the result it would get alone.
    kw = dict(method=name, n_samples=30, seeds=(0, 1), progress=False)
    one = adjacent_profile(stack, batch_size=1, **kw)
    eight = adjacent_profile(stack, batch_size=8, **kw)
    assert_allclose(one.value, eight.value, rtol=1e-5)


def test_batch_size_corrected_float32_resolution(stack):
    # S_eps is a difference of O(1) dual objectives, so in float32 it is resolved only to about
    # 1e-7 absolute (a few ulps of the objectives); the batched kernel iterations round
    # differently from single ones, giving ~4e-5 relative on divergences of ~1e-3. The
    # log-domain iterations are row-wise and agree across batch sizes.
    kw = dict(method="corrected", n_samples=30, seeds=(0,), progress=False)
    one = adjacent_profile(stack, batch_size=1, **kw)
    eight = adjacent_profile(stack, batch_size=8, **kw)
    assert_allclose(one.value, eight.value, rtol=0, atol=1e-6)
    one = adjacent_profile(stack, batch_size=1, mode="log", **kw)
    eight = adjacent_profile(stack, batch_size=8, mode="log", **kw)
    assert_allclose(one.value, eight.value, rtol=1e-5)


def test_identical_layers_zero_divergence(rng):
    layer = torch.tensor(rng.normal(size=(N_TOKENS, D_MODEL)), dtype=torch.float32)
    states = layer.expand(4, -1, -1).contiguous()
    df = adjacent_profile(states, method="corrected", n_samples=30, progress=False)
    assert len(df) == 3
    assert_allclose(df.value, 0.0, atol=1e-5)


def test_model_label_from_activations(stack):
    acts = make_activations(stack, model="toy-model")
    df = adjacent_profile(acts, method=EASY, n_samples=10, progress=False)
    assert (df.model == "toy-model").all()
    assert (adjacent_profile(acts, method=EASY, n_samples=10, model="other", progress=False).model == "other").all()


def test_adjacent_profile_errors(stack):
    with pytest.raises(ValueError, match="`seeds`"):
        adjacent_profile(stack, method="corrected", seeds=(), progress=False)
    with pytest.raises(ValueError, match="`seeds`"):
        adjacent_profile(stack, method="corrected", seeds=(-1,), progress=False)
    with pytest.raises(ValueError, match="`n_samples`"):
        adjacent_profile(stack, method="corrected", n_samples=1, progress=False)
    with pytest.raises(ValueError, match="`batch_size`"):
        adjacent_profile(stack, method="corrected", batch_size=0, progress=False)
    with pytest.raises(ValueError, match="`method`"):
        adjacent_profile(stack, method="nope", progress=False)
    # published skips the embedding: 2 states leave a single block output, nothing to compare
    with pytest.raises(ValueError, match="`acts`.*two layers"):
        adjacent_profile(stack[:2], method="published", progress=False)
    with pytest.raises(ValueError, match="`acts`.*two layers"):
        adjacent_profile(stack[0], method="corrected", progress=False)  # one state (2-D)
    with pytest.raises(ValueError, match="`states`"):
        adjacent_profile(stack[:, :1], method="corrected", progress=False)  # one token
    bad = stack.clone()
    bad[1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="`states`"):
        adjacent_profile(bad, method="corrected", progress=False)
    assert len(adjacent_profile(stack[:2], method="corrected", n_samples=10, progress=False)) == 1


# --- pairwise -------------------------------------------------------------------------------------
def test_pairwise_layer_ot(stack):
    n = stack.shape[0]
    P = pairwise_layer_ot(stack, method=EASY, n_samples=30, progress=False, **TIGHT)
    assert P.shape == (n, n)
    assert_allclose(P, P.T, rtol=0, atol=0)
    assert (np.diag(P) == 0).all()
    assert (P[~np.eye(n, dtype=bool)] > 0).all()
    # translations accumulate along depth, so farther layers are farther apart
    for i in range(n - 2):
        assert P[i, i + 2] > P[i, i + 1]
    adj = adjacent_profile(stack, method=EASY, n_samples=30, seeds=(0,), progress=False, **TIGHT)
    assert_allclose(np.diag(P, 1), profile(adj), rtol=1e-6)


def test_pairwise_pca_method_agrees_with_adjacent(rng):
    # a per-layer-PCA method without the embedding transition: adjacent rows start at layer 1
    noise = torch.tensor(rng.normal(size=(len(SHIFTS) + 1, N_TOKENS, D_MODEL)), dtype=torch.float32)
    stack = shift_stack(rng) + 0.5 * noise  # layers differ in shape, not only by a translation
    m = ProfileMethod("pub-easy", basis="per-layer-pca", n_components=4, estimator="sinkhorn", reg=0.5)
    P = pairwise_layer_ot(stack, method=m, n_samples=25, seed=2, progress=False, **TIGHT)
    adj = adjacent_profile(stack, method=m, n_samples=25, seeds=(2,), progress=False, **TIGHT)
    assert list(adj.layer) == list(range(1, len(SHIFTS)))
    assert adj.converged.all()
    assert np.ptp(profile(adj, 2)) > 1e-3 * profile(adj, 2).mean()  # so a shifted index would show
    assert_allclose(np.diag(P, 1)[1:], profile(adj, 2), rtol=1e-6)


# --- entropy profile ------------------------------------------------------------------------------
def make_activations(states, model="toy", lengths=(10, 12, 18)):
    n_tokens = states.shape[1]
    assert sum(lengths) == n_tokens
    text_index = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    return Activations(states=states, layer_names=layer_names(states.shape[0] - 1), text_index=text_index,
                       token_ids=torch.arange(n_tokens), model=model, n_texts=len(lengths))


def test_entropy_profile(stack):
    states = stack.clone()
    states[0] = states[0] / states[0].norm(dim=1, keepdim=True)  # equal norms: normalised entropy 1
    acts = make_activations(states)
    df = entropy_profile(acts, seed=7)
    n_states = states.shape[0]
    assert len(df) == 3 * n_states
    assert set(df.metric) == {"norm_entropy", "prompt_entropy", "dataset_entropy"}
    for metric, g in df.groupby("metric"):
        assert list(g.layer) == list(range(n_states))
        assert g.value.between(0, 1 + 1e-9).all()
    assert (df.experiment == "entropy").all() and (df.model == "toy").all() and (df.seed == 7).all()
    assert set(df[df.metric == "norm_entropy"].method) == {"published"}
    assert set(df[df.metric != "norm_entropy"].method) == {"matrix-renyi"}
    ne = df[df.metric == "norm_entropy"].value.to_numpy()
    assert_allclose(ne[0], 1.0, rtol=1e-6)
    assert_allclose(ne, norm_entropy(states, normalize=True).numpy(), rtol=1e-6)
    assert (entropy_profile(acts, model="m2", trained=False).model == "m2").all()


def test_entropy_profile_needs_activations(stack):
    with pytest.raises(ValueError, match="`acts`.*Activations"):
        entropy_profile(stack)


# --- profile shape --------------------------------------------------------------------------------
def test_profile_shape_u():
    s = profile_shape([3, 1, 1, 1, 3])
    # interior median 1; mean 1.8; population std sqrt(0.96); second differences [2, 0, 2]
    assert s["edge_ratio"] == 3 and s["first_ratio"] == 3 and s["last_ratio"] == 3
    assert s["argmin_frac"] == 0.25
    assert_allclose(s["cv"], np.sqrt(0.96) / 1.8, rtol=1e-12)
    assert_allclose(s["roughness"], (4 / 3) / 1.8, rtol=1e-12)


def test_profile_shape_monotone():
    up = profile_shape([1, 2, 3, 4, 5])
    assert_allclose([up["edge_ratio"], up["first_ratio"], up["last_ratio"]], [1 / 3, 1 / 3, 5 / 3])
    assert up["edge_ratio"] < 1 < up["last_ratio"]
    assert up["argmin_frac"] == 0.0
    assert_allclose(up["cv"], np.sqrt(2) / 3, rtol=1e-12)
    assert up["roughness"] == 0.0  # linear: no curvature
    down = profile_shape([5, 4, 3, 2, 1])
    assert down["argmin_frac"] == 1.0 and down["first_ratio"] > 1 > down["last_ratio"]


def test_profile_shape_constant_and_errors():
    s = profile_shape(np.full(6, 2.0))
    assert s["cv"] == 0 and s["roughness"] == 0 and s["edge_ratio"] == 1 and s["argmin_frac"] == 0
    assert np.isnan(profile_shape([0.0, 0.0, 0.0])["edge_ratio"])  # zero interior median
    with pytest.raises(ValueError, match="`values`"):
        profile_shape([1.0, 2.0])
    with pytest.raises(ValueError, match="`values`"):
        profile_shape([[1.0, 2.0, 3.0]])


def test_shape_table_groups_and_sorts():
    rows = []
    profiles = {(True, 0): [3, 1, 1, 1, 3], (True, 1): [1, 2, 3, 4, 5], (False, 0): [5, 4, 3, 2, 1]}
    for (trained, seed), vals in profiles.items():
        for layer in (3, 0, 4, 2, 1):  # out of order on purpose
            rows.append(dict(model="m", trained=trained, method="corrected", metric="ot_divergence", seed=seed,
                             layer=layer, value=vals[layer]))
    df = pd.DataFrame(rows)
    table = shape_table(df)
    assert len(table) == 3
    assert set(table.columns) >= {"model", "trained", "method", "metric", "seed", "edge_ratio", "cv"}
    for (trained, seed), vals in profiles.items():
        row = table[(table.trained == trained) & (table.seed == seed)]
        assert len(row) == 1
        expected = profile_shape(vals)
        for key, value in expected.items():
            assert_allclose(row[key].iloc[0], value, rtol=1e-12)
    # grouping by a subset of keys still splits seeds
    assert len(shape_table(df, by=("model",))) == 2


# --------------------------------------------------------------------------- claims
def _profile_rows(model, trained, method, seed, values):
    return [dict(experiment="adjacent_ot", model=model, trained=trained, method=method, layer=i, seed=seed,
                 metric="ot_cost", value=v) for i, v in enumerate(values)]


def test_has_interior_minimum_known_curves():
    assert has_interior_minimum([3.0, 1.0, 2.0])
    assert not has_interior_minimum([1.0, 2.0, 3.0])  # minimum at the first layer
    assert not has_interior_minimum([3.0, 2.0, 1.0])  # minimum at the last layer
    assert not has_interior_minimum([1.0, 0.999, 1.0, 2.0])  # dip smaller than 1% of the range
    with pytest.raises(ValueError, match="`values`"):
        has_interior_minimum([1.0, 2.0])


def test_converged_is_judged_per_transition_in_a_batch(rng):
    # a near-identity transition (converges in 10 iterations) and a far one (error 0.07 after
    # 40): batched together, each row must report its own convergence, not the batch's
    base = torch.tensor(rng.normal(size=(64, 6)), dtype=torch.float64)
    far = torch.tensor(rng.normal(size=(64, 6)) * 5, dtype=torch.float64)
    states = torch.stack([base, base + 0.01, far])
    method = ProfileMethod("t", normalize="none", estimator="sinkhorn", reg=0.5, include_embedding=True)
    df = adjacent_profile(states, method=method, n_samples=64, batch_size=2, progress=False, max_iter=40,
                          tol=1e-3, eps_scaling=None)
    row = df.set_index("layer").converged
    assert row[0] and not row[1]


# --- the study's result -----------------------------------------------------------------------------
def test_depth_study_returns_a_frozen_result_with_the_chapters_table(rng, monkeypatch):
    import dataclasses

    from otlens import claims, depth
    from otlens.results import RESULT_COLUMNS

    # a stand-in model: every run (trained or a twin) reads its own shifted cloud
    def fake_extract(spec, texts, *, trained, seed, **kw):
        return make_activations(shift_stack(np.random.default_rng(seed + 10 * trained)), model=spec)

    monkeypatch.setattr(depth, "extract_activations", fake_extract)
    kw = dict(methods=["corrected", EASY], seeds=[0, 1], n_samples=30, entropy_resamples=3, progress=False)
    study = depth.depth_study("toy", ["a", "b", "c"], **kw)
    assert isinstance(study, depth.DepthStudy)
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.profiles = None
    frame = study.to_frame()
    assert list(frame.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert set(frame.experiment) == {"adjacent_ot", "entropy", "entropy_dip"}
    pd.testing.assert_frame_equal(frame, pd.concat([study.profiles, study.entropies], ignore_index=True))
    profiles, entropies = study  # the old tuple still unpacks
    assert profiles is study.profiles and entropies is study.entropies
    # the verdict is the chapter's rules on that table, not a second text
    assert study.describe() == claims.describe_chapter("01_ot_across_depth", frame)
    titles = {c.key: c.claim for c in claims.CLAIMS}
    assert all(titles[k] in study.describe() for k in claims.CHAPTER_RULES["01_ot_across_depth"])
    # two models: profiles, then entropies, in the given order (as the chapter concatenated them)
    other = depth.depth_study("toy-2", ["a", "b", "c"], **kw)
    both = depth.DepthStudy.concat([study, other])
    expected = pd.concat([study.profiles, other.profiles, study.entropies, other.entropies], ignore_index=True)
    pd.testing.assert_frame_equal(both.to_frame(), expected)
    with pytest.raises(ValueError, match="non-empty sequence of DepthStudy"):
        depth.DepthStudy.concat([])
    with pytest.raises(ValueError, match="non-empty sequence of DepthStudy"):
        depth.DepthStudy.concat([(profiles, entropies)])
