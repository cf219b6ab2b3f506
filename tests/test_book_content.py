"""The book's reader-facing text stays true to the code: the introduction's worked example, the
profile table and every ``otlens run`` command of the "how to rerun" page and of the chapters'
exercises, and the chapters' parameter explanations and exercise sections."""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import yaml

from otlens.runner import load_params, notebook_parameters, parse_value

REPO = Path(__file__).resolve().parents[1]
INTRO = REPO / "book" / "intro.md"
RERUN = REPO / "book" / "rerun.md"
CHAPTERS = sorted((REPO / "notebooks").glob("0[1-5]_*.md"))


def _sinkhorn(C: np.ndarray, eps: float, *, tol: float = 1e-6, max_iter: int = 200_000):
    """Plain Sinkhorn as the introduction describes it; returns (u, v, plan, rounds).

    One round is ``u = a / (K v)`` then ``v = b / (K^T u)``, from ``v = 1``; it stops when the L1
    error of the plan's row sums is below ``tol`` (its column sums are then exact).
    """
    n = C.shape[0]
    a = b = np.full(n, 1 / n)
    K = np.exp(-C / eps)
    v = np.ones(n)
    for rounds in range(1, max_iter + 1):
        u = a / (K @ v)
        v = b / (K.T @ u)
        plan = u[:, None] * K * v[None, :]
        if np.abs(plan.sum(1) - a).sum() < tol:
            return u, v, plan, rounds
    raise AssertionError(f"Sinkhorn did not reach tol={tol} in {max_iter} rounds at eps={eps}")


def _row(values, fmt: str = "{:.3f}") -> str:
    return " & ".join(fmt.format(v) for v in values)


def _triple(values) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


def test_intro_worked_example_matches_a_computation():
    text = INTRO.read_text()
    x, y = np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0])
    C = (x[:, None] - y[None, :]) ** 2
    for row in C:
        assert _row(row, "{:.0f}") in text  # the cost matrix, row by row

    costs = sorted(C[range(3), list(p)].sum() / 3 for p in itertools.permutations(range(3)))
    assert costs[0] == 1.0 and "= 1$" in text  # the identity is optimal, cost 1
    assert np.allclose(costs[1:], [5 / 3, 5 / 3, 3, 3, 11 / 3])  # "the others cost 5/3, 5/3, 3, 3, 11/3"

    # Kernel at eps = 1 and the first Sinkhorn round, from v = 1.
    K = np.exp(-C)
    assert "0.368 & 0.018 & 0.0001" in text
    Kv = K @ np.ones(3)
    u1 = (1 / 3) / Kv
    KTu = K.T @ u1
    v1 = (1 / 3) / KTu
    for vector in (Kv, u1, KTu, v1):
        assert _triple(vector) in text, _triple(vector)
    rows = 3 * (u1[:, None] * K * v1[None, :]).sum(1)
    assert _triple(rows) in text

    # The converged plans and their costs.
    _, _, plan, rounds = _sinkhorn(C, 1.0)
    for row in 3 * plan:
        assert _row(row) in text
    assert f"{(C * plan).sum():.3f}" == "1.348" and "1.348" in text
    assert f"{np.trace(plan):.0%}" == "68%" and "68%" in text
    assert rounds == 23 and "23 rounds" in text

    _, _, plan, rounds = _sinkhorn(C, 0.5)
    assert f"{np.trace(plan):.0%}" == "85%" and f"{(C * plan).sum():.3f}" == "1.150"
    assert rounds == 55 and "(55 rounds)" in text

    _, _, plan, rounds = _sinkhorn(C, 0.1)
    assert f"{np.trace(plan):.2%}" == "99.99%" and "99.99% of the mass" in text
    assert f"{rounds:,}" == "52,838" and "52,838 rounds" in text


def test_intro_example_code_runs_and_agrees():
    torch = pytest.importorskip("torch")
    import otlens

    x = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
    y = x + 1
    assert float(otlens.exact_ot(x, y).cost) == pytest.approx(1.0)
    r = otlens.sinkhorn(x, y, reg=1.0, tol=1e-9, return_plan=True)
    _, _, plan, _ = _sinkhorn((x - y.T).numpy() ** 2, 1.0, tol=1e-12)
    assert np.allclose(r.plan.numpy(), plan, atol=1e-7)
    assert f"{float(r.cost):.3f}" == "1.348"


def _chapter(number: str) -> Path:
    (path,) = [p for p in CHAPTERS if p.name.startswith(f"0{number}_")]
    return path


def test_rerun_profile_table_matches_the_profiles():
    profiles = {name: yaml.safe_load((REPO / "params" / f"{name}.yml").read_text()) for name in ("quick", "paper")}
    rows = re.findall(r"^\| (\d) \| `(\w+)` \| ([^|]+) \| ([^|]+) \|", RERUN.read_text(), flags=re.M)
    assert len(rows) >= 15  # the table is still there and still parsed
    for number, key, quick, paper in rows:
        stem = _chapter(number).stem
        assert key in notebook_parameters(_chapter(number)), (stem, key)
        assert profiles["quick"][stem][key] == yaml.safe_load(quick), (stem, key, "quick")
        assert profiles["paper"][stem][key] == yaml.safe_load(paper), (stem, key, "paper")


def _run_commands(text: str) -> list[str]:
    """Every ``otlens run notebooks/….md …`` in ``text``, shell line continuations joined."""
    text = re.sub(r"\\\n\s*", " ", text)
    return [m.group(0) for m in re.finditer(r"otlens run notebooks/[^\s`]+\.md[^`\n]*", text)]


def _commands() -> list[tuple[str, str]]:
    sources = [RERUN, INTRO, *CHAPTERS]
    return [(src.name, cmd) for src in sources for cmd in _run_commands(src.read_text())]


@pytest.mark.parametrize("source, command", _commands())
def test_run_commands_name_real_parameters(source, command):
    words = shlex.split(command)
    notebook = REPO / words[2]
    assert notebook.is_file(), command
    overrides, profile = {}, "quick"
    rest = iter(words[3:])
    for word in rest:
        if word in ("-p", "--parameter"):
            key, value = next(rest), next(rest)
            overrides[key] = parse_value(value)
        elif word == "--profile":
            profile = next(rest)
        elif word in ("--out", "--kernel"):
            next(rest)
        else:
            assert word == "--no-progress", f"unexpected word {word!r} in {command!r}"
    params = load_params(notebook, profile=profile, overrides=overrides)  # raises on an unknown key
    if "pairs" in overrides:  # chapter 2: every pair is over known systems, the others are pairs
        named = {s for p in params["pairs"] for s in p.split(">")}
        assert named <= set(params["systems"]), command
        assert set(params["rotation_pairs"]) <= set(params["pairs"]), command
        assert params.get("scatter_pair", notebook_parameters(notebook)["scatter_pair"]) in params["pairs"], command


def test_every_command_was_found():
    commands = _commands()
    assert {src for src, _ in commands} >= {"rerun.md", *(p.name for p in CHAPTERS)}
    assert len(commands) >= 15


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_explains_parameters_and_ends_with_exercises(chapter):
    import jupytext

    nb = jupytext.read(chapter)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    explanation = nb.cells[index + 1]
    assert explanation.cell_type == "markdown"
    unexplained = [k for k in notebook_parameters(chapter) if f"`{k}`" not in explanation.source]
    assert not unexplained, f"parameters not explained after the parameters cell: {unexplained}"

    text = chapter.read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings[-1] == "Exercises"
    exercises = text.split("\n## Exercises\n", 1)[1]
    titles = re.findall(r"^:::\{exercise\} (.+)\n:label: ([\w-]+)$", exercises, flags=re.M)
    solved = re.findall(r"^::::\{solution\} ([\w-]+)\n:class: dropdown$", exercises, flags=re.M)
    assert sorted(label for _, label in titles) == sorted(solved), "every exercise has one solution"
    kinds = [title.split(":")[0] for title, _ in titles]
    assert set(kinds) <= {"Pen and paper", "Computational"}, kinds
    assert kinds.count("Pen and paper") >= 2 and 2 <= kinds.count("Computational") <= 3
    for label in solved:  # a computational solution says what the run shows and how to read it
        body = re.sub(r"\s+", " ", exercises.split(f"{{solution}} {label}\n", 1)[1].split("\n::::\n", 1)[0])
        if "```" in body:
            assert "**How to read it:**" in body and ("**What you get:**" in body or "**Expected output:**" in body), label


@pytest.mark.parametrize("chapter", sorted((REPO / "notebooks").glob("0[1-6]_*.md")), ids=lambda p: p.stem)
def test_chapter_opens_with_objectives_prerequisites_and_times(chapter):
    head = chapter.read_text().split("\n## ", 1)[0]  # before the first section
    block = head.split(":::{admonition} At a glance", 1)[1].split("\n:::\n", 1)[0]
    objectives = re.findall(r"^- ", block.split("**Prerequisites.**")[0], flags=re.M)
    assert 3 <= len(objectives) <= 5
    assert "**Prerequisites.**" in block and "Maths:" in block
    assert "{chapter-time}`reading`" in block and "{chapter-time}`run`" in block  # measured, not typed


def test_instructor_page_plans_five_weeks_and_is_in_the_toc():
    page = (REPO / "book" / "instructor.md").read_text()
    assert [int(w) for w in re.findall(r"^\| (\d) \|", page, flags=re.M)] == [1, 2, 3, 4, 5]
    labels = set(re.findall(r"\{ref\}`(ex-[\w-]+)`", page))
    defined = {m for c in CHAPTERS for m in re.findall(r"^:label: (ex-[\w-]+)$", c.read_text(), flags=re.M)}
    assert labels and labels <= defined, labels - defined
    assert "book/instructor" in [c.get("file") for c in yaml.safe_load((REPO / "_toc.yml").read_text())["chapters"]]


def test_rerun_tiny_gpt_checkpoints_are_the_default_schedule():
    from otlens.training import DEFAULT_CONFIG, checkpoint_steps

    steps = checkpoint_steps(DEFAULT_CONFIG.steps, DEFAULT_CONFIG.n_checkpoints)
    stated = ", ".join(map(str, steps[:-1])) + f" and {steps[-1]}"
    text = re.sub(r"\s+", " ", RERUN.read_text())
    assert f"checkpoints are at steps {stated}" in text
    example = re.search(r"`tiny-gpt-L8@(\d+)` is its checkpoint at step (\d+)", text)
    assert example and example[1] == example[2] and int(example[1]) in steps


# ----------------------------------------------------------------------------- thin chapters
THIN = [_chapter(n) for n in "12345"]
MAX_CELL_LINES = 15  # lines of code (not blank, not comments) in one cell, the parameters cell aside


def _code_cells(chapter: Path) -> list[tuple[int, list[str], dict]]:
    import jupytext

    nb = jupytext.read(chapter)
    return [(i, c.source.splitlines(), c.metadata) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


@pytest.mark.parametrize("chapter", THIN, ids=lambda p: p.stem)
def test_chapter_cells_call_the_library_and_hold_no_logic(chapter):
    for i, lines, meta in _code_cells(chapter):
        code = [ln for ln in lines if ln.strip() and not ln.strip().startswith("#")]
        where = f"{chapter.name}, code cell {i}"
        assert not [ln for ln in code if re.match(r"\s*(def|class) ", ln)], f"{where} defines a function"
        assert not [ln for ln in code if re.match(r"\s*(import ot\b|from ot\b)", ln)], f"{where} calls POT directly"
        if "parameters" not in meta.get("tags", []):
            assert len(code) <= MAX_CELL_LINES, f"{where} has {len(code)} lines of code"


def test_the_cell_check_catches_a_function(tmp_path):
    fake = tmp_path / "01_fake.md"
    fake.write_text(_chapter("1").read_text() + "\n```{code-cell} ipython3\ndef f(x):\n    return x\n```\n")
    with pytest.raises(AssertionError, match="defines a function"):
        test_chapter_cells_call_the_library_and_hold_no_logic(fake)


@pytest.mark.parametrize("chapter", THIN, ids=lambda p: p.stem)
def test_labelled_equations_are_referenced(chapter):
    text = chapter.read_text()
    labels = re.findall(r"```\{math\}\n:label: ([\w-]+)", text)
    unreferenced = [lb for lb in labels if f"{{eq}}`{lb}`" not in text]
    assert not unreferenced, f"{chapter.name}: equations never referenced with {{eq}}: {unreferenced}"


@pytest.mark.parametrize("chapter", [_chapter("3"), _chapter("4"), _chapter("5")], ids=lambda p: p.stem)
def test_summary_states_takeaways_with_glued_numbers(chapter):
    text = chapter.read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert "Summary" in headings and headings.index("Summary") < headings.index("Exercises")
    if "Caveats" in headings:
        assert headings.index("Summary") < headings.index("Caveats")
    summary = text.split("\n## Summary\n", 1)[1].split("\n## ", 1)[0]
    bullets = re.findall(r"^- ", summary, flags=re.M)
    assert len(bullets) >= 3
    assert summary.count("{glue:text}") >= 5  # the numbers come from the run
    assert "{glue:md}" not in summary  # takeaways, not a generated verdict


@pytest.mark.parametrize("chapter", THIN, ids=lambda p: p.stem)
def test_figure_captions_hold_no_colon_space(chapter):
    # an unquoted ": " inside a caption is YAML's key separator: jupytext's reading of the chapter breaks
    for i, _, meta in _code_cells(chapter):
        caption = meta.get("mystnb", {}).get("figure", {}).get("caption")
        if caption is not None:
            assert isinstance(caption, str) and ": " not in caption, f"{chapter.name}, code cell {i}: {caption!r}"


# ----------------------------------------------------------------------------- figures read in the prose
ALL_CHAPTERS = sorted((REPO / "notebooks").glob("0[1-6]_*.md"))
_REF = re.compile(r"\{(?:numref|ref)\}`(?:[^`<]*<)?([\w-]+)>?`")
_DIRECTIVE_NAME = re.compile(r"^```\{(?:figure|glue:figure)\}[^\n]*\n(?:[^\n]*\n)*?:name: ([\w-]+)", flags=re.MULTILINE)


def figure_labels(chapter: Path) -> list[str]:
    """Every figure a chapter source defines: code cells with ``mystnb.figure`` metadata (its
    ``name``, or ``"<unlabelled: cell i>"`` when it has none) and ``{figure}`` / ``{glue:figure}``
    directives with a ``:name:``."""
    import jupytext

    nb = jupytext.read(chapter)
    labels = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "figure" in cell.metadata.get("mystnb", {}):
            labels.append(cell.metadata["mystnb"]["figure"].get("name") or f"<unlabelled: cell {i}>")
        elif cell.cell_type == "markdown":
            labels += _DIRECTIVE_NAME.findall(cell.source)
    return labels


def prose_references(chapter: Path) -> set[str]:
    """Labels referred to with ``{numref}`` or ``{ref}`` in the chapter's markdown cells (the prose,
    not code comments or figure captions)."""
    import jupytext

    nb = jupytext.read(chapter)
    return {m for c in nb.cells if c.cell_type == "markdown" for m in _REF.findall(c.source)}


@pytest.mark.parametrize("chapter", ALL_CHAPTERS, ids=lambda c: c.stem)
def test_every_figure_is_referenced_in_the_prose(chapter):
    labels = figure_labels(chapter)
    unlabelled = [lb for lb in labels if lb.startswith("<unlabelled")]
    assert not unlabelled, f"{chapter.name}: figures without a name (give them one): {unlabelled}"
    assert len(labels) == len(set(labels)), f"{chapter.name}: a figure name is used twice: {labels}"
    unreferenced = [lb for lb in labels if lb not in prose_references(chapter)]
    assert not unreferenced, f"{chapter.name}: figures never referred to with {{numref}} in the prose: {unreferenced}"


def test_figure_names_are_unique_across_the_book():
    # Sphinx's labels are global: a name used in two chapters fails the strict build
    seen: dict[str, str] = {}
    clashes = []
    for chapter in ALL_CHAPTERS:
        for label in figure_labels(chapter):
            if label in seen and seen[label] != chapter.stem:
                clashes.append(f"{label} ({seen[label]}, {chapter.stem})")
            seen.setdefault(label, chapter.stem)
    assert not clashes, f"figure names used in two chapters: {clashes}"


def test_every_chapter_has_figures_to_check():
    # the label search still finds the chapters' figures (a format change would make the test vacuous)
    counts = {c.stem: len(figure_labels(c)) for c in ALL_CHAPTERS}
    assert all(n >= 1 for n in counts.values()), counts
    assert sum(counts.values()) >= 25, counts


def test_the_figure_check_catches_an_unreferenced_figure(tmp_path):
    source = _chapter("1").read_text()
    figure = ("\n```{code-cell} ipython3\n---\nmystnb:\n  figure:\n    caption: A new figure.\n"
              "    name: fig-new\n---\n1 + 1\n```\n")
    fake = tmp_path / "01_fake.md"
    fake.write_text(source + figure)
    with pytest.raises(AssertionError, match="fig-new"):
        test_every_figure_is_referenced_in_the_prose(fake)
    fake.write_text(source + figure.replace("    name: fig-new\n", ""))  # no name: named in the failure
    with pytest.raises(AssertionError, match="without a name"):
        test_every_figure_is_referenced_in_the_prose(fake)
    fake.write_text(source + "\n```{figure} a.png\n:name: fig-directive\n\nA caption.\n```\n")
    with pytest.raises(AssertionError, match="fig-directive"):
        test_every_figure_is_referenced_in_the_prose(fake)
    # a mention in a code comment is not a reference; one in the prose is
    fake.write_text(source + figure.replace("1 + 1", "# {numref}`fig-new`\n1 + 1"))
    with pytest.raises(AssertionError, match="fig-new"):
        test_every_figure_is_referenced_in_the_prose(fake)
    fake.write_text(source + figure + "\n{numref}`Figure %s <fig-new>` shows a new figure.\n")
    test_every_figure_is_referenced_in_the_prose(fake)
