"""Hierarchical OT: couplings, reconstruction, baselines, rotation, and input checks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import ot
import pytest

from otlens.exceptions import ConvergenceWarning
from otlens.hot import (
    VARIANTS,
    as_layers,
    correlation_costs,
    hot_align,
    hot_scores,
    hot_study,
    outer_ot,
    reconstruct,
    reconstruction_scores,
    split_stimuli,
    uniform_ot,
    variant_coupling,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _system(rng, n_layers=4, n_stim=120, width=20):
    """Layers with independent random responses (so layers are distinguishable)."""
    return [rng.standard_normal((n_stim, width)) for _ in range(n_layers)]


def _deeper(rng, base, copies=2, noise=0.4):
    """A deeper target: each source layer is seen by ``copies`` consecutive layers, units shuffled, plus noise."""
    out = []
    for x in base:
        for _ in range(copies):
            out.append(x[:, rng.permutation(x.shape[1])] + noise * rng.standard_normal(x.shape))
    return out


# --- OT building blocks -----------------------------------------------------------------------


@pytest.mark.parametrize("n,m", [(7, 7), (6, 12), (12, 6), (5, 7), (30, 45)])
def test_uniform_ot_matches_pot_and_marginals(rng, n, m):
    c = rng.random((n, m))
    for rep in (1, 4):
        plan, cost = uniform_ot(c, max_replication=rep)
        ref = ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), c)
        assert cost == pytest.approx(ref, rel=1e-10, abs=1e-12)
        np.testing.assert_allclose(plan.sum(1), 1 / n, atol=1e-12)
        np.testing.assert_allclose(plan.sum(0), 1 / m, atol=1e-12)
        assert (plan >= 0).all()


def test_outer_ot_marginals(rng):
    P = outer_ot(rng.random((4, 9)))
    np.testing.assert_allclose(P.sum(1), 1 / 4, atol=1e-12)
    np.testing.assert_allclose(P.sum(0), 1 / 9, atol=1e-12)


def test_correlation_costs_are_one_minus_pearson(rng):
    x, y = _system(rng, 2, 50, 6), _system(rng, 3, 50, 4)
    costs = correlation_costs(x, y)
    assert costs.shape == (2, 3)
    ref = 1 - np.corrcoef(x[1].T, y[2].T)[:6, 6:]
    np.testing.assert_allclose(costs[1, 2], ref, atol=1e-12)


# --- HOT ----------------------------------------------------------------------------------------


def test_self_alignment_is_diagonal_and_reconstructs(rng):
    x = _system(rng, 5, 150, 16)
    train, test = split_stimuli(150, seed=1)
    al = hot_align(x, x, train=train, progress=False)
    np.testing.assert_allclose(al.P, np.eye(5) / 5, atol=1e-12)
    for i in range(5):
        np.testing.assert_allclose(al.Q[i][i], np.eye(16) / 16, atol=1e-12)
        assert al.cost[i, i] == pytest.approx(0, abs=1e-12)
    pred = reconstruct(al, [a[test] for a in x])
    scores = reconstruction_scores(al.standardize_source([a[test] for a in x]), pred)
    assert (scores >= 0.99).all()


def test_all_couplings_have_uniform_marginals(rng):
    x, y = _system(rng, 3, 80, 10), _system(rng, 5, 80, 14)
    for rotation in (False, True):
        al = hot_align(x, y, rotation=rotation, progress=False)
        np.testing.assert_allclose(al.P.sum(1), 1 / 3, atol=1e-12)
        np.testing.assert_allclose(al.P.sum(0), 1 / 5, atol=1e-12)
        for row in al.Q:
            for q in row:
                np.testing.assert_allclose(q.sum(1), 1 / 10, atol=1e-12)
                np.testing.assert_allclose(q.sum(0), 1 / 14, atol=1e-12)


def test_planted_layer_correspondence_is_recovered_and_beats_baselines(rng):
    base = _system(rng, 4, 200, 20)
    target = _deeper(rng, base)
    al = hot_align(base, target, train=np.arange(160), progress=False)
    expected = np.zeros((4, 8))
    for i in range(4):
        expected[i, 2 * i: 2 * i + 2] = 1 / 8
    np.testing.assert_allclose(al.P, expected, atol=1e-12)  # one layer spreads over two consecutive ones, in order
    df, _ = hot_scores(base, target, n_splits=3, progress=False)
    s = hot_study(df).set_index("method")["mean"]
    assert s["hot"] > s["perm-p"] + 0.5
    assert s["hot"] >= s["single-best"] - 1e-12  # HOT averages two noisy copies: at least as good as one
    assert s["hot"] > 0.9


def test_perm_p_is_a_derangement_of_rows(rng):
    al = hot_align(*[_system(rng, 6, 60, 5)] * 2, progress=False)
    W = variant_coupling(al, "perm-p", seed=3)
    assert not np.allclose(W, al.P)
    rows = [np.flatnonzero(np.isclose(al.P, W[i]).all(1)) for i in range(6)]
    assert sorted(r[0] for r in rows) == list(range(6)) and all(r[0] != i for i, r in enumerate(rows))
    for v in VARIANTS:
        np.testing.assert_allclose(variant_coupling(al, v).sum(1), 1 / 6, atol=1e-12)


def test_one_to_one_coupling_reproduces_matched_units_exactly(rng):
    """Scale: with P and Q permutations, X̂ equals the matched target units (standardised)."""
    x = _system(rng, 3, 40, 8)
    perms = [rng.permutation(8) for _ in range(3)]
    y = [a[:, p] * 3.0 + 1.0 for a, p in zip(x, perms)]  # units shuffled and rescaled
    al = hot_align(x, y, progress=False)
    pred = reconstruct(al, y)
    for a, xh in zip(al.standardize_source(x), pred):
        assert xh.shape == a.shape
        np.testing.assert_allclose(xh, a, atol=1e-10)


def test_rotation_is_orthogonal_and_recovers_a_planted_rotation(rng):
    base = _system(rng, 3, 300, 12)
    rots = [np.linalg.qr(rng.standard_normal((12, 12)))[0] for _ in base]
    target = [a @ r for a, r in zip(base, rots)]
    df, fits = hot_scores(base, target, n_splits=2, rotation=(False, True), progress=False)
    s = hot_study(df).set_index("method")["mean"]
    assert s["hot+R"] > 0.99
    assert s["hot+R"] > s["hot"] + 0.3
    al = fits[(True, 0)]
    for i in range(3):
        for j in range(3):
            r = al.R[i][j]
            np.testing.assert_allclose(r.T @ r, np.eye(12), atol=1e-10)
    np.testing.assert_allclose(al.P, np.eye(3) / 3, atol=1e-12)


def test_rotation_objective_does_not_increase(rng):
    x, y = _system(rng, 1, 60, 10), _system(rng, 1, 60, 10)
    with warnings.catch_warnings():  # a capped loop warns that it has not settled: expected here
        warnings.simplefilter("ignore", ConvergenceWarning)
        costs = [hot_align(x, y, rotation=True, max_rotation_iter=k, rotation_tol=0, progress=False).cost[0, 0]
                 for k in (1, 2, 4, 8)]
    assert all(b <= a + 1e-12 for a, b in zip(costs, costs[1:]))
    plain = hot_align(x, y, progress=False).cost[0, 0]
    assert costs[0] <= plain + 1e-12


def test_entropic_inner_is_close_to_exact_and_has_marginals(rng):
    x, y = _system(rng, 2, 100, 12), _system(rng, 3, 100, 12)
    ex = hot_align(x, y, progress=False)
    with warnings.catch_warnings():  # near-permutation plans: Sinkhorn may stop short of 1e-6; marginals checked below
        warnings.simplefilter("ignore", ConvergenceWarning)
        en = hot_align(x, y, inner="entropic", reg=1e-2, progress=False)
    np.testing.assert_allclose(en.cost, ex.cost, rtol=0.05)
    q = en.Q[1][2]
    np.testing.assert_allclose(q.sum(1), 1 / 12, atol=1e-4)
    np.testing.assert_allclose(q.sum(0), 1 / 12, atol=1e-4)


def test_scores_table_follows_results_contract(rng):
    from otlens.results import RESULT_COLUMNS

    df, _ = hot_scores(_system(rng, 2, 60, 5), _system(rng, 3, 60, 5), n_splits=2, model="a>b", progress=False)
    assert list(df.columns) == list(RESULT_COLUMNS)
    assert set(df.method) == set(VARIANTS)
    assert set(df.seed) == {0, 1}
    per = df[df.metric == "score"]
    assert len(per) == 2 * len(VARIANTS) * 2


# --- input checks -------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors(rng):
    x = _system(rng, 2, 30, 4)
    bad = [a.copy() for a in x]
    bad[1][3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        hot_align(bad, x, progress=False)
    with pytest.raises(ValueError, match="same stimuli"):
        hot_align(x, _system(rng, 2, 31, 4), progress=False)
    with pytest.raises(ValueError, match="same number of stimuli"):
        as_layers([np.zeros((30, 4)), np.zeros((29, 4))])
    with pytest.raises(ValueError, match="too few stimuli"):
        split_stimuli(4)
    with pytest.raises(ValueError, match="too few stimuli"):
        hot_scores(_system(rng, 1, 4, 3), _system(rng, 1, 4, 3), progress=False)
    with pytest.raises(ValueError, match="train_fraction"):
        split_stimuli(100, train_fraction=1.5)
    with pytest.raises(ValueError, match="`reg` must be > 0"):
        hot_align(x, x, inner="entropic", reg=-1, progress=False)
    with pytest.raises(ValueError, match="inner"):
        hot_align(x, x, inner="sinkhorn", progress=False)
    with pytest.raises(ValueError, match="variant"):
        variant_coupling(hot_align(x, x, progress=False), "best")
    with pytest.raises(ValueError, match="2-D"):
        as_layers([np.zeros(5)])


def test_procrustes_is_optimal_and_identity_where_free(rng):
    from otlens.hot import procrustes

    m = rng.standard_normal((6, 6))
    r = procrustes(m)
    np.testing.assert_allclose(r.T @ r, np.eye(6), atol=1e-12)
    for _ in range(20):  # no random rotation does better
        q = np.linalg.qr(rng.standard_normal((6, 6)))[0]
        assert np.trace(q.T @ m) <= np.trace(r.T @ m) + 1e-12
    # rank-deficient: x has 3 stimuli and 8 units, m = x^T x is symmetric PSD of rank 3: R = I
    x = rng.standard_normal((3, 8))
    np.testing.assert_allclose(procrustes(x.T @ x), np.eye(8), atol=1e-10)


def test_rotation_keeps_self_alignment_exact_with_more_units_than_stimuli(rng):
    x = _system(rng, 2, 40, 50)  # 32 training stimuli, 50 units
    train, test = split_stimuli(40, seed=0)
    al = hot_align(x, x, train=train, rotation=True, progress=False)
    pred = reconstruct(al, [a[test] for a in x])
    assert (reconstruction_scores(al.standardize_source([a[test] for a in x]), pred) > 0.99).all()


def test_pair_study_coupling_shape_and_verdict(rng):
    from otlens.hot import coupling_shape, describe_hot, pair_study

    base = _system(rng, 3, 150, 12)
    feats = {"a": base, "b": _deeper(rng, base)}
    study = pair_study(["a>b", "a>a"], feats, n_splits=2, rotation_pairs=["a>b"], progress=False)
    shape = coupling_shape(study.fits["a>b"][(False, 0)].P)
    assert shape == dict(order=1.0, monotone=1.0, contiguous=1.0, spread=2.0)
    text = describe_hot(study.scores, study.couplings)
    assert "HOT is higher for 1 of 1 model pairs" in text
    assert "in 1 of 1 cross-model pairs: a>b (over 2.0 target layers" in text
    assert "depth order in 100% of splits, targets consecutive in 100%" in text
    with pytest.raises(ValueError, match="source>target"):
        pair_study(["a-b"], feats, progress=False)
    with pytest.raises(ValueError, match="no features"):
        pair_study(["a>c"], feats, progress=False)


def test_pair_study_streams_keeping_unit_couplings_only_where_asked(rng):
    """Scores and coupling tables do not depend on what is kept; only kept fits can reconstruct."""
    from otlens.hot import pair_study

    base = _system(rng, 3, 150, 12)
    feats = {"a": base, "b": _deeper(rng, base)}
    kw = dict(n_splits=2, rotation_pairs=["a>b"], progress=False)
    light = pair_study(["a>b", "a>a"], feats, **kw)
    kept = pair_study(["a>b", "a>a"], feats, keep_units=["a>b"], **kw)
    full = pair_study(["a>b", "a>a"], feats, keep_units="all", **kw)
    pd.testing.assert_frame_equal(light.to_frame(), full.to_frame())
    pd.testing.assert_frame_equal(kept.to_frame(), full.to_frame())
    assert not any(al.units_kept for by_fit in light.fits.values() for al in by_fit.values())
    assert [k for k, al in kept.fits["a>b"].items() if al.units_kept] == [(False, 0)]
    assert light.fits["a>b"][(True, 1)].rotation and light.fits["a>b"][(True, 1)].Q == ()
    y = [t[:10] for t in feats["b"]]
    assert len(reconstruct(kept.fits["a>b"][(False, 0)], y)) == 3
    with pytest.raises(ValueError, match="without_units"):
        reconstruct(light.fits["a>b"][(False, 0)], y)
    with pytest.raises(ValueError, match="keep_units"):
        pair_study(["a>b"], feats, keep_units=["a>c"], progress=False)
    with pytest.raises(ValueError, match="keep_units"):
        pair_study(["a>b"], feats, keep_units="some", progress=False)


def test_pairs_and_twins_are_read_with_the_models_grammar(rng):
    from otlens.hot import pair_study, parse_pair

    assert parse_pair(" a > a~untrained ") == ("a", "a~untrained")
    assert parse_pair("tiny-gpt-L8@100>tiny-gpt@final") == ("tiny-gpt-L8@100", "tiny-gpt@final")
    with pytest.raises(ValueError, match="in the pair 'a>tiny-gpt@soon': the step"):
        parse_pair("a>tiny-gpt@soon")
    base = _system(rng, 2, 60, 6)
    scores, _ = pair_study(["a>a~untrained", "a>a"], {"a": base, "a~untrained": base}, n_splits=1, progress=False)
    assert scores.groupby("model").trained.all().to_dict() == {"a>a": True, "a>a~untrained": False}


def test_inner_problems_on_dask_workers_give_the_same_alignment(rng):
    """``client=``: the L × M inner problems as Dask tasks (an in-process cluster of 2 workers)."""
    from distributed import Client, LocalCluster

    src = _system(rng, n_layers=3, width=12)
    tgt = _deeper(rng, src) + [rng.standard_normal((120, 18))]  # unequal widths: the network simplex too
    train, _ = split_stimuli(120, seed=0)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster, set_as_default=False) as client:
        for rotation in (False, True):
            local = hot_align(src, tgt, train=train, rotation=rotation, progress=False)
            dist = hot_align(src, tgt, train=train, rotation=rotation, progress=False, client=client)
            np.testing.assert_allclose(dist.cost, local.cost, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(dist.P, local.P, atol=1e-12)
            for row_d, row_l in zip(dist.Q, local.Q):
                for qd, ql in zip(row_d, row_l):
                    np.testing.assert_allclose(qd, ql, atol=1e-12)
            assert dist.converged == local.converged and (dist.R is None) == (not rotation)
            if rotation:
                np.testing.assert_allclose(dist.R[1][2], local.R[1][2], atol=1e-8)
        # Back-to-back calls on the same data: content-hashed scattered keys of one call were
        # forgotten by the scheduler while the next reused them ("lost dependencies"; 35 of 40
        # calls failed so before scatter(hash=False)).
        for _ in range(6):
            again = hot_align(src, tgt, train=train, rotation=True, progress=False, client=client)
            np.testing.assert_allclose(again.P, local.P, atol=1e-12)
        with pytest.raises(ValueError, match="client"):
            hot_align(src, tgt, inner="entropic", client=client, progress=False)


# --- pooled states and their cache --------------------------------------------------------------

POOL_TEXTS = ["Transport maps move mass.", "A longer sentence, padded in its batch.", "Hi there",
              "Layers of a model.", "Optimal transport between layers."]


@pytest.fixture
def minilm_pool(monkeypatch, tmp_path):
    import os

    monkeypatch.setenv("OTLENS_CACHE", str(tmp_path / "cache"))
    if "HF_HUB_OFFLINE" not in os.environ:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from otlens.models import is_installed

    if not is_installed("minilm-l6"):
        pytest.skip("minilm-l6 not installed")
    return dict(max_length=16, batch_size=2, chunk=3, progress=False)


def test_pooled_states_cache_is_verified_and_rebuilt(minilm_pool, monkeypatch):
    import torch

    from otlens import hot as hot_mod
    from otlens.cache import CorruptCacheWarning
    from otlens.hot import pooled_file, pooled_states

    kw = minilm_pool
    first = pooled_states("minilm-l6", POOL_TEXTS, **kw)
    fresh = pooled_states("minilm-l6", POOL_TEXTS, cache=False, **kw)
    assert first.shape == (6, 5, 384) and torch.equal(first, fresh)
    path = pooled_file("minilm-l6", POOL_TEXTS, max_length=16, batch_size=2, chunk=3)
    assert path.exists() and path.with_name(path.name + ".sha256").exists()

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x04  # one bit inside the float data: still a readable safetensors file
    path.write_bytes(bytes(data))
    from safetensors.torch import load_file

    corrupt = load_file(str(path))["pooled"]
    assert not torch.equal(corrupt, fresh)  # the damage is real, and silent to the file format
    with pytest.warns(CorruptCacheWarning, match=rf"pooled/{path.name}.*recomputing"):
        again = pooled_states("minilm-l6", POOL_TEXTS, **kw)
    assert torch.equal(again, fresh)  # a fresh computation's values, not the corrupt ones

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded although the pooled states were cached")

    monkeypatch.setattr(hot_mod, "load_model", no_model)
    assert torch.equal(pooled_states("minilm-l6", POOL_TEXTS, **kw), fresh)  # the rebuilt entry is valid, reused


def test_pooled_key_holds_what_changes_the_numbers(minilm_pool):
    from otlens.hot import pooled_key

    base = pooled_key("minilm-l6", POOL_TEXTS)
    assert base == pooled_key("minilm-l6", list(POOL_TEXTS), batch_size=16, chunk=64, device="cpu")
    others = {pooled_key("minilm-l6", POOL_TEXTS, batch_size=8), pooled_key("minilm-l6", POOL_TEXTS, chunk=2),
              pooled_key("minilm-l6", POOL_TEXTS, device="meta"), pooled_key("minilm-l6", POOL_TEXTS, max_length=32),
              pooled_key("minilm-l6", POOL_TEXTS, trained=False), pooled_key("minilm-l6", POOL_TEXTS[:4])}
    assert base not in others and len(others) == 6


def test_pair_study_returns_a_frozen_result_with_the_chapters_table(rng):
    import dataclasses

    import pandas as pd

    from otlens import claims
    from otlens.hot import PairStudy, coupling_null, coupling_table, pair_study
    from otlens.results import RESULT_COLUMNS

    base = _system(rng, 3, 150, 12)
    feats = {"a": base, "b": _deeper(rng, base)}
    study = pair_study(["a>b", "a>a"], feats, n_splits=2, seed=3, progress=False)
    assert isinstance(study, PairStudy) and study.seed == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.scores = None
    frame = study.to_frame()
    assert list(frame.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert list(frame.experiment.unique()) == ["hot", "coupling", "coupling_null"]
    # the table the chapter assembled by hand before: scores, coupling shapes, the null seeded with the study's seed
    by_hand = pd.concat([study.scores, coupling_table(study.fits), coupling_null(study.fits, seed=3)],
                        ignore_index=True)
    pd.testing.assert_frame_equal(frame, by_hand)
    assert claims.coupling_null is coupling_null  # the old path still works
    assert study.couplings is study.couplings  # computed once
    summary = study.summary.set_index(["model", "method"])
    assert summary.loc[("a>a", "hot"), "n_splits"] == 2 and summary.loc[("a>a", "hot"), "mean"] > 0.99
    scores, fits = study  # the old tuple still unpacks
    assert scores is study.scores and fits is study.fits
    assert study.describe() == claims.describe_chapter("02_hierarchical_alignment", by_hand)
