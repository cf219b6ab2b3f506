"""The book as delivered: offline HTML (local MathJax, no remote resources), launch and download
buttons, the injected-parameters cell, and the PDF (otlens.book, the runner's part of it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import yaml

from otlens import book
from otlens.book import NEVER_REQUESTED, RemoteReference, remote_references

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "book/executed/01_ot_across_depth"
REPOSITORY = "otlens/otlens"  # repository.url of _config.yml (a placeholder)

# ------------------------------------------------------------------------ remote references


def test_remote_references_flags_loaded_resources_only(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "page.html").write_text("""<html><head>
<script src="https://cdn.example.org/lib.js"></script>
<script src="../_static/local.js"></script>
<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Lato">
<link rel="preload" as="font" href="https://fonts.gstatic.com/a.woff2">
<link rel="canonical" href="https://otlens.example.org/page.html">
<link rel="next" href="https://otlens.example.org/next.html">
<script>const URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"; const NS = "http://www.w3.org/2000/svg";</script>
<style>body { background: url("https://img.example.org/bg.png"); }</style>
</head><body>
<a href="https://mybinder.org/v2/gh/otlens/otlens/main">Binder</a>
<img src="https://img.example.org/a.png" srcset="local.png 1x, https://img.example.org/b.png 2x">
<img src="data:image/png;base64,AAAA">
<iframe src="https://www.youtube.com/embed/x"></iframe>
<div style="background-image: url(https://img.example.org/c.png)"></div>
</body></html>""")
    (tmp_path / "theme.css").write_text(
        '@import "https://fonts.googleapis.com/css2?family=Inter";\n'
        ".a { src: url(https://fonts.gstatic.com/x.woff2) } .b { background: url(img/local.svg) }\n"
        '.c { background: url("data:image/svg+xml;charset=utf-8,%3Csvg xmlns=\'http://www.w3.org/2000/svg\'") }\n')
    (tmp_path / "app.js").write_text(
        'load("https://cdn.jsdelivr.net/npm/x@1/x.min.js"); const doc = "https://docs.example.org/help";\n'
        'const ns = "http://www.w3.org/1998/Math/MathML";\n'
        + "".join(f'a.url = "{url}";\n' for url in NEVER_REQUESTED))

    found = {(r.file, r.kind, r.url) for r in remote_references(tmp_path)}
    assert found == {
        ("sub/page.html", "script src", "https://cdn.example.org/lib.js"),
        ("sub/page.html", "link stylesheet", "//fonts.googleapis.com/css?family=Lato"),
        ("sub/page.html", "link preload", "https://fonts.gstatic.com/a.woff2"),
        ("sub/page.html", "inline script", "https://unpkg.com/thebe@0.8.2/lib/index.js"),
        ("sub/page.html", "inline style", "https://img.example.org/bg.png"),
        ("sub/page.html", "img src", "https://img.example.org/a.png"),
        ("sub/page.html", "img srcset", "https://img.example.org/b.png"),
        ("sub/page.html", "iframe src", "https://www.youtube.com/embed/x"),
        ("sub/page.html", "style url()", "https://img.example.org/c.png"),
        ("theme.css", "css url()", "https://fonts.googleapis.com/css2?family=Inter"),
        ("theme.css", "css url()", "https://fonts.gstatic.com/x.woff2"),
        ("app.js", "js loader", "https://cdn.jsdelivr.net/npm/x@1/x.min.js"),
    }


def test_remote_references_of_a_missing_build_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="build the book first"):
        remote_references(tmp_path / "nope")


def test_check_offline_command_reports_and_fails(tmp_path, capsys):
    (tmp_path / "index.html").write_text('<script src="https://cdn.example.org/a.js"></script>')
    assert book._main(["check-offline", str(tmp_path)]) == 1
    assert "index.html: script src: https://cdn.example.org/a.js" in capsys.readouterr().out
    (tmp_path / "index.html").write_text('<script src="_static/a.js"></script>')
    assert book._main(["check-offline", str(tmp_path)]) == 0


# ------------------------------------------------------------------- the Sphinx extension


def test_mathjax_is_installed_with_its_fonts():
    folder = book.mathjax_dir()
    assert (folder / "tex-mml-chtml.js").stat().st_size > 500_000
    assert list((folder / "output" / "chtml" / "fonts" / "woff-v2").glob("MathJax_Main-Regular.woff"))
    assert (folder.parent / "LICENSE").is_file()


def test_config_serves_mathjax_locally_and_loads_the_extension():
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert "otlens.book" in config["sphinx"]["extra_extensions"]
    path = config["sphinx"]["config"]["mathjax_path"]
    assert not re.match(r"^(https?:)?//", path) and path.startswith(book.MATHJAX_STATIC + "/")
    assert (book.mathjax_dir() / path.split("/", 1)[1]).is_file()
    assert not config["launch_buttons"].get("thebe")  # a Live Code button would load thebe from a CDN


def _app(**launch):
    config = SimpleNamespace(otlens_binder_path="notebooks/{stem}.ipynb", otlens_colab_branch="notebooks",
                             html_theme_options={"launch_buttons": launch})
    return SimpleNamespace(config=config, builder=SimpleNamespace(format="html"))


def _theme_buttons(pagename):
    """The launch group as sphinx-book-theme builds it (its URL scheme, for the page's .ipynb)."""
    path = f"{pagename}.ipynb"
    return [{"type": "group", "buttons": [
        {"type": "link", "text": "Binder",
         "url": f"https://mybinder.org/v2/gh/{REPOSITORY}/main?urlpath=lab/tree/{path}"},
        {"type": "link", "text": "Colab",
         "url": f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/{path}"},
    ]}]


def test_launch_buttons_of_a_chapter_open_its_source():
    context = {"header_buttons": _theme_buttons(CHAPTER)}
    book._point_launch_buttons(_app(), CHAPTER, context)
    binder, colab = context["header_buttons"][0]["buttons"]
    assert binder["url"] == (f"https://mybinder.org/v2/gh/{REPOSITORY}/main"
                             "?urlpath=lab/tree/notebooks/01_ot_across_depth.ipynb")
    assert colab["url"] == (f"https://colab.research.google.com/github/{REPOSITORY}"
                            "/blob/notebooks/book/executed/01_ot_across_depth.ipynb")


def test_launch_buttons_of_other_pages_are_left_alone():
    context = {"header_buttons": _theme_buttons("book/intro")}
    before = [dict(b) for b in context["header_buttons"][0]["buttons"]]
    book._point_launch_buttons(_app(), "book/intro", context)
    assert context["header_buttons"][0]["buttons"] == before


def test_thebe_loader_is_dropped_unless_live_code_is_on():
    from sphinx.builders.html._assets import _JavaScript

    def scripts():
        return [_JavaScript("doctools.js"), _JavaScript("sphinx-thebe.js", **{"async": "async"}),
                _JavaScript(None, body='const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"'),
                _JavaScript(None, body="var x = 1")]

    context = {"script_files": scripts()}
    book._drop_thebe_loader(_app(), context)
    assert [(js.filename, js.attributes.get("body")) for js in context["script_files"]] == [
        ("doctools.js", None), (None, "var x = 1")]
    context = {"script_files": scripts()}
    book._drop_thebe_loader(_app(thebe=True), context)
    assert len(context["script_files"]) == 4


def test_theme_keeps_search_in_the_sidebar_only(monkeypatch):
    config = SimpleNamespace(html_theme="sphinx_book_theme", html_theme_options={}, hide_solutions=False)
    monkeypatch.delenv(book.HIDE_SOLUTIONS_ENV, raising=False)
    book._theme_defaults(None, config)
    assert config.html_theme_options["navbar_persistent"] == []
    custom = SimpleNamespace(html_theme="sphinx_book_theme", html_theme_options={"navbar_persistent": ["x.html"]})
    book._theme_defaults(None, custom)
    assert custom.html_theme_options["navbar_persistent"] == ["x.html"]  # an explicit choice stays


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (0.2, "1 s"), (42.4, "42 s"), (60, "1 min"),
                                                (252, "4 min 12 s"), (3780, "1 h 03 min")])
def test_format_duration(seconds, text):
    assert book.format_duration(seconds) == text


def test_format_duration_rejects_nonsense():
    with pytest.raises(ValueError, match="seconds"):
        book.format_duration(-1)


# ------------------------------------------------------------ injected parameters (runner)


def test_injected_parameters_cell_is_collapsed_with_a_label(tmp_path):
    from otlens.runner import _stabilise

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("# Parameters\nn = 2\n", metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("print(n)")]
    source = tmp_path / "notebooks" / "x.md"
    for _ in range(2):  # idempotent: a second pass changes nothing
        nb = _stabilise(nb, source, tmp_path)
    parameters, injected, plain = nb.cells
    assert parameters.metadata == {"tags": ["parameters"]}  # the documented cell stays visible
    assert injected.metadata["tags"] == ["injected-parameters", "hide-input"]
    assert injected.metadata["mystnb"]["code_prompt_show"] == "Parameters of this run"
    assert "tags" not in plain.metadata and "mystnb" not in plain.metadata


# ----------------------------------------------------------------------------------- PDF


def test_find_chromium_prefers_the_environment_variable(monkeypatch):
    monkeypatch.setenv("OTLENS_CHROMIUM", "/opt/my/chrome")
    assert book.find_chromium() == "/opt/my/chrome"


def test_pdf_without_chromium_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    from otlens.cli import main

    monkeypatch.delenv("OTLENS_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no browser on PATH
    with pytest.raises(FileNotFoundError, match="apt-get install chromium"):
        book.build_pdf(REPO)
    assert main(["pdf"]) == 1
    assert "needs Chromium" in capsys.readouterr().err


# ------------------------------------------------------------------- the built tiny book


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])


def _links(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text())
    return parser


@pytest.mark.slow
def test_built_book_reads_offline(tiny_book):
    html = tiny_book / "_build" / "html"
    assert remote_references(html) == []
    assert (html / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()
    assert not (html / "_static" / "mathjax" / "latest.js").exists()  # the CDN-picking loader
    intro = _links(html / "book" / "intro.html")
    assert any(s.startswith("../_static/mathjax/tex-mml-chtml.js") for s in intro.scripts)


@pytest.mark.slow
def test_built_chapter_has_launch_and_download_buttons(tiny_book):
    html = tiny_book / "_build" / "html"
    hrefs = _links(html / f"{CHAPTER}.html").hrefs
    assert f"https://mybinder.org/v2/gh/{REPOSITORY}/main?urlpath=lab/tree/notebooks/01_ot_across_depth.ipynb" in hrefs
    assert (f"https://colab.research.google.com/github/{REPOSITORY}/blob/notebooks/"
            f"{CHAPTER}.ipynb") in hrefs
    download = "../../_sources/book/executed/01_ot_across_depth.ipynb"
    assert download in hrefs
    assert nbformat.read(html / "_sources" / f"{CHAPTER}.ipynb", as_version=4).cells
    assert not [h for h in hrefs if "urlpath=lab/tree/book/executed" in h]  # not the generated notebook


@pytest.mark.slow
def test_built_chapter_shows_measured_times_and_solutions(tiny_book):
    from otlens.runner import read_run_record

    page = (tiny_book / "_build" / "html" / f"{CHAPTER}.html").read_text()
    text = re.sub(r"<[^>]+>", "", page)
    record = read_run_record(tiny_book / f"{CHAPTER}.ipynb")
    assert f"Run time {book.format_duration(record['wall_time_s'])} with the quick profile" in text
    words = int(re.search(r"Reading time about \d+ min \(([\d,]+) words", text).group(1).replace(",", ""))
    assert 40 < words < 400  # the tiny chapter's prose, not its outputs
    assert "chapter-time" not in re.sub(r'class="[^"]*"', "", page)  # no role left unexpanded
    assert "The sum of the steps" in text  # the solution is shown by default
    assert "navbar-persistent--container" not in page  # no second search field in the top bar
    assert "search-button-field" in page  # the sidebar's search field stays


@pytest.mark.slow
def test_book_without_solutions(book_copy):
    from otlens.runner import build_book

    build_book(root=book_copy, progress=False, solutions=False)
    text = (book_copy / "_build" / "html" / f"{CHAPTER}.html").read_text()
    assert "the walk" in text and "What is the variance" in text  # the exercise stays
    assert "The sum of the steps" not in text


@pytest.mark.slow
def test_built_chapter_shows_injected_parameters_collapsed(tiny_book):
    page = (tiny_book / "_build" / "html" / f"{CHAPTER}.html").read_text()
    cell = re.search(r'<div class="cell tag_injected-parameters[^"]*"[^>]*>(.*?)</details>', page, re.S)
    assert cell and "tag_hide-input" in cell.group(0)
    assert "Parameters of this run" in cell.group(1)
    parameters = re.search(r'<div class="cell tag_parameters[^"]*"', page)
    assert parameters and "hide-input" not in parameters.group(0)  # the documented cell stays visible


@pytest.mark.slow
def test_pdf_of_the_tiny_book(tiny_book, tmp_path):
    if not book.find_chromium():
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); no PDF test")
    pdf = book.build_pdf(tiny_book, output=tmp_path / "book.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        assert int(re.search(r"Pages:\s+(\d+)", info).group(1)) >= 2
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert "A tiny chapter" in text and "A random walk." in text  # the chapter and its figure caption
