"""Tests for otlens.entropy: known answers, invariances, batching and validation."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

import otlens.entropy as entropy_mod
from otlens.entropy import dataset_entropy, norm_entropy, prompt_entropy, renyi_entropy


def unit_rows(rng, n, d, scale=1.0):
    x = rng.normal(size=(n, d))
    return scale * x / np.linalg.norm(x, axis=1, keepdims=True)


def isotropic(d):
    """Rows ±e_1..±e_D: centred already, unit rows, covariance ∝ I_D (N = 2D > D)."""
    eye = np.eye(d)
    return np.vstack([eye, -eye])


def reference_renyi(z, alpha, center=True):
    """Straight numpy transcription of the definition (Gram route, float64)."""
    z = np.asarray(z, dtype=np.float64)
    if center:
        z = z - z.mean(0)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    k = z @ z.T
    lam = np.linalg.eigvalsh(k / np.trace(k))
    lam = np.where(lam > lam.max() * len(lam) * np.finfo(float).eps, lam, 0.0)  # numerical rank
    if alpha == 1:
        h = -sum(x * math.log(x) for x in lam if x > 0)
    else:
        h = math.log(np.sum(lam**alpha)) / (1 - alpha)
    return h / math.log(min(z.shape))


# --- norm entropy -------------------------------------------------------------------------------


def test_norm_entropy_uniform_norms_is_log_n(rng):
    z = unit_rows(rng, 12, 5, scale=3.0)
    assert_allclose(float(norm_entropy(z)), math.log(12), rtol=1e-6)
    assert_allclose(float(norm_entropy(z, normalize=True)), 1.0, rtol=1e-6)


def test_norm_entropy_one_dominant_norm_is_near_zero(rng):
    z = unit_rows(rng, 50, 4) * 1e-4
    z[7] *= 1e8
    h = float(norm_entropy(z))
    assert 0 <= h < 1e-3


def test_norm_entropy_closed_form_and_scale_invariance(rng):
    z = rng.normal(size=(9, 3))
    norms = np.linalg.norm(z, axis=1)
    p = norms / norms.sum()
    expected = -np.sum(p * np.log(p))
    assert_allclose(float(norm_entropy(z)), expected, rtol=1e-6)
    assert_allclose(float(norm_entropy(7.5 * z)), expected, rtol=1e-6)


def test_norm_entropy_single_token_is_zero():
    assert float(norm_entropy([[1.0, 2.0]])) == 0.0
    assert float(norm_entropy([[1.0, 2.0]], normalize=True)) == 0.0


def test_norm_entropy_batched_equals_loop_and_shapes(rng):
    stack = torch.as_tensor(rng.normal(size=(4, 10, 6)), dtype=torch.float32)
    out = norm_entropy(stack)
    assert out.shape == (4,) and out.dtype == torch.float32
    loop = torch.stack([norm_entropy(layer) for layer in stack])
    assert_allclose(out.numpy(), loop.numpy(), rtol=1e-6)
    assert norm_entropy(stack[0]).ndim == 0


def test_norm_entropy_all_zero_layer_raises():
    stack = np.ones((3, 4, 2))
    stack[1] = 0
    with pytest.raises(ValueError, match="only zero vectors in layer 1"):
        norm_entropy(stack)


# --- Rényi entropy: known answers ------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 3.0])
def test_renyi_isotropic_cloud_is_one(alpha):
    z = isotropic(4) + np.array([3.0, -1.0, 2.0, 0.5])  # translation is removed by centring
    assert_allclose(float(renyi_entropy(z, alpha=alpha)), 1.0, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_renyi_orthonormal_rows_without_centring_is_one(alpha):
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(10, 6)))  # 6 orthonormal columns
    assert_allclose(float(renyi_entropy(q.T, alpha=alpha, center=False)), 1.0, atol=1e-6)


def test_renyi_regular_simplex_attains_log_n_minus_1_over_log_n():
    """With centring and N <= D the rank is at most N - 1 (documented maximum)."""
    z = 5.0 * np.eye(5)
    assert_allclose(float(renyi_entropy(z)), math.log(4) / math.log(5), rtol=1e-6)


def test_renyi_rank_one_and_identical_rows_are_zero(rng):
    a, b = rng.normal(size=(10, 1)), rng.normal(size=(1, 7))
    assert float(renyi_entropy(a @ b)) == pytest.approx(0.0, abs=1e-6)
    same = np.tile(rng.normal(size=(1, 7)), (6, 1))
    for z in (same, same.astype(np.float32), np.full((5, 3), 0.1)):
        h = renyi_entropy(z)
        assert torch.isfinite(h) and float(h) == 0.0
    assert float(renyi_entropy(np.ones((1, 4)))) == 0.0  # a single row
    assert float(renyi_entropy(rng.normal(size=(6, 1)))) == 0.0  # D = 1


def test_renyi_row_at_the_mean_is_a_zero_vector_not_nan():
    z = np.vstack([isotropic(3), np.zeros((1, 3))])  # the extra row equals the mean
    h = renyi_entropy(z)
    assert torch.isfinite(h)
    assert_allclose(float(h), 1.0, atol=1e-6)


@pytest.mark.parametrize("shape", [(6, 10), (15, 4)])  # Gram (N x N) route and covariance (D x D) route
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 3.5])
def test_renyi_matches_reference_transcription(rng, shape, alpha):
    z = rng.normal(size=shape) + 2.0
    assert_allclose(float(renyi_entropy(z, alpha=alpha)), reference_renyi(z, alpha), rtol=1e-9)


def test_renyi_alpha_2_closed_form(rng):
    z = rng.normal(size=(8, 5))
    zc = z - z.mean(0)
    zt = zc / np.linalg.norm(zc, axis=1, keepdims=True)
    a = zt @ zt.T / np.trace(zt @ zt.T)
    expected = -math.log(np.sum(a**2)) / math.log(5)  # S_2 = -log tr(A^2) = -log ||A||_F^2
    assert_allclose(float(renyi_entropy(torch.as_tensor(z), alpha=2.0)), expected, rtol=1e-10)


def test_renyi_alpha_to_one_is_continuous(rng):
    z = torch.as_tensor(rng.normal(size=(3, 12, 7)))
    h1 = renyi_entropy(z, alpha=1.0)
    for alpha in (1 - 1e-4, 1 + 1e-4):
        assert_allclose(renyi_entropy(z, alpha=alpha).numpy(), h1.numpy(), atol=1e-4)
    # Rényi entropy is non-increasing in alpha
    hs = [float(renyi_entropy(z[0], alpha=a)) for a in (0.5, 1.0, 2.0, 4.0)]
    assert all(x >= y - 1e-12 for x, y in zip(hs[:-1], hs[1:], strict=True))


def test_renyi_values_lie_in_unit_interval(rng):
    for n, d in [(3, 50), (50, 3), (20, 20)]:
        h = float(renyi_entropy(rng.normal(size=(n, d)) ** 3))
        assert 0.0 <= h <= 1.0 + 1e-9


# --- Rényi entropy: invariances, batching, dtypes -------------------------------------------


def test_renyi_invariances(rng):
    z = rng.normal(size=(10, 6))
    h = float(renyi_entropy(z))
    assert_allclose(float(renyi_entropy(42.0 * z)), h, rtol=1e-10)  # global scale
    assert_allclose(float(renyi_entropy(z + rng.normal(size=(1, 6)))), h, rtol=1e-10)  # translation
    scales = rng.uniform(0.1, 10.0, size=(10, 1))
    h0 = float(renyi_entropy(z, center=False))
    assert_allclose(float(renyi_entropy(scales * z, center=False)), h0, rtol=1e-10)  # per-row scale
    perm = rng.permutation(10)
    assert_allclose(float(renyi_entropy(z[perm])), h, rtol=1e-10)  # order of tokens


def test_renyi_batched_equals_per_layer_loop(rng):
    stack = torch.as_tensor(rng.normal(size=(5, 9, 4)))
    out = renyi_entropy(stack, alpha=1.5)
    assert out.shape == (5,)
    loop = torch.stack([renyi_entropy(layer, alpha=1.5) for layer in stack])
    assert_allclose(out.numpy(), loop.numpy(), rtol=1e-12)


def test_float32_and_float64_agree(rng):
    z64 = torch.as_tensor(rng.normal(size=(3, 20, 8)) * 10 + 3)
    z32 = z64.float()
    for fn in (renyi_entropy, norm_entropy, dataset_entropy):
        a, b = fn(z32), fn(z64)
        assert a.dtype == torch.float32 and b.dtype == torch.float64
        assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    idx = np.repeat(np.arange(4), 5)
    assert_allclose(prompt_entropy(z32, idx).numpy(), prompt_entropy(z64, idx).numpy(), rtol=1e-5)


def test_low_precision_input_with_an_outlier_token_is_not_zeroed(rng):
    z = torch.as_tensor(rng.normal(size=(12, 8))).to(torch.bfloat16)
    z[0] *= 200  # a massive-activation token: the others are tiny next to it, but distinct
    for center in (True, False):
        h = renyi_entropy(z, center=center)
        assert h.dtype == torch.bfloat16
        assert float(h) > 0
        assert_allclose(float(h), float(renyi_entropy(z.double(), center=center)), rtol=1e-2)
    assert float(renyi_entropy(z, center=False)) > 0.5  # rows normalised one by one: well spread
    assert float(renyi_entropy(z[:1].repeat(5, 1))) == 0.0  # identical bf16 rows


def test_integer_input_is_accepted():
    z = [[1, 0], [0, 1], [-1, 0], [0, -1]]
    assert renyi_entropy(z).dtype == torch.float32
    assert_allclose(float(renyi_entropy(z)), 1.0, atol=1e-6)


# --- prompt and dataset entropy -----------------------------------------------------------------


def test_prompt_entropy_is_mean_over_texts_skipping_single_tokens(rng):
    lengths = [5, 1, 7, 5, 3]
    stack = torch.as_tensor(rng.normal(size=(4, sum(lengths), 6)))
    idx = np.repeat(np.arange(len(lengths)), lengths)
    out = prompt_entropy(stack, idx)
    assert out.shape == (4,)
    starts = np.cumsum([0] + lengths)
    per_text = [
        renyi_entropy(stack[:, s:e]) for s, e, n in zip(starts[:-1], starts[1:], lengths, strict=True) if n >= 2
    ]
    assert_allclose(out.numpy(), torch.stack(per_text).mean(0).numpy(), rtol=1e-12)
    loop = torch.stack([prompt_entropy(layer, idx) for layer in stack])
    assert_allclose(out.numpy(), loop.numpy(), rtol=1e-12)


def test_prompt_entropy_labels_need_not_be_contiguous(rng):
    stack = torch.as_tensor(rng.normal(size=(2, 8, 5)))
    idx = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    shuffled = rng.permutation(8)
    a = prompt_entropy(stack, idx)
    b = prompt_entropy(stack[:, shuffled], torch.as_tensor(idx[shuffled] + 10))
    assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)


def test_prompt_entropy_chunked_batches_agree(rng, monkeypatch):
    stack = torch.as_tensor(rng.normal(size=(3, 40, 6)))
    idx = np.repeat(np.arange(10), 4)
    full = prompt_entropy(stack, idx)
    monkeypatch.setattr(entropy_mod, "_MAX_ELEMENTS", 1)  # one text per batch
    assert_allclose(prompt_entropy(stack, idx).numpy(), full.numpy(), rtol=1e-12)


def test_dataset_entropy_is_renyi_of_pooled(rng):
    pooled = torch.as_tensor(rng.normal(size=(3, 30, 8)))
    assert_allclose(dataset_entropy(pooled, alpha=2.0).numpy(), renyi_entropy(pooled, alpha=2.0).numpy())
    assert_allclose(float(dataset_entropy(isotropic(5))), 1.0, atol=1e-6)


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [norm_entropy, renyi_entropy, dataset_entropy])
def test_wrong_ndim_and_nan_raise(fn):
    with pytest.raises(ValueError, match=r"\[n_layers, n_tokens, d_model\]; got shape \(4,\)"):
        fn(np.ones(4))
    with pytest.raises(ValueError, match="got shape"):
        fn(np.ones((2, 3, 4, 5)))
    bad = np.ones((2, 3, 4))
    bad[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(bad)
    with pytest.raises(ValueError, match="at least 1 point"):
        fn(np.ones((2, 0, 4)))


@pytest.mark.parametrize("alpha", [0, -1, float("nan"), float("inf"), "2"])
def test_bad_alpha_raises(alpha):
    z = np.eye(3)
    with pytest.raises(ValueError, match="`alpha` must be"):
        renyi_entropy(z, alpha=alpha)
    with pytest.raises(ValueError, match="`alpha` must be"):
        prompt_entropy(z, [0, 0, 0], alpha=alpha)
    with pytest.raises(ValueError, match="`alpha` must be"):
        dataset_entropy(z, alpha=alpha)


def test_alpha_error_message_format():
    with pytest.raises(ValueError, match=r"`alpha` must be > 0; got -1"):
        renyi_entropy(np.eye(3), alpha=-1)


def test_prompt_entropy_text_index_validation():
    z = np.random.default_rng(0).normal(size=(2, 6, 3))
    with pytest.raises(ValueError, match=r"`text_index` must be 1-D with one entry per token \(length 6\)"):
        prompt_entropy(z, [0, 0, 1, 1])
    with pytest.raises(ValueError, match="integer text labels"):
        prompt_entropy(z, np.zeros(6, dtype=float))
    with pytest.raises(ValueError, match="no text with >= 2 tokens"):
        prompt_entropy(z, np.arange(6))
    with pytest.raises(ValueError, match="`states`"):
        prompt_entropy(np.ones(6), np.zeros(6, dtype=int))


def test_doctests():
    assert doctest.testmod(entropy_mod).failed == 0
