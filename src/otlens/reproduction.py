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

import json
from pathlib import Path

import pandas as pd

from .claims import CLAIMS, ClaimInfo, judge_claim
from .verdicts import MISSING, VERDICTS, Verdict

__all__ = ["CLAIMS", "VERDICTS", "reproduction_table", "reproduction_verdicts", "describe_reproduction"]

TABLE_COLUMNS = ["study", "claim", "chapter", "section", "paper", "original", "ours", "effect_label", "effect",
                 "ci_low", "ci_high", "effect_text", "null", "n", "unit", "rule", "detail", "verdict", "claim_key"]


#: The benchmark table measured for the published book, relative to the project root.
RECORDED_BENCHMARKS = Path("benchmarks") / "recorded.csv"


#: Evidence precedence of the benchmark profiles (``benchmarks/run.py --profile``): per benchmark,
#: the rows of the higher-ranked profile stand; at equal rank this run's rows replace the recorded
#: ones. A quick run never displaces target- or full-profile evidence (HiRef at 2^20 tokens, say).
PROFILE_RANK = {"quick": 0, "target": 1, "full": 1}


def _rank(table: pd.DataFrame) -> pd.Series:
    """Each row's profile rank; a row without a profile ranks as a full run (older tables had none)."""
    profile = table["profile"] if "profile" in table else pd.Series("full", index=table.index)
    return profile.fillna("full").map(lambda p: PROFILE_RANK.get(str(p), 0))


def _labelled(table: pd.DataFrame, what: str, path: str) -> pd.DataFrame:
    """``table`` with a ``source`` naming the file and the profile each row comes from."""
    profile = table["profile"].fillna("") if "profile" in table else pd.Series("", index=table.index)
    return table.assign(source=[f"{what} ({path}, {p} profile)" if p else f"{what} ({path})" for p in profile])


def _benchmarks(results_dir: Path, benchmarks) -> pd.DataFrame | None:
    if benchmarks is None:
        return None
    if isinstance(benchmarks, str) and benchmarks == "auto":
        from .runner import project_root

        own = _read(results_dir, "benchmarks")
        path = project_root() / RECORDED_BENCHMARKS
        recorded = pd.read_csv(path) if path.is_file() else None
        if recorded is not None:
            recorded = _labelled(recorded, "recorded benchmarks", RECORDED_BENCHMARKS.as_posix())
        if own is not None:
            own = _labelled(own, "benchmarks", f"{results_dir.name}/benchmarks.csv")
        if own is None or recorded is None:
            return own if recorded is None else recorded
        if "benchmark" not in own or "benchmark" not in recorded:
            return own
        # per benchmark, the higher-ranked profile stands; at equal rank this run replaces the record.
        # A partial run (`make bench ARGS="--only sinkhorn"`) leaves the other benchmarks' records.
        own_rank = own.assign(_rank=_rank(own)).groupby("benchmark")["_rank"].max()
        rec_rank = recorded.assign(_rank=_rank(recorded)).groupby("benchmark")["_rank"].max()
        keep_own = [b for b in own_rank.index if own_rank[b] >= rec_rank.get(b, -1)]
        parts = [own[own.benchmark.isin(keep_own)], recorded[~recorded.benchmark.isin(keep_own)]]
        parts = [p for p in parts if len(p)]
        return pd.concat(parts, ignore_index=True) if parts else own
    path = Path(benchmarks)
    if not path.is_file():
        raise FileNotFoundError(f"`benchmarks` {path} does not exist")
    return _labelled(pd.read_csv(path), "benchmarks", str(path))


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
        one, merged per benchmark with the table recorded in the repository
        (:data:`RECORDED_BENCHMARKS`, under the project root) by :data:`PROFILE_RANK`: a quick
        run does not displace recorded target- or full-profile rows, a run of equal rank does,
        and the benchmarks a run did not include keep their records. Each row's ``source`` names
        its file and profile, and the claims cite it; ``None``: none.
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


#: Columns of :func:`compare_scales`.
SCALE_COLUMNS = ("study", "claim", "chapter", "quick", "quick_effect", "quick_n", "paper", "paper_effect",
                 "paper_n", "paper_source", "paper_setting", "changed", "claim_key")


def compare_scales(results_dir: str | Path | None = None, *, root: str | Path | None = None,
                   benchmarks: str | Path | None = "auto", claims: tuple[ClaimInfo, ...] = CLAIMS) -> pd.DataFrame:
    """Every claim's verdict at the quick scale and at the paper scale, side by side.

    The quick column reads this run's tables (``results_dir``); the paper column the recorded
    paper-scale runs (``paper/<stem>/results.csv.gz`` under ``root``, :mod:`otlens.editions`), with the
    same decision rules and the same benchmark evidence. A chapter with no recorded run gives
    ``"no paper-scale run recorded"``.

    Parameters
    ----------
    results_dir : path, optional
        The quick run's tables (default :func:`otlens.config.results_dir`).
    root : path, optional
        The project root holding ``paper/`` (found from the working directory by default).
    benchmarks : path, "auto" or None
        As for :func:`reproduction_table`.
    claims : tuple of ClaimInfo
        The claims to judge.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SCALE_COLUMNS`: each verdict with its effect and replicates ("5 seeds"),
        the recorded file the paper column comes from, ``paper_setting`` (the profile of that run
        and every value in which it left the paper profile, read from its ``run.json``: a run
        reduced to fit the hardware says so), and ``changed`` (True where both scales gave a verdict and the two
        differ).
    """
    from .config import results_dir as default_results
    from .editions import RECORDED_DIR, recorded_results
    from .runner import project_root

    results_dir = Path(results_dir) if results_dir is not None else default_results()
    root = Path(root) if root is not None else project_root()
    bench = _benchmarks(results_dir, benchmarks)
    quick = _tables(results_dir, claims)
    paper_files = {c.chapter: recorded_results(root, c.chapter) for c in claims}
    paper = {k: (pd.read_csv(p, low_memory=False) if p is not None else None) for k, p in paper_files.items()}
    settings = {k: _run_setting(root / RECORDED_DIR / k / "run.json", root) for k in paper_files}

    def n_text(v: Verdict) -> str:
        return f"{int(v.n)} {v.unit}" if v.n and v.unit else "—"

    rows = []
    for c in claims:
        q = judge_claim(c.key, quick[c.chapter], bench)
        if paper[c.chapter] is None:
            p_verdict, p_effect, p_n, source, setting = "no paper-scale run recorded", "—", "—", "—", "—"
        else:
            p = judge_claim(c.key, paper[c.chapter], bench)
            p_verdict, p_effect, p_n = p.verdict, p.effect_text, n_text(p)
            source, setting = paper_files[c.chapter].relative_to(root).as_posix(), settings[c.chapter]
        scored = {q.verdict, p_verdict}.isdisjoint({MISSING, "no paper-scale run recorded", "open question"})
        rows.append(dict(study=c.study, claim=c.claim, chapter=c.chapter, quick=q.verdict, quick_effect=q.effect_text,
                         quick_n=n_text(q), paper=p_verdict, paper_effect=p_effect, paper_n=p_n, paper_source=source,
                         paper_setting=setting, changed=bool(scored and q.verdict != p_verdict), claim_key=c.key))
    return pd.DataFrame(rows, columns=SCALE_COLUMNS)


def _run_setting(record: Path, root: Path) -> str:
    """``profile `paper``` and every value its run changed from the paper profile (``run.json``)."""
    from .editions import differences_text, paper_differences

    if not record.is_file():
        return "run record missing"
    run = json.loads(record.read_text())
    text = f"profile `{run.get('profile', '?')}`"
    try:
        diff = paper_differences(run, root)
    except (FileNotFoundError, KeyError):  # no notebook to compare with: the -p overrides alone
        given = run.get("parameters", {})
        diff = {k: (given.get(k, "?"), None) for k in run.get("overrides") or []}
    return text + (", reduced: " + differences_text(diff) if diff else "")


def scales_markdown(table: pd.DataFrame) -> str:
    """MyST markdown of :func:`compare_scales`: one row per claim, a changed verdict in bold.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`compare_scales`.

    Returns
    -------
    str
        A Markdown table (study, claim, the verdict at each scale, whether it changed) and a
        line counting the claims with a paper-scale run and the verdicts that changed.
    """
    missing = [c for c in SCALE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"`table` lacks the columns {missing}; make it with compare_scales")
    lines = ["| study | claim | quick scale | paper scale | changed with scale |", "|---|---|---|---|---|"]
    for r in table.itertuples():
        quick = f"{r.quick} ({r.quick_effect}; {r.quick_n})"
        paper = (r.paper if r.paper_source == "—"
                 else f"{r.paper} ({r.paper_effect}; {r.paper_n}; `{r.paper_source}`, {r.paper_setting})")
        changed = "**yes**" if r.changed else "no"
        lines.append(f"| {_cell(STUDY_LABELS.get(r.study, r.study))} | {_cell(r.claim)} | {_cell(quick)} | "
                     f"{_cell(paper)} | {changed} |")
    n_changed = int(table.changed.sum())
    recorded = int((table.paper_source != "—").sum())
    lines += ["", f"{recorded} of {len(table)} claims have a paper-scale run recorded; the verdict changed with "
                  f"scale for {n_changed} of them."]
    return "\n".join(lines)


__all__ += ["compare_scales", "scales_markdown", "SCALE_COLUMNS"]
