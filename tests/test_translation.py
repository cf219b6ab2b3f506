"""The small encoder-decoder translation transformer: determinism, cross-attention shapes and sums, errors."""

from __future__ import annotations

import pytest
import torch

from otlens import translation as T

PAIRS = [
    ("In the beginning was the Word,", "Au commencement était la Parole,"),
    ("and the Word was with God.", "et la Parole était avec Dieu."),
    ("Jesus wept.", "Jésus pleura."),
    ("God is love.", "Dieu est amour."),
    ("The Word was God.", "La Parole était Dieu."),
    ("Love one another.", "Aimez-vous les uns les autres."),
]
TINY = dict(d_model=16, n_heads=2, n_layers=2, steps=6, batch_size=4, min_count=1, eval_every=3, progress=False)


@pytest.fixture(scope="module")
def run():
    torch.manual_seed(123)
    return T.train_translation(PAIRS, val_pairs=PAIRS[:2], seed=0, **TINY)


def test_tokenize_maps_tokens_to_words():
    tokens, index, words = T.tokenize("Au commencement, était la Parole:")
    assert words == ["Au", "commencement,", "était", "la", "Parole:"]
    assert tokens == ["au", "commencement", ",", "était", "la", "parole", ":"]
    assert index == [0, 1, 1, 2, 3, 4, 4]


def test_vocabulary_specials_and_unknown():
    v = T.Vocabulary.build([s for p in PAIRS for s in p], max_vocab=10, min_count=1)
    assert v.tokens[:4] == T.SPECIALS and len(v) == 10
    ids, index, words = v.encode("zzz the")
    assert ids[0] == T.UNK and len(ids) == len(index) == 2


def test_same_seed_same_weights_other_seed_differs(run):
    again = T.train_translation(PAIRS, val_pairs=PAIRS[:2], seed=0, **TINY)
    other = T.train_translation(PAIRS, val_pairs=PAIRS[:2], seed=1, **TINY)
    a, b, c = run.model.state_dict(), again.model.state_dict(), other.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert run.log.equals(again.log)
    assert set(run.log.metric) == {"train_loss", "val_loss"}
    assert len(run.log[run.log.metric == "train_loss"]) == TINY["steps"]


def test_cross_attention_shapes_and_sums(run):
    src, tgt = "In the beginning was the Word,", "Au commencement était la Parole, unknownword"
    ca = T.cross_attention(run, src, tgt)
    L, H, ns, nt = TINY["n_layers"], TINY["n_heads"], len(src.split()), len(tgt.split())
    assert ca.attention.shape == (L, H, ns, nt)
    assert (ca.attention >= 0).all()
    torch.testing.assert_close(ca.attention.sum(2), torch.ones(L, H, nt))
    assert ca.source.shape == (ns, TINY["d_model"]) and ca.target.shape == (L, nt, TINY["d_model"])
    assert ca.source_embeddings.shape == (ns, TINY["d_model"]) and ca.target_embeddings.shape == (nt, TINY["d_model"])
    assert ca.source_words == tuple(src.split()) and ca.target_words == tuple(tgt.split())
    # a pure function of the inputs, and the model is left in eval mode
    torch.testing.assert_close(T.cross_attention(run, src, tgt).attention, ca.attention)
    assert not run.model.training


def test_token_attention_rows_sum_to_one(run):
    ids, _, _ = run.vocab.encode("God is love.")
    record = []
    with torch.no_grad():
        run.model(torch.tensor([ids + [T.EOS]]), torch.tensor([[T.BOS] + ids]), record=record)
    assert len(record) == TINY["n_layers"]
    for h, w in record:
        assert w.shape == (1, TINY["n_heads"], len(ids) + 1, len(ids) + 1)
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))


def test_study_is_tidy(run):
    df = T.cross_attention_study(run, PAIRS[:2], progress=False)
    assert set(df.layer) == set(range(TINY["n_layers"]))
    assert {"attention-vs-ot-exact", "attention-vs-ot-embeddings"} <= set(df.method)
    agree = df[df.metric == "argmax_agreement"].value
    assert agree.between(0, 1).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=0), "steps"),
    (dict(lr=-1.0), "lr"),
    (dict(d_model=10, n_heads=3), "n_heads"),
    (dict(dropout=1.0), "dropout"),
    (dict(max_vocab=2), "max_vocab"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        T.train_translation(PAIRS, **{**TINY, **kwargs})


def test_bad_pairs_and_inputs(run):
    with pytest.raises(ValueError, match="pairs"):
        T.train_translation([], **TINY)
    with pytest.raises(ValueError, match="empty"):
        T.train_translation([("a b", "  ")], **TINY)
    with pytest.raises(ValueError, match="at least one word"):
        T.cross_attention(run, "", "Dieu")
    with pytest.raises(TypeError, match="TranslationRun"):
        T.cross_attention(object(), "God", "Dieu")
    with pytest.raises(ValueError, match="tokens"):
        T.cross_attention(run, " ".join(["word"] * 200), "Dieu")
