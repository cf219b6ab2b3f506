"""Decision rules on constructed data where the answer is known.

A true effect is reproduced, a null effect is not reproduced or inconclusive, a tie is a tie,
and an effect that vanishes on held-out data is not counted; the reproduction page shows the
numbers of the chapter's own verdict (one function, one output).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otlens import claims
from otlens.verdicts import (INCONCLUSIVE, MISSING, NOT_REPRODUCED, OPEN_QUESTION, PUBLISHED_ONLY, REPRODUCED,
                             Comparison, Verdict, all_units, bootstrap_ci, clopper_pearson, combine_methods, compare,
                             compare_paired, describe_verdicts, held_out_best, mean_ci, partial_spearman, worst)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --------------------------------------------------------------------------- machinery
def test_mean_ci_is_the_t_interval():
    m, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert m == 3.0
    half = 2.7764451051977987 * np.std([1, 2, 3, 4, 5], ddof=1) / math.sqrt(5)  # t_{0.975, 4}
    assert lo == pytest.approx(3 - half) and hi == pytest.approx(3 + half)
    assert all(math.isnan(x) for x in mean_ci([1.0])[1:])
    with pytest.raises(ValueError, match="finite"):
        mean_ci([1.0, np.nan])


def test_bootstrap_ci_covers_the_mean_and_shrinks_with_n(rng):
    small = rng.normal(1.0, 1.0, 20)
    large = rng.normal(1.0, 1.0, 2000)
    m, lo, hi = bootstrap_ci(small)
    assert lo < m < hi
    _, lo2, hi2 = bootstrap_ci(large, n_resamples=500)
    assert hi2 - lo2 < (hi - lo) / 3 and lo2 < 1.0 < hi2
    assert bootstrap_ci(small, seed=3) == bootstrap_ci(small, seed=3)  # deterministic by seed


def test_compare_outcomes(rng):
    true = rng.normal(0.05, 0.01, 5)
    assert compare_paired(true).outcome == "higher"
    assert compare_paired(-true).outcome == "lower"
    null = rng.normal(0.0, 0.05, 5)
    assert compare_paired(null).outcome in ("undecided", "tie")
    # a 0.0006 gap with sd 0.001 is a tie once 0.005 is the smallest difference that matters, never a win
    tie = np.array([0.0006, 0.0016, -0.0004, 0.0010, 0.0002])
    assert compare_paired(tie, margin=0.005).outcome == "tie"
    assert compare_paired(tie).outcome != "higher"
    # too few replicates: underpowered, whatever the interval says
    assert compare_paired(true[:3]).outcome == "underpowered"
    assert compare(0.5, 0.4, 0.6, 10, threshold=0.45).outcome == "undecided"
    assert compare(0.5, 0.46, 0.6, 10, threshold=0.45).outcome == "higher"


def test_all_units_needs_every_unit_and_reports_the_weakest():
    win = Comparison(0.05, 0.03, 0.07, 5, "higher", "a")
    weak = Comparison(0.02, 0.001, 0.04, 5, "higher", "b")
    tie = Comparison(0.0006, -0.002, 0.003, 5, "tie", "c")
    open_ = Comparison(0.01, -0.02, 0.04, 5, "undecided", "d")
    assert all_units([win, weak]) == (REPRODUCED, weak)
    assert all_units([win, tie])[0] == NOT_REPRODUCED  # "HOT higher in 3 of 5" with a tie is not a win
    assert all_units([win, open_]) == (INCONCLUSIVE, open_)
    assert all_units([win, tie, open_])[0] == NOT_REPRODUCED
    assert all_units([win], min_units=2)[0] == INCONCLUSIVE  # one model pair cannot show "across pairs"
    assert all_units([])[0] == MISSING
    assert worst(win, tie) is tie


def test_combine_methods():
    assert combine_methods(REPRODUCED, NOT_REPRODUCED) == REPRODUCED
    assert combine_methods(NOT_REPRODUCED, REPRODUCED) == PUBLISHED_ONLY
    assert combine_methods(INCONCLUSIVE, REPRODUCED) == PUBLISHED_ONLY
    assert combine_methods(INCONCLUSIVE, NOT_REPRODUCED) == INCONCLUSIVE


def test_held_out_selection_does_not_count_an_effect_that_vanishes(rng):
    """20 candidate layers of pure noise: the best one on the selection half looks like an effect, not on the rest."""
    n_units, n_layers = 40, 20
    rows = [dict(layer=k, verse=u, value=rng.normal(0.5, 0.1)) for k in range(n_layers) for u in range(n_units)]
    df = pd.DataFrame(rows)
    h = held_out_best(df, candidate="layer", unit="verse", value="value", seed=1)
    assert set(h["report_units"]).isdisjoint(h["selection_units"])
    sel = df[(df.layer == h["best"]) & df.verse.isin(h["selection_units"])].value.to_numpy()
    in_sample = compare_paired(sel - 0.5)
    held_out = compare_paired(h["report"].value.to_numpy() - 0.5)
    assert h["selection_score"] > 0.5
    assert held_out.outcome != "higher"  # not counted
    assert in_sample.effect > held_out.effect  # the optimism of choosing and reporting on the same units
    # a real effect in one layer survives the hold-out
    df.loc[df.layer == 7, "value"] += 0.3
    h = held_out_best(df, candidate="layer", unit="verse", value="value", seed=1)
    assert h["best"] == 7 and compare_paired(h["report"].value.to_numpy() - 0.5).outcome == "higher"


def test_partial_spearman_removes_a_shared_driver(rng):
    step = np.arange(12.0)
    x = step + rng.normal(0, 0.01, 12)  # both driven by training time only
    y = -step + rng.normal(0, 0.01, 12)
    assert pd.Series(x).corr(pd.Series(y), method="spearman") == pytest.approx(-1.0)
    # training time ranks both exactly: nothing is left once it is partialled out (undefined, not zero)
    assert np.isnan(partial_spearman(x, y, step))
    step = np.arange(40.0)
    x = step + rng.normal(0, 3, 40)  # both driven by training time, plus independent noise
    y = -step + rng.normal(0, 3, 40)
    assert pd.Series(x).corr(pd.Series(y), method="spearman") < -0.8
    assert abs(partial_spearman(x, y, step)) < 0.4
    z = rng.normal(size=200)
    a = rng.normal(size=200)
    assert partial_spearman(a + z, a - z, z) > 0.8  # an association beyond the driver survives


def test_clopper_pearson():
    lo, hi = clopper_pearson(5, 5)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 5))
    lo, hi = clopper_pearson(0, 5)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 5))


def test_verdict_vocabulary_and_text():
    with pytest.raises(ValueError, match="verdict"):
        Verdict("x", "partly reproduced", 0.0, (0.0, 0.0), "e", "n", 5, "seeds", "r")
    v = Verdict("x", REPRODUCED, 0.012, (0.004, 0.020), "gain", "zero", 5, "splits", "above 0")
    assert v.effect_text == "+0.012 [+0.004, +0.020]"
    text = describe_verdicts([v], {"x": "The claim"})
    assert "**The claim: reproduced.**" in text and "n = 5 splits" in text and "+0.012 [+0.004, +0.020]" in text


# --------------------------------------------------------------------------- chapter 1 rules
def _profiles(trained_curve, untrained_curve, *, seeds=range(5), methods=("published", "corrected"), rng=None,
              noise=0.02):
    rng = rng or np.random.default_rng(0)
    rows = []
    for method in methods:
        metric = claims._CH1_METRIC[method]
        for trained, curve in ((True, trained_curve), (False, untrained_curve)):
            for s in seeds:
                for k, v in enumerate(curve):
                    rows.append(dict(experiment="adjacent_ot", model="m", trained=trained, method=method, layer=k,
                                     seed=s, metric=metric, value=v * (1 + noise * rng.normal())))
    return pd.DataFrame(rows)


U = [3.0, 1.0, 1.1, 1.0, 3.2]
FLAT = [1.0, 1.0, 1.0, 1.0, 1.0]
ROUGH = [5.0, 8.0, 4.0, 8.5, 5.0]


def test_u_shape_rule():
    assert claims.u_shape(_profiles(U, ROUGH)).verdict == REPRODUCED
    assert claims.u_shape(_profiles(FLAT, ROUGH)).verdict in (NOT_REPRODUCED, INCONCLUSIVE)
    assert claims.u_shape(_profiles(FLAT, ROUGH, noise=0.001)).verdict == NOT_REPRODUCED  # a clear tie with flat
    df = _profiles(U, ROUGH)
    cor = (df.method == "corrected") & df.trained
    df.loc[cor, "value"] = 1.0 + 0.01 * np.random.default_rng(1).normal(size=cor.sum())
    assert claims.u_shape(df).verdict == PUBLISHED_ONLY
    assert claims.u_shape(_profiles(U, ROUGH, seeds=range(3))).verdict == INCONCLUSIVE  # 3 seeds: underpowered


def test_untrained_rule():
    assert claims.untrained(_profiles(U, ROUGH)).verdict == REPRODUCED
    # twins at the same level and as smooth: the claim fails
    assert claims.untrained(_profiles(U, U, noise=0.001)).verdict == NOT_REPRODUCED


def _dips(trained, untrained, *, sd=0.002, n=200, rng=None):
    rng = rng or np.random.default_rng(0)
    rows = []
    for metric, method in (("norm_entropy", "published"), ("prompt_entropy", "matrix-renyi"),
                           ("dataset_entropy", "matrix-renyi")):
        for t, mean, seeds in ((True, trained, [0]), (False, untrained, range(5))):
            for s in seeds:
                for r in range(-1, n):
                    rows.append(dict(experiment="entropy_dip", model="m", trained=t, method=method, layer=-1, seed=s,
                                     metric=metric, value=mean + (0 if r < 0 else sd * rng.normal()), resample=r))
    return pd.DataFrame(rows)


def test_bottleneck_rule():
    assert claims.bottleneck(_dips(0.05, -0.02)).verdict == REPRODUCED
    assert claims.bottleneck(_dips(0.0, -0.02)).verdict == NOT_REPRODUCED  # a dip of 0 ± 0.002 is no dip (tie)
    assert claims.bottleneck(_dips(0.05, 0.05)).verdict == NOT_REPRODUCED  # twins dip as well
    assert claims.bottleneck(_dips(0.004, -0.02, sd=0.01)).verdict == INCONCLUSIVE


def test_mid_depth_dip():
    from otlens.depth import mid_depth_dip

    assert mid_depth_dip([1.0, 0.8, 0.5, 0.8, 1.0]) == pytest.approx(0.3)
    curve = [1.0, 0.2] + [0.6] * 16 + [1.0]  # minimum at layer 1 of 18: not mid-depth
    assert mid_depth_dip(curve) < 0
    assert mid_depth_dip([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.9]) < 0  # layer 5 of 6
    with pytest.raises(ValueError):
        mid_depth_dip([1.0, 2.0])


def test_entropy_dip_bootstrap_matches_the_entropies_on_all_texts():
    import torch

    from otlens.activations import Activations
    from otlens.depth import entropy_dip_bootstrap, entropy_profile, mid_depth_dip

    g = torch.Generator().manual_seed(0)
    text_index = torch.repeat_interleave(torch.arange(12), 6)
    states = torch.randn(5, 72, 8, generator=g) * torch.linspace(1, 2, 5)[:, None, None]
    acts = Activations(states=states, layer_names=("hook_embed",) + tuple(f"blocks.{k}.hook_resid_post" for k in range(4)),
                       text_index=text_index, token_ids=torch.zeros(72, dtype=torch.long), model="toy", n_texts=12)
    dips = entropy_dip_bootstrap(acts, n_resamples=20)
    ent = entropy_profile(acts)
    for metric in ("norm_entropy", "prompt_entropy", "dataset_entropy"):
        curve = ent[ent.metric == metric].sort_values("layer").value.to_numpy()
        full = dips[(dips.metric == metric) & (dips["resample"] == -1)].value.item()
        assert full == pytest.approx(mid_depth_dip(curve), abs=1e-6)
    assert (dips["resample"] >= 0).sum() == 3 * 20


# --------------------------------------------------------------------------- chapter 2 rules
def _hot(gaps: dict, *, baseline="perm-p", sd=0.001, splits=5, rng=None):
    rng = rng or np.random.default_rng(0)
    rows = []
    for pair, gap in gaps.items():
        for s in range(splits):
            base = 0.5 + 0.02 * rng.normal()
            rows.append(dict(experiment="hot", model=pair, trained=True, method=baseline, layer=-1, seed=s,
                             metric="hot_score", value=base))
            rows.append(dict(experiment="hot", model=pair, trained=True, method="hot", layer=-1, seed=s,
                             metric="hot_score", value=base + gap + sd * rng.normal()))
    return pd.DataFrame(rows)


def test_hot_rules_true_null_tie_and_one_pair():
    rule = claims.CHAPTER_RULES["02_hierarchical_alignment"]["hot_vs_perm"]
    both = {"a>b": 0.05, "b>a": 0.04, "a>a": 0.0}
    v = rule(_hot(both))
    assert v.verdict == REPRODUCED and v.n == 5 and v.unit == "splits"
    assert v.effect == pytest.approx(min(c.effect for c in v.comparisons), abs=0.01)  # the weakest pair decides
    assert rule(_hot({"a>b": 0.0, "b>a": 0.0}, sd=0.02)).verdict in (NOT_REPRODUCED, INCONCLUSIVE)
    tie = rule(_hot({"a>b": 0.05, "b>a": 0.0006}))
    assert tie.verdict == NOT_REPRODUCED and "tie" in tie.detail
    assert rule(_hot({"a>b": 0.05, "a>a": 0.0})).verdict == INCONCLUSIVE  # one cross-model pair
    assert rule(_hot(both, splits=3)).verdict == INCONCLUSIVE  # three splits


def test_depth_mismatch_against_shuffled_couplings():
    rows = []
    for pair, order, spread in (("a>b", 0.95, 2.0), ("b>a", 0.9, 1.0)):  # spread is forced by depth: not decided
        for s in range(5):
            for metric, value in (("order", order + 0.01 * s), ("spread", spread), ("monotone", 1.0),
                                  ("contiguous", 1.0)):
                rows.append(dict(experiment="coupling", model=pair, trained=True, method="hot", layer=-1, seed=s,
                                 metric=metric, value=value))
        rows.append(dict(experiment="coupling_null", model=pair, trained=True, method="hot", layer=-1, seed=0,
                         metric="order_q95", value=0.7))
    df = pd.DataFrame(rows)
    assert claims.depth_mismatch(df).verdict == REPRODUCED
    df.loc[(df.metric == "order_q95"), "value"] = 0.99  # no better than shuffled couplings
    assert claims.depth_mismatch(df).verdict == NOT_REPRODUCED


# --------------------------------------------------------------------------- chapter 3 rules
def _agreements(slope, *, n_verses=12, layers=range(6), diag=0.3, rng=None):
    rng = rng or np.random.default_rng(0)
    rows = []
    for v in range(n_verses):
        for k in layers:
            a = 0.3 + slope * k + 0.02 * rng.normal()
            for method, value in (("attention-vs-ot-exact", a), ("diagonal-vs-ot-exact", diag),
                                  ("uniform-vs-ot-exact", 0.1)):
                rows.append(dict(experiment="agreement_x_y", model="m", trained=True, method=method, layer=k, seed=0,
                                 verse=v, metric="argmax_agreement", value=value))
    return pd.DataFrame(rows)


def test_attention_depth_rule_needs_a_trend_and_to_beat_the_diagonal():
    assert claims.attention_depth(_agreements(0.05)).verdict == REPRODUCED
    # agreement rises but stays below the position-aware baseline: not an alignment beyond word order
    assert claims.attention_depth(_agreements(0.05, diag=0.9)).verdict == NOT_REPRODUCED
    assert claims.attention_depth(_agreements(0.0)).verdict in (NOT_REPRODUCED, INCONCLUSIVE)


def _verse_counts(acc_by_layer, *, n_verses=16, n_target=20, rng=None):
    rng = rng or np.random.default_rng(0)
    rows = []
    for v in range(n_verses):
        for k, acc in enumerate(acc_by_layer(v)):
            for method, a in (("ot-exact", acc), ("diagonal", 0.3), ("uniform", 0.1)):
                c = rng.binomial(n_target, a)
                for metric, value in (("n_correct", c), ("n_target", n_target)):
                    rows.append(dict(experiment="gold_alignment_verse", model="m", trained=True, method=method, layer=k,
                                     seed=0, verse=v, metric=metric, value=value))
    return pd.DataFrame(rows)


def test_ot_accuracy_rule_selects_on_other_verses():
    good = claims.ot_accuracy(_verse_counts(lambda v: [0.5, 0.97, 0.6]))
    assert good.verdict == REPRODUCED and good.n == 8
    assert claims.ot_accuracy(_verse_counts(lambda v: [0.3, 0.4, 0.35])).verdict == NOT_REPRODUCED
    # layer 2 is perfect on the selection half of the verses only: chosen there, it is not reported there
    rng = np.random.default_rng(0)
    order = rng.permutation(16)  # the selection half for seed 0 (held_out_best draws the same permutation)
    sel = set(order[:8].tolist())
    lucky = claims.ot_accuracy(_verse_counts(lambda v: [0.3, 0.4, 1.0 if v in sel else 0.3]))
    assert lucky.verdict == NOT_REPRODUCED and "block 2" in lucky.detail


def test_sorting_and_plan_error_rules():
    rows = []
    for n in (2, 5, 10):
        for s in range(5):
            for layer, err in ((1, 0.5), (64, 1e-4)):
                rows.append(dict(experiment="sorting", model=None, trained=None, method="transformer", layer=layer,
                                 seed=s, metric="plan_error", value=err, n=n))
                rows.append(dict(experiment="sorting", model=None, trained=None, method="transformer", layer=layer,
                                 seed=s, metric="sorted", value=float(layer == 64 and (n < 10 or s > 0)), n=n))
    df = pd.DataFrame(rows)
    assert claims.plan_error(df).verdict == REPRODUCED
    v = claims.sorting(df)
    assert v.verdict == NOT_REPRODUCED and v.effect == pytest.approx(0.8)  # one list of length 10 not sorted
    df.loc[(df.metric == "plan_error") & (df.layer == 64) & (df.n == 10), "value"] = 0.05
    assert claims.plan_error(df).verdict == NOT_REPRODUCED


# --------------------------------------------------------------------------- chapter 5 rules
def _training(ratio_fn, *, steps=(0, 10, 30, 60, 100, 200, 300, 450, 600), layers=(0, 1)):
    rows = []
    for i, step in enumerate(steps):
        loss = 4.0 - 2.5 * math.log1p(step) / math.log1p(600)
        rows.append(dict(experiment="training_loss", model="gpt", trained=True, method="adamw", layer=-1, seed=0,
                         metric="val_loss", value=loss, step=step))
        for layer in layers:
            rows.append(dict(experiment="information_plane", model="gpt", trained=True, method="kmeans", layer=layer,
                             seed=0, metric="compression_ratio", value=ratio_fn(i, step, loss), step=step))
    return pd.DataFrame(rows)


def test_compression_rule_controls_for_training_time():
    # compression rises with training time only: the raw correlation with loss is -1, the controlled one is not
    confounded = claims.compression(_training(lambda i, step, loss: 0.1 * i))
    assert confounded.verdict != REPRODUCED
    assert "-1.00" in confounded.detail
    # a loss that falls at every checkpoint is ranked exactly by time: undefined, so inconclusive (never a tie)
    assert confounded.verdict == INCONCLUSIVE and "undefined" in confounded.detail
    assert all(c.outcome == "underpowered" for c in confounded.comparisons)


def test_compression_rule_decides_when_loss_is_not_ranked_by_time():
    rng = np.random.default_rng(3)
    steps = tuple(range(0, 1200, 50))  # 24 checkpoints; the loss wanders around its trend
    bumps = rng.normal(0, 0.4, len(steps))

    def df(ratio_fn):
        d = _training(ratio_fn, steps=steps)
        val = d.metric == "val_loss"
        d.loc[val, "value"] = d.loc[val, "value"].to_numpy() + bumps
        return d

    # compression tracks the loss's wanderings (more compression, lower loss) beyond training time
    v = claims.compression(df(lambda i, step, loss: -bumps[i]))
    assert v.verdict == REPRODUCED and v.effect > 0.5
    # compression tracks training time only: no association once time is controlled
    noise = rng.normal(0, 300, len(steps))
    v = claims.compression(df(lambda i, step, loss: step + noise[i]))
    assert v.verdict != REPRODUCED and abs(v.effect) < 0.5
    assert claims.compression(_training(lambda i, s, l: 1.0).iloc[:0]).verdict == MISSING


# --------------------------------------------------------------------------- open questions, registry, pages
def test_learned_u_is_an_open_question_not_a_score():
    rows = []
    for step, curve in ((0, [1.0, 1.0, 1.0, 1.0]), (600, [1.0, 1.1, 1.2, 1.3])):
        for k, v in enumerate(curve):
            rows.append(dict(experiment="adjacent_ot", model="gpt", trained=True, method="corrected", layer=k, seed=0,
                             metric="ot_divergence", value=v, step=step, val_loss=3.0 - step / 600))
    v = claims.judge_claim("learned_u", pd.DataFrame(rows))
    assert v.verdict == OPEN_QUESTION and "vacuous" in v.detail


def test_every_chapter_rule_is_registered_once():
    keys = [c.key for c in claims.CLAIMS]
    assert len(keys) == len(set(keys))
    assert set(keys) == {k for rules in claims.CHAPTER_RULES.values() for k in rules}
    for c in claims.CLAIMS:
        assert c.key in claims.CHAPTER_RULES[c.chapter] and c.original and c.ours and c.section
    assert "frlc_space" in keys


def test_reproduction_page_shows_the_chapters_numbers(tmp_path):
    """Every number on the page for a claim equals the chapter's: both come from claims.judge."""
    from otlens.reproduction import reproduction_markdown, reproduction_table

    chapters = {"01_ot_across_depth": pd.concat([_profiles(U, ROUGH), _dips(0.05, -0.02)], ignore_index=True),
                "02_hierarchical_alignment": _hot({"a>b": 0.05, "b>a": 0.0006, "a>a": 0.0}),
                "03_attention_as_ot": pd.concat([_agreements(0.05), _verse_counts(lambda v: [0.5, 0.9, 0.6])],
                                                ignore_index=True)}
    for stem, df in chapters.items():
        df.to_csv(tmp_path / f"{stem}.csv", index=False)
    table = reproduction_table(tmp_path, benchmarks=None).set_index("claim_key")
    text = reproduction_markdown(table.reset_index())
    for stem, df in chapters.items():
        chapter_text = claims.describe_chapter(stem, df)
        for v in claims.judge(stem, df):
            row = table.loc[v.claim]
            assert row.verdict == v.verdict
            assert row.effect_text == v.effect_text and row.null == v.null and row.n == v.n
            if np.isfinite(v.effect):
                assert row.effect == pytest.approx(v.effect, rel=1e-12)
                assert v.effect_text in chapter_text and v.effect_text in text
            assert f"{v.verdict}." in chapter_text


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 24), d=st.integers(1, 12), seed=st.integers(0, 2**16), dup=st.booleans())
def test_a_resample_s_dataset_entropy_is_that_of_the_drawn_rows(n, d, seed, dup):
    # the bootstrap works on the distinct drawn texts weighted by their counts: the same number
    # as dataset_entropy of the n drawn rows (duplicates included), without the n x n Gram
    import torch

    from otlens.depth import _centred_gram_entropy
    from otlens.entropy import dataset_entropy

    rng = np.random.default_rng(seed)
    pooled = torch.as_tensor(rng.normal(size=(3, n, d)) + rng.normal(size=(3, 1, d)))
    if dup:  # a row repeated in the data itself, and a row at the mean after centring
        pooled[:, -1] = pooled[:, 0]
    idx = rng.integers(0, n, n)
    counts = np.bincount(idx, minlength=n)
    uniq = np.flatnonzero(counts)
    gram = pooled @ pooled.mT
    got = _centred_gram_entropy(gram[:, uniq][:, :, uniq], d, 1.0, counts=torch.as_tensor(counts[uniq]))
    want = dataset_entropy(pooled[:, idx])
    assert torch.allclose(got, want.to(got.dtype), atol=1e-9, rtol=0), (got, want)
