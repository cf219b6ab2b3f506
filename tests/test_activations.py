"""Tests for residual-stream extraction and its on-disk cache."""

import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: never touch the hub
_REAL_CACHE = os.environ.get("OTLENS_CACHE")  # slow tests reuse the real model cache

import pytest
import torch

from otlens import activations as act_mod
from otlens.activations import (
    Activations,
    CorruptCacheWarning,
    cache_file,
    cache_key,
    extract_activations,
    layer_names,
)
from otlens.models import is_installed, load_model, untrained

TEXTS = [
    "Transport maps move mass.",
    "A much longer sentence, which makes the batch padded for every shorter text in it.",
    "Hi there",
]


def _use_real_cache(monkeypatch):
    if _REAL_CACHE is None:
        monkeypatch.delenv("OTLENS_CACHE", raising=False)
    else:
        monkeypatch.setenv("OTLENS_CACHE", _REAL_CACHE)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("OTLENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def minilm():
    if not is_installed("minilm-l6"):
        pytest.skip("minilm-l6 not installed")
    return load_model("minilm-l6")


def _extract(model, texts=TEXTS, **kw):
    kw.setdefault("progress", False)
    return extract_activations(model, texts, **kw)


# ------------------------------------------------------------------------------- shapes and content


def test_shapes_and_layer_names(minilm):
    acts = _extract(minilm, cache=False)
    assert isinstance(acts, Activations)
    assert acts.layer_names == layer_names(6)
    assert acts.layer_names[0] == "hook_embed" and acts.layer_names[-1] == "blocks.5.hook_resid_post"
    assert (acts.n_layers, acts.d_model, acts.n_texts) == (6, 384, 3)
    assert acts.states.shape == (7, acts.n_tokens, 384) and acts.states.dtype == torch.float32
    assert acts.blocks().shape == (6, acts.n_tokens, 384)
    assert torch.equal(acts.blocks(), acts.states[1:])
    assert acts.text_index.dtype == torch.int64 and acts.token_ids.dtype == torch.int64
    assert torch.equal(acts.text_index, torch.sort(acts.text_index).values)  # text by text
    assert acts.model == "minilm-l6"
    pooled = acts.pooled()
    assert pooled.shape == (7, 3, 384)
    for i in range(3):
        torch.testing.assert_close(pooled[:, i], acts.text_states(i).mean(1))


def test_states_are_the_residual_stream(minilm):
    """Embedding output + every block output equal HF's hidden_states (an encoder: no final norm)."""
    acts = _extract(minilm, TEXTS[:1], cache=False, special_tokens=True)
    enc = minilm.tokenizer(TEXTS[0], return_tensors="pt")
    with torch.inference_mode():
        hidden = torch.stack(minilm.model(**enc, output_hidden_states=True).hidden_states)[:, 0]
    torch.testing.assert_close(acts.states, hidden, atol=1e-5, rtol=1e-5)
    assert acts.token_ids.tolist() == enc["input_ids"][0].tolist()


def test_padding_is_masked(minilm):
    batched = _extract(minilm, cache=False, batch_size=len(TEXTS))
    for i, text in enumerate(TEXTS):
        alone = _extract(minilm, [text], cache=False)
        torch.testing.assert_close(batched.text_states(i), alone.states, atol=1e-4, rtol=1e-4)
        assert torch.equal(batched.token_ids[batched.text_index == i], alone.token_ids)


def test_output_order_is_input_order(minilm):
    a = _extract(minilm, cache=False, batch_size=1)
    b = _extract(minilm, cache=False, batch_size=2)
    assert torch.equal(a.token_ids, b.token_ids) and torch.equal(a.text_index, b.text_index)
    torch.testing.assert_close(a.states, b.states, atol=1e-4, rtol=1e-4)
    first = minilm.tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"]
    assert a.token_ids[: len(first)].tolist() == first


def test_special_tokens_excluded_by_default(minilm):
    tok = minilm.tokenizer
    plain = _extract(minilm, cache=False)
    special = set(tok.all_special_ids)
    assert not special & set(plain.token_ids.tolist())
    full = _extract(minilm, cache=False, special_tokens=True)
    assert full.n_tokens == plain.n_tokens + 2 * len(TEXTS)  # [CLS] ... [SEP] per text
    for i in range(len(TEXTS)):
        ids = full.token_ids[full.text_index == i]
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id


def test_max_length_truncates(minilm):
    acts = _extract(minilm, cache=False, max_length=4)
    assert torch.bincount(acts.text_index).tolist() == [2, 2, 2]  # 4 minus [CLS] and [SEP]


def test_untrained_states_differ(minilm):
    trained = _extract(minilm, cache=False)
    u = _extract(untrained("minilm-l6", seed=0), cache=False)
    assert u.model == "minilm-l6 (untrained, seed 0)"
    assert torch.equal(u.token_ids, trained.token_ids)
    assert not torch.allclose(u.states[1:], trained.states[1:], atol=1e-2)


# ------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("texts", "kw", "match"),
    [
        ([], {}, "texts"),
        ("a single string", {}, "texts"),
        (["fine", 3], {}, "texts"),
        (["fine", "   "], {}, "texts"),
        (["fine"], {"max_length": 1}, "max_length"),
        (["fine"], {"batch_size": 0}, "batch_size"),
        (["fine"], {"special_tokens": "yes"}, "special_tokens"),
    ],
)
def test_validation(minilm, texts, kw, match):
    with pytest.raises(ValueError, match=match):
        extract_activations(minilm, texts, progress=False, **kw)


def test_trained_and_seed_only_with_spec(minilm):
    with pytest.raises(ValueError, match="trained"):
        extract_activations(minilm, TEXTS, trained=False)
    with pytest.raises(ValueError, match="model"):
        extract_activations(42, TEXTS)


def test_activations_checks_shapes():
    with pytest.raises(ValueError, match="states"):
        Activations(torch.zeros(3, 4, 2), ("a", "b"), torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long), "m", 1)
    with pytest.raises(ValueError, match="text_index"):
        Activations(torch.zeros(2, 4, 2), ("a", "b"), torch.zeros(3, dtype=torch.long), torch.zeros(4, dtype=torch.long), "m", 1)


# ------------------------------------------------------------------------------- cache


def test_cache_key_depends_on_every_input(minilm):
    base = cache_key(minilm, TEXTS)
    assert base == cache_key(minilm, list(TEXTS))
    assert base == cache_key("minilm-l6", TEXTS)  # spec string gives the same identity
    others = {
        cache_key(minilm, TEXTS[:2]),
        cache_key(minilm, TEXTS, max_length=64),
        cache_key(minilm, TEXTS, special_tokens=True),
        cache_key("minilm-l6", TEXTS, trained=False, seed=0),
        cache_key("minilm-l6", TEXTS, trained=False, seed=1),
        cache_key(minilm, TEXTS, batch_size=1),
        cache_key(minilm, TEXTS, device="meta"),  # another device kind
    }
    assert base not in others and len(others) == 7
    assert base == cache_key(minilm, TEXTS, batch_size=16, device="cpu")  # the defaults, spelled out


def test_batch_size_changes_the_numbers_and_the_entry(minilm):
    """Batches pad to their longest text, which moves the states a little: each batch size has its own entry."""
    one = _extract(minilm, batch_size=1)
    three = _extract(minilm, batch_size=3)
    assert cache_file(minilm, TEXTS, batch_size=1) != cache_file(minilm, TEXTS, batch_size=3)
    assert cache_file(minilm, TEXTS, batch_size=1).exists() and cache_file(minilm, TEXTS, batch_size=3).exists()
    assert not torch.equal(one.states, three.states)  # padding changes the numbers (about 1e-6)...
    torch.testing.assert_close(one.states, three.states, atol=1e-4, rtol=1e-4)  # ...a little
    assert torch.equal(_extract(minilm, batch_size=1).states, one.states)  # each entry returns its own numbers
    assert torch.equal(_extract(minilm, batch_size=3).states, three.states)


def test_cache_is_reused(minilm, monkeypatch):
    path = cache_file(minilm, TEXTS)
    assert not path.exists()
    first = _extract(minilm)
    assert path.exists()

    def no_forward(*args, **kwargs):
        raise AssertionError("the model ran although the activations were cached")

    monkeypatch.setattr(act_mod, "_compute", no_forward)
    monkeypatch.setattr(act_mod, "load_model", no_forward)  # a spec string is not even loaded
    for again in (_extract(minilm), _extract("minilm-l6")):
        assert torch.equal(again.states, first.states)
        assert torch.equal(again.token_ids, first.token_ids) and torch.equal(again.text_index, first.text_index)
        assert again.layer_names == first.layer_names and again.model == first.model and again.n_texts == 3


def test_cache_false_writes_nothing(minilm):
    _extract(minilm, cache=False)
    assert not cache_file(minilm, TEXTS).exists()


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupted_cache_is_recomputed(minilm, damage):
    first = _extract(minilm)
    path = cache_file(minilm, TEXTS)
    data = bytearray(path.read_bytes())
    if damage == "flip":  # silent bit rot inside the tensor data: only the checksum sees it
        data[-100] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data = bytearray(b"not a safetensors file")
    path.write_bytes(bytes(data))
    with pytest.warns(CorruptCacheWarning, match=rf"activations/{path.name}.*recomputing"):
        again = _extract(minilm)
    fresh = _extract(minilm, cache=False)
    assert torch.equal(again.states, fresh.states) and torch.equal(again.token_ids, fresh.token_ids)
    torch.testing.assert_close(again.states, first.states)
    assert path.exists() and path.read_bytes() != bytes(data)  # rewritten
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptCacheWarning)
        _extract(minilm)  # the fresh entry is valid


# ------------------------------------------------------------------------------- a decoder


@pytest.mark.slow
@pytest.mark.models
def test_gemma_residual_stream(monkeypatch):
    if not is_installed("gemma3-270m"):
        pytest.skip("gemma3-270m not installed")
    _use_real_cache(monkeypatch)  # the real model cache (converted once per machine)
    lm = load_model("gemma3-270m")
    texts = ["The capital of France is Paris.", "Hello", "Optimal transport moves mass at minimal cost."]
    batched = extract_activations(lm, texts, cache=False, progress=False)
    assert batched.states.shape[0] == 19 and batched.d_model == 640
    assert lm.tokenizer.bos_token_id not in batched.token_ids.tolist()
    for i, text in enumerate(texts):
        alone = extract_activations(lm, [text], cache=False, progress=False)
        scale = alone.states.abs().amax(dim=(1, 2), keepdim=True)
        assert ((batched.text_states(i) - alone.states).abs() / scale).max() < 1e-4
    enc = lm.tokenizer(texts[0], return_tensors="pt")
    with torch.inference_mode():
        hidden = torch.stack(lm.model(**enc, output_hidden_states=True).hidden_states)[:, 0, 1:]  # drop <bos>
    alone = extract_activations(lm, texts[:1], cache=False, progress=False)
    torch.testing.assert_close(alone.states[:-1], hidden[:-1], atol=1e-3, rtol=1e-4)
    assert not torch.allclose(alone.states[-1], hidden[-1], atol=1.0)  # HF's last entry is final-normed
    emb = lm.model.embed_tokens(enc["input_ids"])[0, 1:]  # includes Gemma's sqrt(d_model) scaling
    torch.testing.assert_close(alone.states[0], emb, atol=1e-5, rtol=1e-5)
