"""Tests for otlens.runner: parameter profiles, notebook execution, the toc, the book build.

Notebook-executing tests start a real kernel (about a second each) and are marked ``slow``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from otlens.runner import (
    BookBuildError,
    NotebookError,
    ParameterError,
    build_book,
    load_params,
    notebook_parameters,
    notebooks_in_toc,
    parse_value,
    project_root,
    run_notebook,
)

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A throwaway project root: params/, notebooks/ with the tiny notebooks, a toc."""
    (tmp_path / "params").mkdir()
    (tmp_path / "notebooks").mkdir()
    for name in ("tiny", "failing"):
        shutil.copy(DATA / f"{name}.md", tmp_path / "notebooks" / f"{name}.md")
    (tmp_path / "params" / "quick.yml").write_text(
        "defaults: {seed: 0, label: from-defaults, device: cpu}\n"
        "tiny: {n_items: 2}\n"
    )
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n"
        "  - file: book/executed/tiny\n  - file: book/reproduction\n  - file: book/executed/failing\n"
    )
    return tmp_path


# --------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("text", "expected"),
    [("256", 256), ("0.5", 0.5), ("1e-3", 1e-3), ("-2E+4", -2e4), ("true", True), ("false", False),
     ("[a, b]", ["a", "b"]), ("[4, 8]", [4, 8]), ("null", None), ("gemma3-270m", "gemma3-270m"),
     ("sentence-transformers/all-MiniLM-L12-v2", "sentence-transformers/all-MiniLM-L12-v2"),
     ("{a: 1}", {"a": 1}), ("cuda", "cuda"), ("a: b: c", "a: b: c")],
)
def test_parse_value_reads_yaml_scalars_and_lists(text, expected):
    assert parse_value(text) == expected


def test_notebook_parameters_reads_the_parameters_cell():
    assert notebook_parameters(DATA / "tiny.md") == {"n_items": 3, "label": "squares", "scale": 1.0}


def test_notebook_without_parameters_cell_is_an_error(tmp_path):
    path = tmp_path / "bare.md"
    path.write_text((DATA / "tiny.md").read_text().replace(":tags: [parameters]\n", ""))
    with pytest.raises(ParameterError, match="exactly one cell tagged `parameters`; found 0"):
        notebook_parameters(path)


def test_load_params_applies_defaults_section_then_overrides(project):
    notebook = project / "notebooks" / "tiny.md"
    assert load_params(notebook) == {"label": "from-defaults", "n_items": 2}
    params = load_params(notebook, overrides={"n_items": 5, "scale": 0.5})
    assert params == {"label": "from-defaults", "n_items": 5, "scale": 0.5}


def test_defaults_apply_only_to_declared_keys(project):
    # `seed` and `device` are in `defaults` but not in failing.md: silently not injected.
    assert load_params(project / "notebooks" / "failing.md") == {}


def test_load_params_accepts_a_profile_path(project, tmp_path):
    profile = tmp_path / "custom.yml"
    profile.write_text("tiny: {label: custom}\n")
    assert load_params(project / "notebooks" / "tiny.md", profile=profile) == {"label": "custom"}


def test_unknown_override_lists_valid_parameters(project):
    with pytest.raises(ParameterError, match=r"'n_texts'.*Valid parameters: n_items, label, scale"):
        load_params(project / "notebooks" / "tiny.md", overrides={"n_texts": 4})


def test_unknown_key_in_profile_section_is_an_error(project):
    (project / "params" / "quick.yml").write_text("tiny: {bogus: 1}\n")
    with pytest.raises(ParameterError, match=r"'bogus'.*section 'tiny'"):
        load_params(project / "notebooks" / "tiny.md")


def test_malformed_profile_section_is_an_error(project):
    (project / "params" / "quick.yml").write_text("tiny: [1, 2]\n")
    with pytest.raises(ParameterError, match="Section 'tiny'.*must be a mapping"):
        load_params(project / "notebooks" / "tiny.md")


def test_missing_profile_names_known_profiles(project):
    with pytest.raises(FileNotFoundError, match=r"Profile 'paper' not found.*Known profiles: \['quick'\]"):
        load_params(project / "notebooks" / "tiny.md", profile="paper")


def test_profile_extends_another_section_by_section(project):
    """``extends: quick``: the base's values, overlaid key by key; the notebook's own defaults below."""
    (project / "params" / "small.yml").write_text("extends: quick\ntiny: {label: smaller}\n")
    assert load_params(project / "notebooks" / "tiny.md", profile="small") == {
        **load_params(project / "notebooks" / "tiny.md"), "label": "smaller"}
    assert load_params(project / "notebooks" / "tiny.md", profile="small")["n_items"] == 2  # from quick
    (project / "params" / "quick.yml").write_text("extends: small\n")
    with pytest.raises(ParameterError, match="cycle: small.yml -> quick.yml -> small.yml"):
        load_params(project / "notebooks" / "tiny.md", profile="small")
    (project / "params" / "small.yml").write_text("extends: [quick]\n")
    with pytest.raises(ParameterError, match="must name one profile"):
        load_params(project / "notebooks" / "tiny.md", profile="small")
    (project / "params" / "small.yml").write_text("extends: large\n")
    with pytest.raises(FileNotFoundError, match="Profile 'large' not found"):
        load_params(project / "notebooks" / "tiny.md", profile="small")


def test_paper_cpu_profile_is_the_paper_profile_with_its_reductions_only():
    """What paper-cpu changes is exactly what its file sets; every other value is the paper's."""
    import yaml

    own = yaml.safe_load((REPO / "params" / "paper-cpu.yml").read_text())
    assert own.pop("extends") == "paper"
    for chapter in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.md")):
        cpu, paper = load_params(chapter, profile="paper-cpu"), load_params(chapter, profile="paper")
        changed = {k for k in cpu if cpu[k] != paper.get(k)}
        assert changed == {k for k, v in own.get(chapter.stem, {}).items() if v != paper.get(k)}, chapter.stem
        assert changed <= set(own.get(chapter.stem, {}))


@pytest.mark.parametrize("profile", ["quick", "paper", "paper-cpu"])
def test_profiles_give_the_verdicts_their_minimum_replicates(profile):
    """A profile that runs fewer sizes, seeds or lists than a rule needs makes its verdict underpowered by design."""
    from otlens.verdicts import MIN_REPLICATES

    ch3 = load_params(REPO / "notebooks" / "03_attention_as_ot.md", profile=profile)
    ch4 = load_params(REPO / "notebooks" / "04_ot_at_scale.md", profile=profile)
    assert len(ch3["sort_seeds"]) >= MIN_REPLICATES  # lists per length
    assert len(ch4["scaling_sizes"]) >= MIN_REPLICATES  # FRLC's memory slope
    for stem in ("01_ot_across_depth", "05_training_dynamics"):
        assert len(load_params(REPO / "notebooks" / f"{stem}.md", profile=profile)["seeds"]) >= MIN_REPLICATES


def test_repository_profiles_parse_and_have_defaults():
    for name in ("quick", "paper"):
        text = (REPO / "params" / f"{name}.yml").read_text()
        import yaml

        config = yaml.safe_load(text)
        assert config["defaults"] == {"device": "cpu", "seed": 0}


TYPED_CELL = """n_items = 3
label = "squares"
scale = 1.0
verbose = True
seeds = [0, 1]
models = ["a", "b"]
mixed = [1, "a"]
options = {"k": 1}
model = None
sweep_model = None
heatmap_model = None
extra = None
size = len("abc")
"""


@pytest.fixture
def typed(project) -> Path:
    """A chapter whose parameters cell has one default of every kind."""
    source = (DATA / "tiny.md").read_text()
    cell = source[source.index("n_items = 3"):source.index("```", source.index("n_items = 3"))]
    path = project / "notebooks" / "typed.md"
    path.write_text(source.replace(cell, TYPED_CELL))
    return path


@pytest.mark.parametrize(("given", "expected"), [
    ({"seeds": 3}, {"seeds": [3]}),  # `-p seeds 3`: was a TypeError deep in the chapter
    ({"models": "minilm-l6"}, {"models": ["minilm-l6"]}),  # was iterated letter by letter
    ({"seeds": (4, 5)}, {"seeds": [4, 5]}),
    ({"n_items": 1e3}, {"n_items": 1000}),  # YAML reads `1e3` as a float
    ({"scale": 2}, {"scale": 2.0}),
    ({"mixed": "x"}, {"mixed": ["x"]}),
    ({"extra": [1, 2], "options": {}}, {"extra": [1, 2], "options": {}}),  # a None default takes anything
    ({"size": "anything"}, {"size": "anything"}),  # so does a default that is not a literal
])
def test_values_are_converted_to_the_type_of_the_default(typed, given, expected):
    params = load_params(typed, overrides=given)
    assert {k: params[k] for k in expected} == expected
    assert all(type(params[k]) is type(v) for k, v in expected.items())


@pytest.mark.parametrize(("given", "expected", "shown"), [
    ({"n_items": "many"}, "an integer", "'many' (str)"),
    ({"n_items": 2.5}, "an integer", "2.5 (float)"),
    ({"n_items": True}, "an integer", "True (bool)"),
    ({"scale": "big"}, "a number", "'big' (str)"),
    ({"verbose": [1]}, "true or false", "[1] (list)"),
    ({"verbose": 1}, "true or false", "1 (int)"),
    ({"label": ["a", "b"]}, "a string", "['a', 'b'] (list)"),
    ({"label": None}, "a string", "None (NoneType)"),
    ({"seeds": ["a"]}, "a list of integers", "['a'] (list): element 'a' is not an integer"),
    ({"seeds": {"a": 1}}, "a list of integers", "{'a': 1} (dict)"),
    ({"models": [1]}, "a list of strings", "[1] (list): element 1 is not a string"),
    ({"options": [1]}, "a mapping", "[1] (list)"),
])
def test_a_value_of_the_wrong_type_is_an_error_naming_the_parameter(typed, given, expected, shown):
    (name, value), = given.items()
    with pytest.raises(ParameterError) as info:
        load_params(typed, overrides=given)
    message = str(info.value)
    assert message.startswith(f"Parameter {name!r} (overrides) must be {expected} (its default is ")
    assert f"got {shown}" in message and "\n" not in message


def test_a_number_for_a_string_parameter_says_how_to_quote_it(typed):
    with pytest.raises(ParameterError, match=r"""'label'.*got 12 \(int\); quote it .* -p label '"12"'"""):
        load_params(typed, overrides={"label": 12})


def test_profile_values_are_type_checked_naming_the_section(typed):
    (typed.parent.parent / "params" / "quick.yml").write_text("typed: {seeds: 3, n_items: [1]}\n")
    with pytest.raises(ParameterError, match=r"'n_items' \(section 'typed' of .*quick.yml\) must be an integer"):
        load_params(typed)
    (typed.parent.parent / "params" / "quick.yml").write_text("typed: {seeds: 3}\n")
    assert load_params(typed) == {"seeds": [3]}


def test_model_override_replaces_every_model_key_of_the_profile(typed):
    (typed.parent.parent / "params" / "quick.yml").write_text(
        "typed: {models: [a, b], sweep_model: a, heatmap_model: b}\n")
    assert load_params(typed, overrides={"model": "c"}) == {
        "models": ["c"], "sweep_model": "c", "heatmap_model": "c", "model": "c"}
    # a model key given as well wins
    assert load_params(typed, overrides={"model": "c", "heatmap_model": "b"})["heatmap_model"] == "b"
    # a new list of models drops the profile's choices that are not in it (the chapter's default applies)
    assert load_params(typed, overrides={"models": "b"}) == {
        "models": ["b"], "sweep_model": None, "heatmap_model": "b"}
    # without overrides the profile stands
    assert load_params(typed)["heatmap_model"] == "b"


def test_chapter_1_single_model_run_uses_that_model_only():
    params = load_params(REPO / "notebooks" / "01_ot_across_depth.md", overrides={"model": "gemma3-270m"})
    assert params["models"] == ["gemma3-270m"]
    model_keys = [k for k in params if k.endswith("_model")]
    assert model_keys and {params[k] for k in model_keys} == {"gemma3-270m"}
    params = load_params(REPO / "notebooks" / "01_ot_across_depth.md", overrides={"model": "minilm-l6"})
    assert "gemma3-270m" not in str(params)


@pytest.mark.parametrize("profile", ["quick", "paper", "paper-cpu"])
def test_repository_profiles_pass_the_type_checks(profile):
    for chapter in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.md")):
        params = load_params(chapter, profile=profile)
        declared = notebook_parameters(chapter)
        for name, value in params.items():  # nothing was converted: the profiles hold the right types
            assert value == declared[name] or declared[name] is None or type(value) is type(declared[name]), name


@pytest.mark.parametrize(("text", "where"), [
    ("tiny: {n_items: 2\n", "line 2, column 1"),
    ("tiny:\n  n_items: 2\n label: x\n", "line 3, column 2"),
    ("tiny: {a: [1, 2}\n", "line 1"),
])
def test_malformed_profile_yaml_is_one_line_error(project, text, where):
    (project / "params" / "quick.yml").write_text(text)
    with pytest.raises(ParameterError) as info:
        load_params(project / "notebooks" / "tiny.md")
    message = str(info.value)
    assert message.startswith(f"Profile {project / 'params' / 'quick.yml'} is not valid YAML: ")
    assert where in message and "\n" not in message


@pytest.mark.parametrize(("name", "content"), [
    ("broken.ipynb", b"{not json"),
    ("latin.md", "# caf\u00e9\n".encode("latin-1")),
])
def test_unreadable_notebook_is_a_parameter_error(project, name, content):
    path = project / "notebooks" / name
    path.write_bytes(content)
    with pytest.raises(ParameterError) as info:
        load_params(path)
    message = str(info.value)
    assert message.startswith(f"Cannot read notebook {path}: ") and "\n" not in message


def test_project_root_walks_up_to_the_marker(project):
    assert project_root(project / "notebooks") == project.resolve()


# --------------------------------------------------------------------------------------- toc


def test_notebooks_in_toc_follow_toc_order_and_skip_pages(project):
    assert notebooks_in_toc(project / "_toc.yml") == [
        project.resolve() / "notebooks" / "tiny.md",
        project.resolve() / "notebooks" / "failing.md",
    ]


def test_notebooks_in_toc_reads_parts_and_sections(project):
    (project / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n"
        "  - caption: One\n    chapters:\n      - file: book/executed/failing\n"
        "        sections:\n          - file: book/executed/tiny\n"
    )
    assert [p.stem for p in notebooks_in_toc(project / "_toc.yml")] == ["failing", "tiny"]


def test_notebooks_in_toc_reports_a_missing_source(project):
    (project / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/executed/02_nope\n")
    with pytest.raises(FileNotFoundError, match="book/executed/02_nope.*notebooks/02_nope"):
        notebooks_in_toc(project / "_toc.yml")


def test_repository_toc_lists_every_chapter_in_order():
    import yaml

    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    assert toc["root"] == "book/intro"
    executed = [c["file"] for c in toc["chapters"] if c["file"].startswith("book/executed/")]
    sources = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.md"))
    assert executed == [f"book/executed/{stem}" for stem in sources]
    assert executed[-1].endswith("_reproduction")  # it reads the other chapters' results: last


# --------------------------------------------------------------------------------- execution


@pytest.mark.slow
def test_run_notebook_injects_parameters_and_sets_environment(project, monkeypatch):
    monkeypatch.delenv("OTLENS_RESULTS", raising=False)
    out = run_notebook(project / "notebooks" / "tiny.md", parameters={"scale": 2.0}, progress=False)
    assert out == project.resolve() / "book" / "executed" / "tiny.ipynb"
    nb = nbformat.read(out, as_version=4)
    nbformat.validate(nb)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "from-defaults [0.0, 2.0]" in text  # label from defaults, n_items from the section
    assert f"results: {project.resolve() / 'results'}" in text
    assert "hashseed: 0" in text
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "scale = 2.0" in injected[0].source
    assert nb.metadata.papermill == {
        "input_path": "notebooks/tiny.md",
        "parameters": {"label": "from-defaults", "n_items": 2, "scale": 2.0},
        "version": nb.metadata.papermill["version"],
    }


@pytest.mark.slow
def test_kernel_runs_this_interpreter_despite_other_kernelspecs(project, tmp_path, monkeypatch):
    # A `python3` kernelspec earlier on the Jupyter path that points at a python that does not exist.
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": ["/nonexistent/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
         "display_name": "elsewhere", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    out = run_notebook(project / "notebooks" / "tiny.md", progress=False)
    assert "from-defaults [0.0, 1.0]" in out.read_text()


@pytest.mark.slow
def test_run_twice_gives_identical_files(project):
    notebook = project / "notebooks" / "tiny.md"
    first = run_notebook(notebook, progress=False).read_bytes()
    second = run_notebook(notebook, progress=False).read_bytes()
    assert first == second
    nb = nbformat.reads(first.decode(), as_version=4)
    assert [c.id for c in nb.cells] == [f"tiny-{i}" for i in range(len(nb.cells))]
    for key in ("start_time", "end_time", "duration", "iopub.execute_input"):
        assert key not in first.decode()
    assert "it/s" not in first.decode()  # no progress bar timings


@pytest.mark.slow
def test_executed_notebook_has_no_stderr_outputs(project):
    # tiny.md's progress bar writes to stderr, and so does a warning
    notebook = project / "notebooks" / "tiny.md"
    notebook.write_text(notebook.read_text().replace(
        'print("results:"', 'import warnings; warnings.warn("from " + os.getcwd())\nprint("results:"'))
    nb = nbformat.read(run_notebook(notebook, progress=False), as_version=4)
    streams = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"]
    assert streams and {o.name for o in streams} == {"stdout"}
    assert "from-defaults [0.0, 1.0]" in "".join(o.text for o in streams)  # what cells print stays
    text = nbformat.writes(nb)
    assert "loop:" not in text and "UserWarning" not in text


@pytest.mark.slow
def test_failing_notebook_raises_notebook_error_and_keeps_partial(project):
    notebook = project / "notebooks" / "failing.md"
    with pytest.raises(NotebookError) as info:
        run_notebook(notebook, progress=False)
    error = info.value
    message = str(error)
    assert "notebooks/failing.md" in message
    assert "cell 4" in message and "ratio = numerator / divisor" in message
    assert "ZeroDivisionError: division by zero" in message
    assert (error.cell_index, error.ename) == (4, "ZeroDivisionError")
    failed = project.resolve() / "book" / "executed" / "failing.failed.ipynb"
    assert error.executed_path == failed and failed.is_file()
    assert "ZeroDivisionError" in failed.read_text()
    assert not (project / "book" / "executed" / "failing.ipynb").exists()
    assert not list((project / "book" / "executed").glob(".*"))  # no in-progress leftovers

    # A successful run replaces the failure record.
    run_notebook(notebook, parameters={"divisor": 4}, progress=False)
    assert not failed.exists()


@pytest.mark.slow
def test_output_dir_outside_the_project(project, tmp_path):
    out = run_notebook(project / "notebooks" / "tiny.md", output_dir=tmp_path / "elsewhere",
                       progress=False)
    assert out == tmp_path / "elsewhere" / "tiny.ipynb" and out.is_file()


# ---------------------------------------------------------------------------------------- book


def test_build_book_without_execute_needs_executed_notebooks(project):
    with pytest.raises(BookBuildError, match="book/executed/tiny.ipynb does not exist"):
        build_book(root=project, execute=False)


def test_build_book_rejects_overrides_for_unknown_chapters(project):
    with pytest.raises(ParameterError, match="No chapter named \\['nope'\\]"):
        build_book(root=project, parameters_by_notebook={"nope": {"a": 1}})


@pytest.mark.slow
def test_book_builds_with_warnings_as_errors(book_copy):
    index = build_book(root=book_copy, progress=False)
    assert index == book_copy / "_build" / "html" / "index.html" and index.is_file()
    chapter = (book_copy / "_build" / "html" / "book" / "executed" / "01_ot_across_depth.html").read_text()
    assert "<img" in chapter and "A random walk." in chapter  # the figure and its caption
    assert "Cuturi, 2013" in chapter  # the citation resolved against references.bib
    assert "work: 100%" not in chapter  # stderr (progress bars) is not rendered
    assert "google.colab" not in chapter  # the install cell is in the .ipynb, not on the page
    executed = nbformat.read(book_copy / "book" / "executed" / "01_ot_across_depth.ipynb", as_version=4)
    assert "google.colab" in executed.cells[0].source
    intro = (book_copy / "_build" / "html" / "book" / "intro.html").read_text()
    assert "Sinkhorn distances" in intro  # the bibliography is rendered on the introduction page


@pytest.mark.slow
def test_book_build_fails_on_a_warning(book_copy):
    chapter = book_copy / "notebooks" / "01_ot_across_depth.md"
    chapter.write_text(chapter.read_text().replace("{numref}`fig-walk`", "{numref}`fig-missing`"))
    with pytest.raises(BookBuildError, match="failed with exit code"):
        build_book(root=book_copy, progress=False)


@pytest.mark.parametrize("profile", ["quick", "paper", "paper-cpu"])
def test_parameterised_copy_of_each_chapter_holds_what_a_run_injects(tmp_path, profile):
    from otlens.runner import find_chapter, parameterised_copy, read_notebook

    for number in range(1, 7):
        chapter = find_chapter(number, REPO)
        overrides = {"seed": 3} if "seed" in notebook_parameters(chapter) else {}
        out = parameterised_copy(chapter, tmp_path / f"{chapter.stem}.ipynb", profile=profile,
                                 parameters=overrides)
        nb = nbformat.read(out, as_version=4)
        cell, = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        namespace: dict = {}
        exec(cell.source, namespace)  # the copy's cell, run as the kernel would run it
        expected = {**notebook_parameters(chapter), **load_params(chapter, profile=profile, overrides=overrides)}
        assert {k: namespace[k] for k in expected} == expected
        assert len(nb.cells) == len(read_notebook(chapter).cells)  # nothing added or lost
        assert namespace.get("seed", 3) == 3


@pytest.mark.slow
def test_executed_notebook_starts_with_the_colab_install_cell(project):
    notebook = project / "notebooks" / "tiny.md"
    plain = nbformat.read(run_notebook(notebook, progress=False), as_version=4)
    assert not [c for c in plain.cells if "otlens-install" in c.metadata.get("tags", [])]  # no repository
    (project / "_config.yml").write_text("repository: {url: https://github.com/a/b, branch: main}\n")
    nb = nbformat.read(run_notebook(notebook, progress=False), as_version=4)
    first = nb.cells[0]
    assert first.metadata.tags == ["remove-cell", "otlens-install"]
    assert '"google.colab" in sys.modules' in first.source and "git+https://github.com/a/b@main" in first.source
    assert first.outputs == [] and first.execution_count is None  # not run here
    assert [c.source for c in nb.cells[1:]] == [c.source for c in plain.cells]
    assert [c.id for c in nb.cells] == [f"tiny-{i}" for i in range(len(nb.cells))]


def test_a_broken_repository_setting_fails_before_running(project):
    (project / "_config.yml").write_text("repository: {branch: main}\n")
    with pytest.raises(ParameterError, match="`repository` in .*_config.yml must have a `url`"):
        run_notebook(project / "notebooks" / "tiny.md", progress=False)
    assert not (project / "book").exists()


# ------------------------------------------------------------------------------ run record


@pytest.mark.slow
def test_run_records_its_wall_time_beside_the_notebook(project):
    import time

    from otlens.runner import read_run_record

    t0 = time.perf_counter()
    out = run_notebook(project / "notebooks" / "tiny.md", parameters={"scale": 2.0}, progress=False)
    elapsed = time.perf_counter() - t0
    record = read_run_record(out)
    assert record["notebook"] == "tiny" and record["profile"] == "quick"
    assert record["overrides"] == ["scale"]
    assert 0 < record["wall_time_s"] <= elapsed  # measured inside the call, kernel start included
    assert (out.parent / "tiny.run.json").is_file()
    assert "wall_time_s" not in out.read_text()  # the notebook itself stays byte-stable


def test_run_record_missing_or_malformed(tmp_path):
    from otlens.runner import read_run_record

    assert read_run_record(tmp_path / "x.ipynb") is None
    (tmp_path / "x.run.json").write_text('{"notebook": "x"}')
    with pytest.raises(ValueError, match="not a run record"):
        read_run_record(tmp_path / "x.ipynb")
