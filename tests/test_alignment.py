"""Word-alignment metrics on hand-made examples with known answers; pooling; agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from otlens.alignment import (
    agreement,
    alignment_counts,
    alignment_scores,
    argmax_accuracy,
    hard_links,
    pool_attention,
    pool_words,
    token_word_index,
    word_spans,
)

# 3 source words x 4 target words; gold: 0-0, 1-1, 1-2, 2-3
GOLD = {(0, 0), (1, 1), (1, 2), (2, 3)}
M = np.array([
    [0.9, 0.1, 0.0, 0.2],
    [0.05, 0.8, 0.1, 0.7],  # target 2's best source is 2 (wrong), target 3's best is 1 (wrong)
    [0.05, 0.1, 0.9, 0.1],
])


def test_hard_links_rules():
    t = hard_links(M, rule="target-argmax")
    assert {tuple(x) for x in np.argwhere(t)} == {(0, 0), (1, 1), (2, 2), (1, 3)}
    s = hard_links(M, rule="source-argmax")
    assert {tuple(x) for x in np.argwhere(s)} == {(0, 0), (1, 1), (2, 2)}
    assert (hard_links(M, rule="intersect") == (t & s)).all()
    assert (hard_links(M, rule="union") == (t | s)).all()


def test_scores_on_a_known_example():
    # target-argmax links {00, 11, 22, 13}: 2 hits of 4 predicted, 4 gold
    sc = alignment_scores(M, GOLD, rule="target-argmax")
    assert sc["precision"] == pytest.approx(0.5) and sc["recall"] == pytest.approx(0.5)
    assert sc["aer"] == pytest.approx(1 - 2 * 2 / 8)
    assert sc["accuracy"] == pytest.approx(0.5)  # targets 0, 1 right; 2, 3 wrong
    # intersect links {00, 11, 22}: 2 hits of 3
    sc = alignment_scores(M, GOLD)
    assert sc["precision"] == pytest.approx(2 / 3) and sc["recall"] == pytest.approx(0.5)
    assert sc["aer"] == pytest.approx(1 - 4 / 7)


def test_perfect_alignment_and_matrix_gold():
    G = np.zeros((3, 4), dtype=bool)
    for i, j in GOLD:
        G[i, j] = True
    sc = alignment_scores(G.astype(float) + 0.01, G, rule="target-argmax")
    assert sc == pytest.approx(dict(precision=1.0, recall=1.0, aer=0.0, accuracy=1.0))
    assert argmax_accuracy(G.astype(float), GOLD) == 1.0


def test_target_words_without_gold_are_not_counted():
    c = alignment_counts(M, {(0, 0)})
    assert c["n_target"] == 1 and c["n_correct"] == 1 and c["n_gold"] == 1


def test_agreement_identity_and_disagreement():
    ag = agreement(M, M * 3.0)  # scaling does not matter: columns are normalised
    assert ag["argmax_agreement"] == 1.0 and ag["kl"] == pytest.approx(0.0, abs=1e-12) and ag["tv"] == pytest.approx(0.0)
    flipped = agreement(M[::-1], M)
    assert flipped["argmax_agreement"] < 1.0 and flipped["kl"] > 0 and 0 < flipped["tv"] <= 1


def test_word_spans_and_pooling():
    text = "Greek: ab cd\nEnglish: x yz"
    spans = word_spans(text, ["x", "yz"], start=13)
    assert [text[s:e] for s, e in spans] == ["x", "yz"]
    assert spans == [(22, 23), (24, 26)]
    offsets = [(0, 6), (6, 7), (7, 9), (9, 12), (12, 13), (13, 21), (21, 23), (23, 26)]  # " x", " yz" carry a space
    assert token_word_index(offsets, spans).tolist() == [-1] * 6 + [0, 1]
    states = torch.arange(4 * 3, dtype=torch.float32).reshape(4, 3)  # 4 tokens
    pooled = pool_words(states[None], np.array([0, 0, -1, 1]), 2)[0]
    torch.testing.assert_close(pooled, torch.stack([states[:2].mean(0), states[3]]))


def test_pool_attention_columns_sum_to_one():
    T = 6
    attn = torch.softmax(torch.randn(2, T, T), -1)
    src = np.array([0, 0, 1, -1, -1, -1])
    tgt = np.array([-1, -1, -1, 0, 1, 1])
    A = pool_attention(attn, tgt, 2, src, 2)
    assert A.shape == (2, 2, 2)
    torch.testing.assert_close(A.sum(-2), torch.ones(2, 2))
    # target word 0 (token 3) on source word 0 (tokens 0, 1): summed attention, renormalised
    raw = attn[0, 3, :3]
    assert math.isclose(float(A[0, 0, 0]), float(raw[:2].sum() / raw.sum()), rel_tol=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: alignment_scores(np.zeros(3), GOLD), "2-D"),
        (lambda: alignment_scores(M, {(5, 0)}), "outside"),
        (lambda: alignment_scores(M, np.zeros((2, 2), bool)), "shape"),
        (lambda: alignment_scores(M, GOLD, rule="best"), "`rule` must be one of"),
        (lambda: alignment_scores(np.full((2, 2), np.nan), {(0, 0)}), "NaN"),
        (lambda: agreement(M, M[:, :2]), "same shape"),
        (lambda: agreement(-M, M), "non-negative"),
        (lambda: word_spans("a b", ["c"]), "not found"),
        (lambda: token_word_index([(0, 1)], [(0, 1), (2, 3)]), "no token"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------ baselines
def test_diagonal_alignment_follows_relative_position():
    from otlens.alignment import diagonal_alignment

    D = diagonal_alignment(4, 8)
    assert D.shape == (4, 8)
    assert list(D.argmax(0)) == [0, 0, 1, 1, 2, 2, 3, 3]  # each target word -> the source word at its position
    assert list(diagonal_alignment(5, 5).argmax(0)) == list(range(5))
    plan = np.eye(5)
    assert agreement(diagonal_alignment(5, 5), plan)["argmax_agreement"] == 1.0  # word order kept: diagonal agrees


# ----------------------------------------------------------------------------- reading the studies
import pandas as pd  # noqa: E402

from otlens import alignment  # noqa: E402
from otlens.data import AlignedVerse  # noqa: E402


def _scores() -> pd.DataFrame:
    """gold_alignment rows: exact OT best at block 1 (0.9), attention best at block 2; one distractor row."""
    acc = {"ot-exact": [0.5, 0.9, 0.7], "ot-entropic": [0.4, 0.8, 0.6], "cosine": [0.3, 0.6, 0.5],
           "attention-mean": [0.1, 0.2, 0.45], "attention-best-head": [0.2, 0.5, 0.55], "uniform": [0.1, 0.1, 0.1]}
    rows = [dict(experiment="gold_alignment", method=m, layer=k, metric="accuracy", value=v)
            for m, vs in acc.items() for k, v in enumerate(vs)]
    rows += [dict(experiment="gold_alignment", method=m, layer=k, metric="aer", value=1 - v)
             for m, vs in acc.items() for k, v in enumerate(vs)]
    rows.append(dict(experiment="gold_alignment_verse", method="ot-exact", layer=0, metric="accuracy", value=1.0))
    return pd.DataFrame(rows)


def test_gold_summary_reads_the_best_blocks():
    g = alignment.gold_summary(_scores())
    assert g.best_ot_layer == 1
    assert g.texts() == {"ot_best_acc": "90%", "ot_best_layer": "1", "ent_best_acc": "80%", "cos_best_acc": "60%",
                         "att_best_acc": "45%", "head_best_acc": "55%", "att_best_layer": "2", "ot_best_aer": "0.10"}
    assert g.accuracy.loc[0, "ot-exact"] == 0.5  # the per-verse row is not pooled in
    assert set(g.table.columns.get_level_values(0)) == {"ot-exact", "attention-mean"}
    with pytest.raises(ValueError, match="attention-best-head"):
        alignment.gold_summary(_scores().query("method != 'attention-best-head'"))
    with pytest.raises(ValueError, match="lacks the columns"):
        alignment.gold_summary(_scores().drop(columns="layer"))


def test_agreement_trend_per_experiment():
    rows = []
    for verse, noise in enumerate([0.0, 0.02]):
        rows += [dict(experiment="rising", method="attention-vs-ot-exact", layer=k, metric="argmax_agreement",
                      value=0.1 * k + noise) for k in range(4)]
        rows += [dict(experiment="falling", method="attention-vs-ot-exact", layer=k, metric="argmax_agreement",
                      value=0.5 - 0.1 * k) for k in range(4)]
        rows += [dict(experiment="rising", method="uniform-vs-ot-exact", layer=k, metric="argmax_agreement",
                      value=1.0 - 0.2 * k) for k in range(4)]  # another method: ignored
    t = alignment.agreement_trend(pd.DataFrame(rows))
    assert t.loc["rising", "trend"] == pytest.approx(1.0) and t.loc["falling", "trend"] == pytest.approx(-1.0)
    assert t.loc["rising", "max"] == pytest.approx(0.31)  # mean over the two verses at the last block
    flat = alignment.agreement_trend(pd.DataFrame(rows).assign(value=0.5))
    assert flat.trend.isna().all()
    with pytest.raises(ValueError, match="no rows of method"):
        alignment.agreement_trend(pd.DataFrame(rows), method="nope")


def _verse(ref, n_s, n_t, links):
    return AlignedVerse(ref, tuple(f"s{i}" for i in range(n_s)), tuple(f"t{j}" for j in range(n_t)), frozenset(links))


def test_densest_verse_and_verse_maps(monkeypatch):
    verses = [_verse("a", 4, 4, {(0, 0)}), _verse("b", 2, 2, {(0, 0), (1, 1)}), _verse("c", 1, 1, {(0, 0)})]
    assert alignment.densest_verse(verses).ref == "c"
    assert alignment.densest_verse(verses, first=2).ref == "b"  # only the first two are looked at
    with pytest.raises(ValueError, match="at least one verse"):
        alignment.densest_verse([])

    rng = np.random.default_rng(0)
    states = alignment.TranslationStates(
        source=torch.from_numpy(rng.normal(size=(4, 2, 5))), target=torch.from_numpy(rng.normal(size=(4, 2, 5))),
        attention=torch.full((3, 2, 2, 2), 0.5), source_words=("s0", "s1"), target_words=("t0", "t1"))
    monkeypatch.setattr(alignment, "translation_states", lambda lm, s, t: states)
    maps = alignment.verse_maps(None, verses[1], [0, 2], reg=0.1)
    assert list(maps) == ["attention, block 0", "attention, block 2", "OT plan, block 0", "OT plan, block 2"]
    for k in (0, 2):  # an exact plan between two words each: a permutation with mass 1/2
        P = maps[f"OT plan, block {k}"]
        assert P.shape == (2, 2) and np.allclose(P.sum(0), 0.5) and np.allclose(np.sort(P.ravel()), [0, 0, 0.5, 0.5])
    with pytest.raises(ValueError, match="`layers` must be <= 2"):
        alignment.verse_maps(None, verses[1], [3])


def test_alignment_study_returns_a_frozen_result(monkeypatch):
    import dataclasses
    from types import SimpleNamespace

    from otlens import claims
    from otlens.results import RESULT_COLUMNS

    rng = np.random.default_rng(0)

    def fake_states(lm, source_words, target_words, *, languages):  # 2 blocks, 2 heads
        n_s, n_t = len(source_words), len(target_words)
        return alignment.TranslationStates(
            source=torch.from_numpy(rng.normal(size=(3, n_s, 4))), target=torch.from_numpy(rng.normal(size=(3, n_t, 4))),
            attention=torch.softmax(torch.from_numpy(rng.normal(size=(2, 2, n_s, n_t))), -2),
            source_words=tuple(source_words), target_words=tuple(target_words))

    monkeypatch.setattr(alignment, "translation_states", fake_states)
    lm = SimpleNamespace(name="toy", trained=True, n_layers=2)
    verses = [_verse("a", 3, 3, {(0, 0), (1, 1), (2, 2)}), _verse("b", 2, 3, {(0, 1), (1, 2)})]
    study = alignment.alignment_study(lm, verses, progress=False)
    assert isinstance(study, alignment.AlignmentStudy)
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.scores = None
    frame = study.to_frame()
    assert set(RESULT_COLUMNS) <= set(frame.columns)
    assert list(frame.experiment.unique()) == ["gold_alignment", "gold_alignment_verse", "agreement_greek_english"]
    pd.testing.assert_frame_equal(frame, pd.concat([study.scores, study.agreements], ignore_index=True))
    scores, agreements = study  # the old tuple still unpacks
    assert scores is study.scores and agreements is study.agreements
    assert study.describe() == claims.describe_chapter("03_attention_as_ot", frame)
