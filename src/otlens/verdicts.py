r"""Decision rules a referee can check: every verdict is an effect, its interval, a null and a rule.

A claim of a source study is *reproduced* here only when the difference it asserts is measured
against a null computed in the same run (a chance baseline, a shuffled coupling, an untrained
twin, a permuted alignment) and the confidence interval of that difference excludes zero. The
pieces, used by every chapter and by the reproduction page (:mod:`otlens.claims` holds the
rule of each claim; this module holds the machinery and the vocabulary):

- :func:`mean_ci` (a Student-t interval over independent replicates: seeds, splits, verses),
  :func:`bootstrap_ci` (a percentile bootstrap over units such as texts or verses) and
  :func:`percentile_ci` (an interval from bootstrap replicates drawn elsewhere);
- :func:`compare`: one difference, *higher* / *lower* / *tie* / *undecided* / *underpowered*,
  from its interval and the smallest difference that matters (``margin``):

  .. math::

     \text{higher} \iff \ell > \max(0, m_0), \quad \text{lower} \iff u < 0, \quad
     \text{tie} \iff -m \le \ell \le u \le m, \quad \text{undecided otherwise},

  where :math:`[\ell, u]` is the interval and :math:`m` the margin; fewer than
  :data:`MIN_REPLICATES` replicates is *underpowered*;
- :func:`all_units`: a claim that holds "across models" must hold in every unit (model, model
  pair, data set); one unit that contradicts it decides *not reproduced*, one undecided unit
  *inconclusive*; the interval shown is the deciding unit's (the weakest, when it holds);
- :func:`combine_methods`: the corrected method decides; a claim that holds only with the
  published method is *reproduced with the published method only*;
- :func:`held_out_best`: a best layer or head chosen on one half of the units and reported on
  the other;
- :func:`partial_spearman`: a rank correlation with a confound partialled out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "REPRODUCED", "PUBLISHED_ONLY", "NOT_REPRODUCED", "INCONCLUSIVE", "MISSING", "OPEN_QUESTION",
    "VERDICTS", "SCORED", "MIN_REPLICATES", "Comparison", "Verdict", "mean_ci", "bootstrap_ci",
    "percentile_ci", "compare", "all_units", "combine_methods", "worst", "held_out_best",
    "partial_spearman", "clopper_pearson", "fmt_effect", "describe_verdicts", "missing",
]

REPRODUCED = "reproduced"
PUBLISHED_ONLY = "reproduced with the published method only"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive (underpowered)"
MISSING = "data not available here"
OPEN_QUESTION = "open question"
#: Every verdict, in the order the book counts them.
VERDICTS = (REPRODUCED, PUBLISHED_ONLY, NOT_REPRODUCED, INCONCLUSIVE, MISSING, OPEN_QUESTION)
#: The verdicts of scored claims (an open question is a suggestion of the study, not scored).
SCORED = (REPRODUCED, PUBLISHED_ONLY, NOT_REPRODUCED, INCONCLUSIVE)
#: Fewer replicates than this behind an interval and the comparison is underpowered.
MIN_REPLICATES = 5

#: What each outcome of a comparison means for a claim that asserts the difference is positive.
OUTCOME_VERDICT = {"higher": REPRODUCED, "lower": NOT_REPRODUCED, "tie": NOT_REPRODUCED,
                   "undecided": INCONCLUSIVE, "underpowered": INCONCLUSIVE}
_RANK = {"lower": 0, "tie": 1, "underpowered": 2, "undecided": 2, "higher": 3}


@dataclass(frozen=True)
class Comparison:
    """One measured difference (in the direction the claim asserts) and its outcome."""

    effect: float  #: point estimate (> 0: the direction the claim asserts)
    lo: float  #: lower end of the interval
    hi: float  #: upper end of the interval
    n: int  #: replicates behind the interval
    outcome: str  #: "higher", "lower", "tie", "undecided" or "underpowered"
    unit: str = ""  #: which model / pair / data set

    def text(self, digits: int = 3, pct: bool = False, signed: bool = True) -> str:
        """The comparison as text: ``effect [lo, hi]`` (see :func:`fmt_effect`).

        Parameters
        ----------
        digits : int
            Significant digits.
        pct : bool
            Show percentages.
        signed : bool
            Show the sign (a difference) or not (a level).

        Returns
        -------
        str
            The effect and its interval.
        """
        return fmt_effect(self.effect, (self.lo, self.hi), digits=digits, pct=pct, signed=signed)


@dataclass(frozen=True)
class Verdict:
    """The decision on one claim: the chapter and the reproduction page both show these fields.

    The other fields are documented where they are declared.

    Attributes
    ----------
    comparisons : tuple of Comparison
        The comparisons behind the verdict (every unit's, when the claim must hold in all).
    """

    claim: str  #: key of the claim (see :data:`otlens.claims.CLAIMS`)
    verdict: str  #: one of :data:`VERDICTS`
    effect: float  #: effect size of the deciding comparison (nan when none)
    ci: tuple[float, float]  #: its 95% interval
    effect_label: str  #: what the effect measures
    null: str  #: the null or baseline it is compared with, with its value from the same run
    n: int  #: replicates behind the interval
    unit: str  #: what ``n`` counts ("splits", "token-sample seeds", "verses", ...)
    rule: str  #: the decision rule, in words
    detail: str = ""  #: every unit's numbers (markdown)
    pct: bool = False  #: show the effect as a percentage
    comparisons: tuple[Comparison, ...] = field(default=(), compare=True)
    shown: str = ""  #: how the effect is shown, when it is not a difference with an interval (a size, a count)
    signed: bool = True  #: False for a level (an accuracy, an error) rather than a difference

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"`verdict` must be one of {VERDICTS}; got {self.verdict!r}")

    @property
    def effect_text(self) -> str:
        """``effect [lo, hi]`` as shown in the chapter and the reproduction table."""
        if self.shown:
            return self.shown
        if not np.isfinite(self.effect):
            return "—"
        return fmt_effect(self.effect, self.ci, pct=self.pct, signed=self.signed)

    @property
    def replicates(self) -> str:
        """``n = <n> <unit>``, or an em dash when no replicates stand behind the effect."""
        return f"n = {self.n} {self.unit}" if self.n and self.unit else "—"

    def to_row(self) -> dict[str, Any]:
        """The verdict as one row of the reproduction table.

        Returns
        -------
        dict of str to Any
            ``claim_key``, ``verdict``, ``effect``, ``ci_low``, ``ci_high``, ``effect_text``,
            ``effect_label``, ``null``, ``n``, ``unit``, ``rule`` and ``detail``.
        """
        return dict(claim_key=self.claim, verdict=self.verdict, effect=self.effect, ci_low=self.ci[0],
                    ci_high=self.ci[1], effect_text=self.effect_text, effect_label=self.effect_label,
                    null=self.null, n=self.n, unit=self.unit, rule=self.rule, detail=self.detail)


def missing(claim: str, why: str, *, rule: str = "") -> Verdict:
    """The verdict of a claim whose data this run does not have.

    Parameters
    ----------
    claim : str
        The claim's key.
    why : str
        What is missing (shown as the verdict's detail).
    rule : str
        The decision rule, in words.

    Returns
    -------
    Verdict
        A verdict ``MISSING`` with no effect.
    """
    return Verdict(claim, MISSING, math.nan, (math.nan, math.nan), "—", "—", 0, "", rule, detail=why)


# --------------------------------------------------------------------------- intervals
def _finite(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    if not np.isfinite(a).all():
        raise ValueError(f"`{name}` must be finite; got {a[~np.isfinite(a)][:3]} among {a.size} values")
    return a


def mean_ci(x: Any, *, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of independent replicates and its Student-t interval.

    Parameters
    ----------
    x : array-like
        The replicates (finite; at least one).
    level : float
        Confidence level of the interval.

    Returns
    -------
    tuple of float
        ``(mean, lo, hi)``; ``(mean, nan, nan)`` for fewer than 2 replicates.
    """
    from scipy.stats import t as student

    a = _finite(x, "x")
    if a.size == 0:
        raise ValueError("`x` must hold at least one replicate; got none")
    m = float(a.mean())
    if a.size < 2:
        return m, math.nan, math.nan
    half = float(student.ppf(0.5 + level / 2, a.size - 1) * a.std(ddof=1) / math.sqrt(a.size))
    return m, m - half, m + half


def bootstrap_ci(units: Any, statistic: Callable[[np.ndarray], float] = np.mean, *, n_resamples: int = 2000,
                 level: float = 0.95, seed: int = 0,
                 min_defined: float | None = None) -> tuple[float, float, float]:
    """``statistic`` of the units and its percentile bootstrap interval (units resampled with replacement).

    By default a non-finite replicate is an error; with ``min_defined``, resamples where the
    statistic is undefined (``nan``) are dropped.

    Parameters
    ----------
    units : array-like, [n_units, ...]
        The units (texts, verses) along the first axis.
    statistic : callable
        Takes such an array (for example the rows of per-verse counts) and returns a number.
    n_resamples : int
        Number of bootstrap resamples.
    level : float
        Confidence level of the interval.
    seed : int
        Seed of the resampling.
    min_defined : float, optional
        The least fraction of resamples whose statistic is defined; below it the interval is
        ``nan``.

    Returns
    -------
    tuple of float
        ``(estimate, lo, hi)``; the interval is ``nan`` for fewer than 2 units.
    """
    a = np.asarray(units, dtype=float)
    if a.shape[0] == 0:
        raise ValueError("`units` must hold at least one unit; got none")
    est = float(statistic(a))
    if a.shape[0] < 2:
        return est, math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.shape[0], size=(n_resamples, a.shape[0]))
    reps = np.array([statistic(a[i]) for i in idx], dtype=float)
    if min_defined is not None:
        reps = reps[np.isfinite(reps)]
        if len(reps) < min_defined * n_resamples:
            return est, math.nan, math.nan
    lo, hi = percentile_ci(reps, level=level)
    return est, lo, hi


def percentile_ci(replicates: Any, *, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` interval of bootstrap replicates.

    Parameters
    ----------
    replicates : array-like
        The bootstrap replicates (finite).
    level : float
        Confidence level.

    Returns
    -------
    tuple of float
        ``(lo, hi)``; ``(nan, nan)`` for fewer than 2 replicates.
    """
    r = _finite(replicates, "replicates")
    if r.size < 2:
        return math.nan, math.nan
    q = np.quantile(r, [0.5 - level / 2, 0.5 + level / 2])
    return float(q[0]), float(q[1])


def clopper_pearson(k: int, n: int, *, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of a proportion k / n.

    Parameters
    ----------
    k : int
        Successes.
    n : int
        Trials.
    level : float
        Confidence level.

    Returns
    -------
    tuple of float
        ``(lo, hi)``; ``(nan, nan)`` when ``n <= 0``.
    """
    from scipy.stats import beta

    if n <= 0:
        return math.nan, math.nan
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


# --------------------------------------------------------------------------- decisions
def compare(effect: float, lo: float, hi: float, n: int, *, margin: float = 0.0, threshold: float = 0.0,
            min_n: int = MIN_REPLICATES, unit: str = "") -> Comparison:
    """Outcome of one difference, ``effect`` with interval ``[lo, hi]`` over ``n`` replicates.

    *higher* when ``lo > threshold`` (by default: the interval excludes zero on the claimed
    side); *lower* when ``hi < threshold``; *tie* when the whole interval lies within
    ``±margin`` of the threshold (a difference too small to matter, reported as a tie, never as
    a win); *undecided* otherwise; *underpowered* when fewer than ``min_n`` replicates (or no
    interval) stand behind it.

    Parameters
    ----------
    effect : float
        The point estimate (> 0: the direction the claim asserts).
    lo, hi : float
        Its interval.
    n : int
        Replicates behind the interval.
    margin : float
        The smallest difference that matters.
    threshold : float
        The level the difference is compared with.
    min_n : int
        Fewer replicates than this is *underpowered*.
    unit : str
        Which model, pair or data set the comparison is about.

    Returns
    -------
    Comparison
        The difference and its outcome.
    """
    if n < min_n or not (np.isfinite(lo) and np.isfinite(hi)):
        outcome = "underpowered"
    elif lo > threshold:
        outcome = "higher"
    elif hi < threshold:
        outcome = "lower"
    elif margin > 0 and threshold - margin <= lo and hi <= threshold + margin:
        outcome = "tie"
    else:
        outcome = "undecided"
    return Comparison(float(effect), float(lo), float(hi), int(n), outcome, unit)


def compare_paired(diffs: Any, *, margin: float = 0.0, min_n: int = MIN_REPLICATES, unit: str = "") -> Comparison:
    """:func:`compare` on paired differences (one per seed or split), with a t-interval."""
    m, lo, hi = mean_ci(diffs)
    return compare(m, lo, hi, len(np.ravel(diffs)), margin=margin, min_n=min_n, unit=unit)


def worst(*comparisons: Comparison) -> Comparison:
    """The comparison that decides a conjunction ("higher *and* rougher"): the lowest outcome.

    Parameters
    ----------
    *comparisons : Comparison
        The comparisons that must all hold.

    Returns
    -------
    Comparison
        The one with the lowest outcome (ties broken by the lower interval end).
    """
    return min(comparisons, key=lambda c: (_RANK[c.outcome], c.lo if np.isfinite(c.lo) else -np.inf))


def all_units(comparisons: Sequence[Comparison], *, min_units: int = 1) -> tuple[str, Comparison | None]:
    """Verdict of a claim that must hold in every unit, and the comparison that decides it.

    *not reproduced* when some unit is lower or tied; else *inconclusive* when some unit is
    undecided or underpowered, or when fewer than ``min_units`` units were tested; else
    *reproduced*, shown by the weakest unit (the lowest interval end).

    Parameters
    ----------
    comparisons : sequence of Comparison
        One per unit.
    min_units : int
        The fewest units that can decide the claim.

    Returns
    -------
    verdict : str
        One of :data:`VERDICTS`.
    deciding : Comparison or None
        The comparison that decides it (None without comparisons).
    """
    if not comparisons:
        return MISSING, None
    against = [c for c in comparisons if c.outcome in ("lower", "tie")]
    if against:
        return NOT_REPRODUCED, min(against, key=lambda c: c.effect)
    open_ = [c for c in comparisons if c.outcome in ("undecided", "underpowered")]
    if open_:
        return INCONCLUSIVE, min(open_, key=lambda c: c.lo if np.isfinite(c.lo) else -np.inf)
    weakest = min(comparisons, key=lambda c: c.lo)
    if len(comparisons) < min_units:
        return INCONCLUSIVE, weakest
    return REPRODUCED, weakest


def combine_methods(corrected: str, published: str) -> str:
    """The corrected method decides; the published one alone earns *reproduced with the published method only*.

    Parameters
    ----------
    corrected : str
        The verdict with the corrected method.
    published : str
        The verdict with the published method.

    Returns
    -------
    str
        The combined verdict.
    """
    if corrected == REPRODUCED:
        return REPRODUCED
    if published == REPRODUCED:
        return PUBLISHED_ONLY
    return corrected


def held_out_best(values: pd.DataFrame, *, candidate: str, unit: str, value: str | Callable[[pd.DataFrame], float],
                  fraction: float = 0.5, seed: int = 0) -> dict[str, Any]:
    """Choose the best candidate (layer, head) on one part of the units, report it on the other.

    The units are split at random (``seed``) into a selection part (``fraction``) and a report
    part.

    Parameters
    ----------
    values : pandas.DataFrame
        One row per (candidate, unit).
    candidate : str
        The column naming the candidate.
    unit : str
        The column naming the unit.
    value : str or callable
        A column (averaged over units) or a function of a candidate's rows (for pooled scores
        such as correct / total).
    fraction : float
        Fraction of the units used for the selection.
    seed : int
        Seed of the split.

    Returns
    -------
    dict
        ``best``, ``selection_score`` (its score on the selection units, optimistic),
        ``report_units`` (the report units' ids) and ``report`` (the rows of the best candidate
        on the report units).
    """
    stat = (lambda g: float(g[value].mean())) if isinstance(value, str) else value
    units = np.array(sorted(values[unit].unique()))
    if len(units) < 2:
        raise ValueError(f"held-out selection needs at least 2 `{unit}`s; got {len(units)}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(units)
    k = min(max(1, int(round(fraction * len(units)))), len(units) - 1)
    sel, rep = set(perm[:k].tolist()), set(perm[k:].tolist())
    scores = {c: stat(g) for c, g in values[values[unit].isin(sel)].groupby(candidate)}
    best = max(sorted(scores), key=lambda c: scores[c])  # ties: the first candidate in order
    report = values[(values[candidate] == best) & values[unit].isin(rep)]
    return dict(best=best, selection_score=scores[best], report_units=sorted(rep), selection_units=sorted(sel),
                report=report)


def partial_spearman(x: Any, y: Any, z: Any) -> float:
    """Spearman correlation of ``x`` and ``y`` with ``z`` partialled out (on the ranks).

    ``nan`` when it is undefined: when ``z``'s ranks explain all of ``x``'s or ``y``'s (a loss that
    falls at every checkpoint is ranked exactly by training time, so nothing is left to correlate).
    That is not a zero correlation and must not be read as one.

    Parameters
    ----------
    x, y : array-like, [n]
        The two variables.
    z : array-like, [n]
        The confound.

    Returns
    -------
    float
        The partial rank correlation, or ``nan``.
    """
    from scipy.stats import rankdata

    rx, ry, rz = (rankdata(np.asarray(v, dtype=float)) for v in (x, y, z))
    Z = np.column_stack([np.ones_like(rz), rz])
    ex = rx - Z @ np.linalg.lstsq(Z, rx, rcond=None)[0]
    ey = ry - Z @ np.linalg.lstsq(Z, ry, rcond=None)[0]
    tiny = 1e-9 * len(rx) ** 2  # rank residuals are O(n); below this they are rounding
    if float(ex @ ex) <= tiny or float(ey @ ey) <= tiny:
        return math.nan
    return float(ex @ ey / math.sqrt(float(ex @ ex) * float(ey @ ey)))


# --------------------------------------------------------------------------- text
def fmt_effect(effect: float, ci: tuple[float, float], *, digits: int = 3, pct: bool = False,
               signed: bool = True) -> str:
    """An effect and its interval as text: ``+0.012 [+0.004, +0.020]``.

    Two significant digits for values below 0.01; the interval omitted when there is none.

    Parameters
    ----------
    effect : float
        The effect.
    ci : tuple of float
        Its interval ``(lo, hi)``.
    digits : int
        Significant digits.
    pct : bool
        Show percentages.
    signed : bool
        Show the sign (a difference) or not (a level rather than a difference).

    Returns
    -------
    str
        The text.
    """
    sign = "+" if signed else ""
    small = not pct and np.isfinite(effect) and 0 < abs(effect) < 10 ** -(digits - 1)
    if pct:
        f = lambda v: f"{100 * v:{sign}.1f}%"  # noqa: E731
    elif small:
        f = lambda v: f"{v:{sign}.2g}"  # noqa: E731
    else:
        f = lambda v: f"{v:{sign}.{digits}f}"  # noqa: E731
    if not np.isfinite(effect):
        return "—"
    if not (np.isfinite(ci[0]) and np.isfinite(ci[1])):
        return f"{f(effect)} (no interval)"
    return f"{f(effect)} [{f(ci[0])}, {f(ci[1])}]"


def describe_verdicts(verdicts: Sequence[Verdict], titles: Mapping[str, str] | None = None) -> str:
    """Markdown, one bullet per claim: the verdict, the effect with its interval, the null, n and the rule.

    The chapter glues this text; the reproduction page shows the same fields of the same objects.

    Parameters
    ----------
    verdicts : sequence of Verdict
        The verdicts.
    titles : mapping of str to str, optional
        A title per claim key (default: the key).

    Returns
    -------
    str
        The markdown list.
    """
    lines = []
    for v in verdicts:
        title = (titles or {}).get(v.claim, v.claim)
        head = f"- **{title}: {v.verdict}.**"
        if np.isfinite(v.effect):
            n = f" ({v.replicates})" if v.replicates != "—" else ""
            head += f" {v.effect_label}: {v.effect_text}{n}; null: {v.null}."
        elif v.null != "—":
            head += f" Null: {v.null}."
        lines.append(head)
        if v.detail:
            lines.append(f"  {v.detail}")
        if v.rule:
            lines.append(f"  *Rule:* {v.rule}")
    return "\n".join(lines)


def with_detail(v: Verdict, detail: str) -> Verdict:
    """A copy of ``v`` with ``detail`` replaced."""
    return replace(v, detail=detail)
