"""The small encoder-decoder translation transformer: determinism, cross-attention shapes and sums, errors."""

from __future__ import annotations

import numpy as np
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


def test_split_heldout_is_a_seeded_partition():
    pairs = [(str(i), f"s{i} x", f"t{i} y") for i in range(20)]
    train, held = T.split_heldout(pairs, 5, seed=3)
    assert len(held) == 5 and len(train) == 15 and sorted(train + held) == sorted(pairs)
    assert train == sorted(train, key=pairs.index) and held == sorted(held, key=pairs.index)  # input order kept
    assert T.split_heldout(pairs, 5, seed=3) == (train, held)
    assert T.split_heldout(pairs, 5, seed=4)[1] != held
    with pytest.raises(ValueError, match="`n_heldout` must be <= 19"):
        T.split_heldout(pairs, 20)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        T.split_heldout(pairs[:1], 1)


def test_example_pair_is_closest_to_the_length():
    pairs = [("a", "one two", "x"), ("b", " ".join(["w"] * 11), "x"), ("c", " ".join(["w"] * 13), "x")]
    assert T.example_pair(pairs, words=12)[0] == "b"  # a tie: the first one
    assert T.example_pair(pairs, words=2)[0] == "a"
    with pytest.raises(ValueError, match="`words` must be >= 1"):
        T.example_pair(pairs, words=0)


def test_run_texts_and_cross_attention_maps(run):
    t = run.texts(tail=3)
    assert t["mt_desc"].startswith("2+2 blocks, width 16, vocabulary ") and t["mt_steps"] == "6"
    val = run.log[run.log.metric == "val_loss"].value
    assert t["mt_val_first"] == f"{val.iloc[0]:.2f}" and t["mt_val_loss"] == f"{val.iloc[-1]:.2f}"
    train = run.log[run.log.metric == "train_loss"].value
    assert t["mt_train_loss"] == f"{train.tail(3).mean():.2f}"
    assert run.n_parameters == sum(p.numel() for p in run.model.parameters()) > 0
    maps, ca = T.cross_attention_maps(run, PAIRS[0], reg=0.1)
    assert list(maps) == ["cross-attention, block 0", "cross-attention, block 1", "OT plan, states of block 1",
                          "OT plan, embeddings"]
    n_s, n_t = len(ca.source_words), len(ca.target_words)
    for name, m in maps.items():
        m = np.asarray(m)
        assert m.shape == (n_s, n_t), name
        if name.startswith("cross"):
            assert np.allclose(m.sum(0), 1.0)  # each target word's attention over the source words
        else:
            assert np.isclose(m.sum(), 1.0)
