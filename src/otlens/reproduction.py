"""The reproduction table: every claim of the source studies against what the chapters measured.

Each :class:`Claim` names the study, the paper's number or statement (quoted from the paper:
the only text typed here), the chapter whose results table decides it, and an ``assess``
function that reads that table and returns our number with the paper's method, our number with
the corrected method (where the book has one) and a verdict. Nothing measured is typed in: the
table is recomputed from ``results/<chapter>.csv`` every time the book is built, with the same
criteria the chapters use (:func:`otlens.depth.claim_table`, :func:`otlens.hot.hot_study`,
:func:`otlens.alignment.attention_claims`).

Verdicts: ``reproduced`` (holds everywhere it was tested, with the corrected method where there
is one), ``partly reproduced`` (holds for some models or settings, or only with the paper's
method), ``not reproduced``, and ``data not available here`` (the chapter has not been run, or
its data cannot be installed offline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

__all__ = ["Claim", "CLAIMS", "VERDICTS", "reproduction_table", "describe_reproduction"]

VERDICTS = ("reproduced", "partly reproduced", "not reproduced", "data not available here")
MISSING = "data not available here"
TABLE_COLUMNS = ["study", "claim", "chapter", "paper", "ours_same_method", "ours_corrected", "verdict"]


@dataclass(frozen=True)
class Claim:
    """One claim of a source study and how the book decides it."""

    study: str  #: bibliography key of the study
    claim: str  #: the claim, in a few words
    chapter: str  #: the results table (chapter stem) that decides it
    paper: str  #: the paper's number or statement
    assess: Callable[..., dict[str, str]]  #: results table -> ours_same_method, ours_corrected, verdict
    needs_benchmarks: bool = False  #: ``assess`` also takes ``results/benchmarks.csv`` (or None)


def _verdict(all_ok: bool, some_ok: bool) -> str:
    return "reproduced" if all_ok else "partly reproduced" if some_ok else "not reproduced"


def _count(flags: pd.Series) -> str:
    return f"{int(flags.sum())} of {len(flags)} models"


# --------------------------------------------------------------------------- chapter 1
def _depth_claims(df: pd.DataFrame) -> pd.DataFrame:
    from .depth import claim_table

    return claim_table(df[df.experiment == "adjacent_ot"])


def _u_shape(df: pd.DataFrame) -> dict[str, str]:
    c = _depth_claims(df).set_index(["method", "model"])
    pub, cor = c.loc["published"], c.loc["corrected"]

    def text(t):
        return f"U-shaped for every seed in {_count(t.u_shape)} (edge ratio {t.edge_ratio.min():.2f}–{t.edge_ratio.max():.2f})"

    return dict(ours_same_method=text(pub), ours_corrected=text(cor),
                verdict=_verdict(bool(cor.u_shape.all()), bool(pub.u_shape.any() or cor.u_shape.any())))


def _untrained(df: pd.DataFrame) -> dict[str, str]:
    c = _depth_claims(df).set_index(["method", "model"])
    pub, cor = c.loc["published"], c.loc["corrected"]

    def ok(t):
        return (t.untrained_level > 1) & (t.untrained_roughness > t.trained_roughness)

    def text(t):
        return (f"untrained above trained and rougher in {_count(ok(t))} (level ratio "
                f"{t.untrained_level.min():.2f}–{t.untrained_level.max():.2f})")

    return dict(ours_same_method=text(pub), ours_corrected=text(cor),
                verdict=_verdict(bool(ok(cor).all()), bool(ok(pub).any() or ok(cor).any())))


def _bottleneck_flags(df: pd.DataFrame, method: str, metric: str) -> pd.DataFrame:
    from .depth import has_interior_minimum

    e = df[(df.experiment == "entropy") & (df.method == method) & (df.metric == metric)]
    rows = []
    for (model, trained), g in e.groupby(["model", "trained"], sort=False):
        rows.append(dict(model=model, trained=bool(trained),
                         dip=has_interior_minimum(g.groupby("layer").value.mean().sort_index().to_numpy())))
    flags = pd.DataFrame(rows).pivot(index="model", columns="trained", values="dip")
    return flags.reindex(columns=[True, False]).fillna(False).astype(bool)


def _bottleneck(df: pd.DataFrame) -> dict[str, str]:
    same = _bottleneck_flags(df, "published", "norm_entropy")
    cor = {m: _bottleneck_flags(df, "matrix-renyi", m) for m in ("prompt_entropy", "dataset_entropy")}

    def ok(f):
        return f[True] & ~f[False]

    def text(f):
        return f"mid-depth minimum in {_count(f[True])} trained, {_count(f[False])} untrained"

    any_cor = pd.concat([ok(f) for f in cor.values()], axis=1)
    return dict(
        ours_same_method="norm entropy: " + text(same),
        ours_corrected="; ".join(f"matrix Rényi ({m.split('_')[0]}): " + text(f) for m, f in cor.items()),
        verdict=_verdict(bool(any_cor.all(axis=1).all()), bool(ok(same).any() or any_cor.any().any())),
    )


# --------------------------------------------------------------------------- chapter 2
def _hot_means(df: pd.DataFrame) -> pd.DataFrame:
    from .hot import hot_study

    return hot_study(df[df.experiment == "hot"]).pivot(index="model", columns="method", values="mean")


def _cross(index) -> list[str]:
    return [p for p in index if p.split(">")[0] != p.split(">")[1]]


def _hot_vs(baseline: str) -> Callable[[pd.DataFrame], dict[str, str]]:
    def assess(df: pd.DataFrame) -> dict[str, str]:
        m = _hot_means(df)
        pairs = _cross(m.index)
        wins = [p for p in pairs if m.loc[p, "hot"] > m.loc[p, baseline]]
        same = (f"HOT higher in {len(wins)} of {len(pairs)} model pairs (mean held-out score "
                f"{m.loc[pairs, 'hot'].mean():.3f} vs {m.loc[pairs, baseline].mean():.3f})")
        cor = "—"
        if f"{baseline}+R" in m.columns and "hot+R" in m.columns:
            rp = [p for p in pairs if pd.notna(m.loc[p, "hot+R"]) and pd.notna(m.loc[p, f"{baseline}+R"])]
            w = [p for p in rp if m.loc[p, "hot+R"] > m.loc[p, f"{baseline}+R"]]
            cor = f"with rotations: HOT+R higher in {len(w)} of {len(rp)} pairs"
        return dict(ours_same_method=same, ours_corrected=cor, verdict=_verdict(len(wins) == len(pairs), bool(wins)))

    return assess


def _hot_rotation(df: pd.DataFrame) -> dict[str, str]:
    m = _hot_means(df)
    if "hot+R" not in m.columns:
        return dict(ours_same_method="HOT+R not run", ours_corrected="—", verdict=MISSING)
    pairs = [p for p in _cross(m.index) if pd.notna(m.loc[p, "hot+R"])]
    gains = [m.loc[p, "hot+R"] - m.loc[p, "hot"] for p in pairs]
    wins = [g for g in gains if g > 0]
    return dict(ours_same_method=f"HOT+R higher in {len(wins)} of {len(pairs)} pairs (gain "
                                 f"{min(gains):+.3f} to {max(gains):+.3f})",
                ours_corrected="—", verdict=_verdict(len(wins) == len(pairs), bool(wins)))


def _depth_mismatch(df: pd.DataFrame) -> dict[str, str]:
    c = df[(df.experiment == "coupling") & (df.method == "hot")].groupby(["model", "metric"]).value.mean().unstack()
    pairs = [p for p in _cross(c.index) if "~" not in p]
    spread = [p for p in pairs if c.loc[p, "spread"] > 1.0 + 1e-9]
    ordered = [p for p in pairs if c.loc[p, "monotone"] == 1.0]
    return dict(
        ours_same_method=(f"a source layer spreads over several target layers in {len(spread)} of {len(pairs)} "
                          f"cross-model pairs; layer order kept in every split for {len(ordered)} of {len(pairs)} "
                          f"(rank correlation {c.loc[pairs, 'order'].min():.2f}–{c.loc[pairs, 'order'].max():.2f})"),
        ours_corrected="—",
        verdict=_verdict(len(spread) == len(pairs) and len(ordered) == len(pairs), bool(spread or ordered)),
    )


def _brain(df: pd.DataFrame) -> dict[str, str]:
    pairs = [p for p in df.model.dropna().unique() if "brain" in p or "nsd" in p.lower()]
    if not pairs:
        return dict(ours_same_method="no fMRI data installed (NSD is not packaged)", ours_corrected="—",
                    verdict=MISSING)
    m = _hot_means(df[df.model.isin(pairs)])
    wins = [p for p in m.index if m.loc[p, "hot"] > m.loc[p, "pairwise"]]
    return dict(ours_same_method=f"HOT higher than pairwise-best in {len(wins)} of {len(m)} model–brain pairs",
                ours_corrected="—", verdict=_verdict(len(wins) == len(m), bool(wins)))


# --------------------------------------------------------------------------- chapter 3
def _attention(key: str) -> Callable[[pd.DataFrame], dict[str, str]]:
    def assess(df: pd.DataFrame) -> dict[str, str]:
        from .alignment import attention_claims

        sorting = df[df.experiment == "sorting"]
        scores = df[df.experiment == "gold_alignment"]
        agreements = df[df.experiment.str.startswith(("agreement_", "cross_attention_"))]
        c = {d["claim"]: d for d in attention_claims(sorting, scores, agreements)}[key]
        if key == "depth":
            errs = c["error_at_depth"]
            same = (f"largest mean L1 plan error {max(errs.values()):.2g} at depth {c['depth']} "
                    f"(lengths {min(errs)}–{max(errs)})")
            cor = f"without the prompt's sink tokens: {c['no_sink_error']:.2f}"
        elif key == "sorting":
            same = (f"every list sorted at depth {c['depth']} for lengths {c['fully_sorted_lengths'] or 'none'}; "
                    "elements at their rank: " + ", ".join(f"n={n}: {v:.0%}" for n, v in c["accuracy"].items()))
            cor = "—"
        elif key == "ot_accuracy":
            same = f"exact OT on embeddings: {c['best']:.0%} (best layer {c['best_layer']})"
            cor = ", ".join(f"{k.removeprefix('best_')}: {v:.0%}" for k, v in c.items()
                            if k.startswith("best_") and k != "best_layer")
        else:
            same = "; ".join(f"{e.replace('_', ' ')}: r = {t['r']:+.2f} ({t['first']:.0%} → {t['last']:.0%})"
                             for e, t in c["trends"].items())
            cor = "—"
        return dict(ours_same_method=same, ours_corrected=cor, verdict=c["verdict"])

    return assess


# --------------------------------------------------------------------------- chapter 4
def _hiref_scale(df: pd.DataFrame, bench: pd.DataFrame | None = None) -> dict[str, str]:
    h = df[df.method == "hiref"]
    sizes = pd.concat([h.get("n", pd.Series(dtype=float)), h.get("n_samples", pd.Series(dtype=float))]).dropna()
    largest = int(sizes.max()) if len(sizes) else 0
    where = "this run"
    if bench is not None and len(bench) and "n" in bench:
        b = bench[bench.solver.astype(str).str.startswith("hiref") & bench.n.notna()]
        if len(b) and int(b.n.max()) > largest:
            largest = int(b.n.max())
            where = str(b.source.iloc[0]) if "source" in b else "benchmarks"
    gap = df[(df.experiment == "moons_scurve") & (df.metric == "gap_to_exact")]
    gap_text = (f"; {gap.value.iloc[0]:+.1%} vs exact OT on moons → S-curve (n = {int(gap.n_samples.iloc[0]):,})"
                if len(gap) else "")
    tok = df[(df.experiment == "depth_at_scale")].pivot_table(index=["n_samples", "layer", "seed"], columns="method",
                                                              values="value")
    tok_text = ""
    if {"hiref", "exact"} <= set(tok.columns):
        both = tok.dropna(subset=["exact"])
        g = (both.hiref / both.exact - 1).groupby("n_samples").mean()
        tok_text = "; token clouds: " + ", ".join(f"n={int(n):,}: {v:+.1%}" for n, v in g.items()) + " vs exact"
    return dict(ours_same_method=f"bijection up to n = {largest:,} ({where}){gap_text}",
                ours_corrected=tok_text.removeprefix("; ") or "—",
                verdict=_verdict(largest >= 2**20, largest > 0))


# --------------------------------------------------------------------------- chapter 5
def _compression(df: pd.DataFrame) -> dict[str, str]:
    info = df[(df.experiment == "information_plane") & (df.layer >= 0)]
    if info.empty:
        return dict(ours_same_method="no information-plane rows", ours_corrected="—", verdict=MISSING)
    from .training import information_summary

    model = info.model.iloc[0]
    val = df[(df.metric == "val_loss") & (df.model == model)].groupby("step").value.mean()
    per_layer = information_summary(info, val)
    drops = per_layer.mi_xz_drop_after_peak.to_dict()
    corrs = per_layer.spearman_ratio_vs_loss.to_dict()
    compress = [k for k, v in drops.items() if v > 0]
    linked = [k for k, v in corrs.items() if v < 0]
    same = (f"I(X;Z) falls after its peak in {len(compress)} of {len(drops)} layers (largest drop "
            f"{max(drops.values()):.2f} nats); {model}, {val.index.max()} steps")
    cor = ("Spearman(compression ratio, validation loss) per layer: "
           + ", ".join(f"{k}: {v:+.2f}" for k, v in corrs.items()))
    return dict(ours_same_method=same, ours_corrected=cor,
                verdict=_verdict(len(compress) == len(drops) and len(linked) == len(corrs),
                                 bool(compress or linked)))


def _learned_u(df: pd.DataFrame) -> dict[str, str]:
    from .training import shape_over_training

    study = df[df.experiment == "adjacent_ot"]
    if study.empty:
        return dict(ours_same_method="no checkpoint profiles", ours_corrected="—", verdict=MISSING)
    shapes = shape_over_training(study).sort_values("step")
    if "u_shape" not in shapes:
        return dict(ours_same_method="the profile has no interior transition", ours_corrected="—", verdict=MISSING)
    first, last = shapes.iloc[0], shapes.iloc[-1]
    same = (f"{first.model}: edge ratio {first.edge_ratio:.2f} at step {int(first.step)} → {last.edge_ratio:.2f} at "
            f"step {int(last.step)}; U-shaped at step 0: {'yes' if first.u_shape else 'no'}, at the end: "
            f"{'yes' if last.u_shape else 'no'}")
    return dict(ours_same_method=same, ours_corrected="—",
                verdict=_verdict(bool(last.u_shape) and not bool(first.u_shape), bool(last.u_shape)))


# --------------------------------------------------------------------------- the claims
CLAIMS: tuple[Claim, ...] = (
    Claim("geomot:25", "U-shaped adjacent-layer OT profile (encode / refine / decode)", "01_ot_across_depth",
          "trained models show a distinct U-shaped profile of layer-to-layer Sinkhorn distances", _u_shape),
    Claim("geomot:25", "untrained twins: uniformly high, erratic profile", "01_ot_across_depth",
          "untrained distances are uniformly high, noisy and erratic across layers", _untrained),
    Claim("geomot:25", "information bottleneck: entropy minimum at mid-depth", "01_ot_across_depth",
          "entropy bottoms out in the middle layers of trained models; no bottleneck when untrained", _bottleneck),
    Claim("geomot:25", "the U-shape is learned during training", "05_training_dynamics",
          "suggested experiment: the structured profile emerges with training (absent at initialisation)",
          _learned_u),
    Claim("shah:25", "HOT beats pairwise-best OT", "02_hierarchical_alignment",
          "HOT reconstructs better than greedy pairwise OT across all tested model pairs", _hot_vs("pairwise")),
    Claim("shah:25", "HOT beats permuted layer coupling (Perm-P)", "02_hierarchical_alignment",
          "the layer coupling carries information (baseline Perm-P)", _hot_vs("perm-p")),
    Claim("shah:25", "depth mismatch: soft, ordered layer mappings", "02_hierarchical_alignment",
          "a layer spreads its mass over several consecutive layers of a deeper model; early aligns to early",
          _depth_mismatch),
    Claim("shah:25", "HOT+R (rotations) beats HOT", "02_hierarchical_alignment",
          "HOT+R yields substantially higher reconstruction scores than HOT", _hot_rotation),
    Claim("shah:25", "model–brain alignment (human visual cortex)", "02_hierarchical_alignment",
          "HOT aligns network layers to visual-cortex fMRI responses better than pairwise methods", _brain),
    Claim("daneshmand:24", "fixed-weight attention solves entropic OT, error vanishing with depth", "03_attention_as_ot",
          "an error term that vanishes with depth, with one set of weights", _attention("depth")),
    Claim("daneshmand:24", "sorts lists of any length without changing weights", "03_attention_as_ot",
          "sorts lists of varying lengths, given an engineered prompt", _attention("sorting")),
    Claim("daneshmand:24", "OT on word embeddings aligns translated words", "03_attention_as_ot",
          "about 90% alignment accuracy for translated words", _attention("ot_accuracy")),
    Claim("daneshmand:24", "attention progressively approaches the OT alignment", "03_attention_as_ot",
          "attention aligns translated word pairs progressively across layers", _attention("attention_depth")),
    Claim("halmos:25", "HiRef: bijective OT in linear space past a million points", "04_ot_at_scale",
          "a bijective coupling in linear space and log-linear time, on datasets of over a million points",
          _hiref_scale, needs_benchmarks=True),
    Claim("conklin:26", "pre-training compresses representations (information bottleneck)", "05_training_dynamics",
          "over training, models compress towards the Information Bottleneck bound; compression predicts performance",
          _compression),
)


#: The benchmark table measured for the published book, relative to the project root.
RECORDED_BENCHMARKS = Path("benchmarks") / "recorded.csv"


def _benchmarks(results_dir: Path, benchmarks) -> pd.DataFrame | None:
    if benchmarks is None:
        return None
    if isinstance(benchmarks, str) and benchmarks == "auto":
        own = _read(results_dir, "benchmarks")
        if own is not None:
            return own
        from .runner import project_root

        path = project_root() / RECORDED_BENCHMARKS
        return pd.read_csv(path).assign(source="recorded benchmarks") if path.is_file() else None
    path = Path(benchmarks)
    if not path.is_file():
        raise FileNotFoundError(f"`benchmarks` {path} does not exist")
    return pd.read_csv(path)


def _read(results_dir: Path, stem: str) -> pd.DataFrame | None:
    path = results_dir / f"{stem}.csv"
    return pd.read_csv(path) if path.is_file() else None


def reproduction_table(results_dir: str | Path | None = None, *, benchmarks: str | Path | None = "auto",
                       claims: tuple[Claim, ...] = CLAIMS) -> pd.DataFrame:
    """One row per claim: the paper's statement, ours with its method and corrected, and a verdict.

    Parameters
    ----------
    results_dir : path, optional
        Where the chapters wrote their tables (default :func:`otlens.config.results_dir`). A
        sweep's folder (``results/sweeps/<name>``) gives each claim's verdict per grid point and
        "holds in k of N runs" instead (:func:`otlens.sweep.sweep_reproduction_table`).
    benchmarks : path, "auto" or None
        The benchmark table some claims also read (HiRef at 2^20 points takes minutes, so no
        chapter runs it). ``"auto"``: ``results_dir/benchmarks.csv`` when ``make bench`` wrote
        one, else the table recorded in the repository (:data:`RECORDED_BENCHMARKS`, under the
        project root), whose rows the claims then cite as "recorded benchmarks"; ``None``: none.

    Returns
    -------
    pandas.DataFrame
        Columns ``study, claim, chapter, paper, ours_same_method, ours_corrected, verdict``; a
        claim whose chapter has no results table (or whose table lacks the rows it needs) gets
        the verdict ``"data not available here"`` and says why.
    """
    if results_dir is None:
        from .config import results_dir as default

        results_dir = default()
    results_dir = Path(results_dir)
    if (results_dir / "sweep.json").is_file():  # a sweep's folder: verdicts per grid point (otlens.sweep)
        from .sweep import sweep_reproduction_table

        return sweep_reproduction_table(results_dir, benchmarks=benchmarks, claims=claims)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"`results_dir` {results_dir} does not exist; run the chapters first")
    bench = _benchmarks(results_dir, benchmarks)
    tables: dict[str, pd.DataFrame | None] = {}
    rows = []
    for c in claims:
        if c.chapter not in tables:
            tables[c.chapter] = _read(results_dir, c.chapter)
        df = tables[c.chapter]
        if df is None:
            found = dict(ours_same_method=f"{c.chapter} has not been run", ours_corrected="—", verdict=MISSING)
        else:
            try:
                found = c.assess(df, bench) if c.needs_benchmarks else c.assess(df)
            except (KeyError, ValueError, IndexError) as exc:  # the table lacks what the claim needs
                found = dict(ours_same_method=f"the results table lacks the rows this claim needs ({exc})",
                             ours_corrected="—", verdict=MISSING)
        rows.append(dict(study=c.study, claim=c.claim, chapter=c.chapter, paper=c.paper, **found))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def describe_reproduction(table: pd.DataFrame) -> str:
    """One markdown sentence counting the verdicts of :func:`reproduction_table`."""
    counts = table.verdict.value_counts()
    parts = [f"{int(counts[v])} {v}" for v in VERDICTS if v in counts]
    return f"Of the {len(table)} claims: " + ", ".join(parts) + "."


#: The book's label of each chapter (its ``(label)=`` line), for links from the table.
CHAPTER_LABELS = {
    "01_ot_across_depth": "ot-across-depth",
    "02_hierarchical_alignment": "hierarchical-alignment",
    "03_attention_as_ot": "attention-as-ot",
    "04_ot_at_scale": "ot-at-scale",
    "05_training_dynamics": "training-dynamics",
}
_MARK = {"reproduced": "**reproduced**", "partly reproduced": "partly reproduced", "not reproduced": "*not reproduced*",
         "data not available here": "data not available here"}
#: Short names of the studies, for figures.
STUDY_LABELS = {"geomot:25": "OT across depth (2025)", "shah:25": "Shah & Khosla (2025)",
                "daneshmand:24": "Daneshmand (2024)", "halmos:25": "Halmos et al. (2025)",
                "conklin:26": "Conklin et al. (2026)"}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def reproduction_markdown(table: pd.DataFrame) -> str:
    """MyST markdown of :func:`reproduction_table`: a summary table, then every claim in full.

    The summary has one row per claim (study, claim, verdict, a link to its chapter); the details
    give the paper's statement and our two measurements for each claim, under its study.
    """
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"`table` lacks the columns {missing}; make it with reproduction_table")

    def chapter(stem: str) -> str:
        return f"{{ref}}`{CHAPTER_LABELS[stem]}`" if stem in CHAPTER_LABELS else f"`{stem}`"

    lines = ["| study | claim | verdict | chapter |", "| --- | --- | --- | --- |"]
    lines += [f"| {{cite:t}}`{r.study}` | {_cell(r.claim)} | {_MARK.get(r.verdict, r.verdict)} | {chapter(r.chapter)} |"
              for r in table.itertuples()]
    for study, g in table.groupby("study", sort=False):
        lines += ["", f"**{{cite:t}}`{study}`**", ""]
        for r in g.itertuples():
            lines += [f"- **{_cell(r.claim)}** — {_MARK.get(r.verdict, r.verdict)}.",
                      f"  *Paper:* {_cell(r.paper)}.",
                      f"  *Ours, paper's method:* {_cell(r.ours_same_method)}."]
            if r.ours_corrected and r.ours_corrected != "—":
                lines.append(f"  *Ours, corrected method:* {_cell(r.ours_corrected)}.")
    return "\n".join(lines)


__all__ += ["reproduction_markdown", "CHAPTER_LABELS", "STUDY_LABELS"]
