"""The reproduction table: every claim of the source studies against what the chapters measured.

Each claim (:data:`otlens.claims.CLAIMS`) names the study, the paper's statement (quoted from
the paper: the only text typed here), the original study's models and data next to ours, the
chapter section that decides it, and the decision rule (:mod:`otlens.claims`) that reads the
chapter's results table and returns a :class:`otlens.verdicts.Verdict`: the effect size with
its interval, the null computed in the same run, the number of replicates, the rule and the
verdict. The chapter glues the same function's output, so the page and the chapter cannot
show different numbers.

Verdicts (:data:`otlens.verdicts.VERDICTS`): *reproduced*, *reproduced with the published
method only*, *not reproduced*, *inconclusive (underpowered)*, *data not available here*, and
*open question* for a suggestion of a study that is reported, not scored.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .claims import CLAIMS, ClaimInfo, judge_claim
from .verdicts import MISSING, VERDICTS, Verdict

__all__ = ["CLAIMS", "VERDICTS", "reproduction_table", "reproduction_verdicts", "describe_reproduction"]

TABLE_COLUMNS = ["study", "claim", "chapter", "section", "paper", "original", "ours", "effect_label", "effect",
                 "ci_low", "ci_high", "effect_text", "null", "n", "unit", "rule", "detail", "verdict", "claim_key"]


#: The benchmark table measured for the published book, relative to the project root.
RECORDED_BENCHMARKS = Path("benchmarks") / "recorded.csv"


def _benchmarks(results_dir: Path, benchmarks) -> pd.DataFrame | None:
    if benchmarks is None:
        return None
    if isinstance(benchmarks, str) and benchmarks == "auto":
        from .runner import project_root

        own = _read(results_dir, "benchmarks")
        path = project_root() / RECORDED_BENCHMARKS
        recorded = pd.read_csv(path).assign(source="recorded benchmarks") if path.is_file() else None
        if own is None or recorded is None:
            return own if recorded is None else recorded
        # a partial run (`make bench ARGS="--only sinkhorn"`) replaces only the benchmarks it ran:
        # the recorded rows of the others (HiRef at 2^20, say) still stand
        own = own.assign(source="benchmarks")
        if "benchmark" not in own or "benchmark" not in recorded:
            return own
        rest = recorded[~recorded.benchmark.isin(set(own.benchmark.dropna()))]
        return pd.concat([own, rest], ignore_index=True) if len(rest) else own
    path = Path(benchmarks)
    if not path.is_file():
        raise FileNotFoundError(f"`benchmarks` {path} does not exist")
    return pd.read_csv(path)


def load_benchmarks(results_dir: str | Path | None = None, benchmarks: str | Path | None = "auto") -> pd.DataFrame | None:
    """The benchmark table the claims read (see :func:`reproduction_table`'s ``benchmarks``).

    Parameters
    ----------
    results_dir : str or pathlib.Path, optional
        The results folder (default :func:`otlens.config.results_dir`).
    benchmarks : str, pathlib.Path, "auto" or None
        A table's path, ``"auto"`` (the run's table completed by the recorded one) or None.

    Returns
    -------
    pandas.DataFrame or None
        The benchmark rows, or None when there are none.
    """
    if results_dir is None:
        from .config import results_dir as default

        results_dir = default()
    return _benchmarks(Path(results_dir), benchmarks)


def _read(results_dir: Path, stem: str) -> pd.DataFrame | None:
    path = results_dir / f"{stem}.csv"
    return pd.read_csv(path) if path.is_file() else None


def _tables(results_dir: Path, claims) -> dict[str, pd.DataFrame | None]:
    return {c.chapter: _read(results_dir, c.chapter) for c in claims}


def reproduction_verdicts(results_dir: str | Path | None = None, *, benchmarks: str | Path | None = "auto",
                          claims: tuple[ClaimInfo, ...] = CLAIMS) -> list[tuple[ClaimInfo, Verdict]]:
    """Every claim with its :class:`~otlens.verdicts.Verdict`, read from the chapters' results tables.

    Parameters
    ----------
    results_dir : str or pathlib.Path, optional
        Where the chapters wrote their tables (default :func:`otlens.config.results_dir`).
    benchmarks : str, pathlib.Path, "auto" or None
        The benchmark table some claims read (see :func:`reproduction_table`).
    claims : tuple of ClaimInfo
        The claims to decide (default: every claim of :data:`otlens.claims.CLAIMS`).

    Returns
    -------
    list of tuple of (ClaimInfo, Verdict)
        Each claim and its verdict, in the order of ``claims``.
    """
    if results_dir is None:
        from .config import results_dir as default

        results_dir = default()
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"`results_dir` {results_dir} does not exist; run the chapters first")
    bench = _benchmarks(results_dir, benchmarks)
    tables = _tables(results_dir, claims)
    return [(c, judge_claim(c.key, tables[c.chapter], bench)) for c in claims]


def reproduction_table(results_dir: str | Path | None = None, *, benchmarks: str | Path | None = "auto",
                       claims: tuple[ClaimInfo, ...] = CLAIMS) -> pd.DataFrame:
    """One row per claim: the paper's statement, both settings, the effect, its interval, the null and the verdict.

    Parameters
    ----------
    results_dir : path, optional
        Where the chapters wrote their tables (default :func:`otlens.config.results_dir`). A
        sweep's folder (``results/sweeps/<name>``) gives each claim's verdict per grid point and
        "holds in k of N runs" instead (:func:`otlens.sweep.sweep_reproduction_table`).
    benchmarks : path, "auto" or None
        The benchmark table some claims also read (HiRef at 2^20 points takes minutes, so no
        chapter runs it). ``"auto"``: ``results_dir/benchmarks.csv`` when ``make bench`` wrote
        one, completed by the table recorded in the repository (:data:`RECORDED_BENCHMARKS`, under
        the project root) for the benchmarks that run did not include, whose rows the claims then
        cite as "recorded benchmarks"; ``None``: none.
    claims : tuple of ClaimInfo
        The claims to decide (default: every claim of :data:`otlens.claims.CLAIMS`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TABLE_COLUMNS`; a claim whose chapter has no results table (or whose
        table lacks the rows it needs) gets the verdict ``"data not available here"`` and says why.
    """
    if results_dir is not None and (Path(results_dir) / "sweep.json").is_file():
        from .sweep import sweep_reproduction_table  # a sweep's folder: verdicts per grid point

        return sweep_reproduction_table(results_dir, benchmarks=benchmarks, claims=claims)
    rows = []
    for c, v in reproduction_verdicts(results_dir, benchmarks=benchmarks, claims=claims):
        r = v.to_row()
        rows.append(dict(study=c.study, claim=c.claim, chapter=c.chapter, section=c.section, paper=c.paper,
                         original=c.original, ours=c.ours, **{k: r[k] for k in r if k != "claim_key"},
                         claim_key=c.key))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def describe_reproduction(table: pd.DataFrame) -> str:
    """One markdown sentence counting the verdicts of :func:`reproduction_table`.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`reproduction_table`.

    Returns
    -------
    str
        The sentence.
    """
    counts = table.verdict.value_counts()
    parts = [f"{int(counts[v])} {v}" for v in VERDICTS if v in counts]
    return f"Of the {len(table)} claims and suggestions: " + ", ".join(parts) + "."


#: The book's label of each chapter (its ``(label)=`` line), for links from the table.
CHAPTER_LABELS = {
    "01_ot_across_depth": "ot-across-depth",
    "02_hierarchical_alignment": "hierarchical-alignment",
    "03_attention_as_ot": "attention-as-ot",
    "04_ot_at_scale": "ot-at-scale",
    "05_training_dynamics": "training-dynamics",
}
_MARK = {"reproduced": "**reproduced**", "reproduced with the published method only":
         "reproduced with the published method only", "not reproduced": "*not reproduced*",
         "inconclusive (underpowered)": "inconclusive (underpowered)",
         "data not available here": "data not available here", "open question": "open question (not scored)"}
#: Short names of the studies, for figures.
STUDY_LABELS = {"geomot:25": "OT across depth (2025)", "shah:25": "Shah & Khosla (2025)",
                "daneshmand:24": "Daneshmand (2024)", "halmos:25": "Halmos et al. (2025)",
                "halmos:24": "Halmos et al. (2024)", "conklin:26": "Conklin et al. (2026)"}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def reproduction_markdown(table: pd.DataFrame) -> str:
    """MyST markdown of :func:`reproduction_table`: a summary table, then every claim in full.

    The summary has one row per claim: study, claim, the effect with its interval and the
    replicates behind it, the null, the verdict and a link to the chapter section that decides
    it. The details give, per study, the paper's statement, the original setting next to ours,
    the rule and every unit's numbers.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`reproduction_table`.

    Returns
    -------
    str
        The markdown.
    """
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"`table` lacks the columns {missing}; make it with reproduction_table")

    def section(r) -> str:
        return f"{{ref}}`{r.section}`" if r.chapter in CHAPTER_LABELS else f"`{r.chapter}`"

    def n(r) -> str:
        return f"{int(r.n)} {r.unit}" if r.n and r.unit else "—"

    lines = ["| study | claim | effect [95% interval] | n | null | verdict | section |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {{cite:t}}`{r.study}` | {_cell(r.claim)} | {_cell(r.effect_text)} | {_cell(n(r))} | "
              f"{_cell(r.null)} | {_MARK.get(r.verdict, r.verdict)} | {section(r)} |" for r in table.itertuples()]
    for study, g in table.groupby("study", sort=False):
        lines += ["", f"**{{cite:t}}`{study}`**", ""]
        for r in g.itertuples():
            lines += [f"- **{_cell(r.claim)}** — {_MARK.get(r.verdict, r.verdict)}.",
                      f"  *Paper:* {_cell(r.paper)}. *Original setting:* {_cell(r.original)}. "
                      f"*Here:* {_cell(r.ours)}."]
            if r.effect_text != "—":
                lines.append(f"  *Effect:* {_cell(r.effect_label)}: {_cell(r.effect_text)} ({_cell(n(r))}); "
                             f"*null:* {_cell(r.null)}.")
            if r.detail:
                lines.append(f"  *Measured:* {_cell(r.detail)}")
            if r.rule:
                lines.append(f"  *Rule:* {_cell(r.rule)}")
    return "\n".join(lines)


__all__ += ["reproduction_markdown", "load_benchmarks", "CHAPTER_LABELS", "STUDY_LABELS", "TABLE_COLUMNS"]
