"""Delivering the book: offline HTML, the PDF, launch links, and a check for remote resources.

Three pieces:

- A Sphinx extension (``sphinx: extra_extensions: [otlens.book]`` in ``_config.yml``) that

  * copies MathJax 3 from the ``django-static-mathjax`` package (PyPI; the ``book`` extra) into
    ``_static/mathjax`` of every HTML build, so that ``mathjax_path: mathjax/tex-mml-chtml.js``
    typesets the math with no network;
  * sets the theme's colour mode to "auto" (its empty default logs a console error);
  * drops sphinx-thebe's script loader (a CDN address) from pages when the Live Code button is off;
  * points the theme's launch buttons at the chapter *sources*: Binder opens
    ``notebooks/<stem>.ipynb`` (``postBuild`` converts the jupytext sources there), Colab opens the
    executed chapter that the Pages workflow publishes on the branch ``otlens_colab_branch``.

  * removes the theme's second search field from the top bar (``navbar_persistent``: the
    search field stays in the sidebar), which otherwise shows an empty bar holding only a
    search box at widths of 992 px and more;
  * adds the role ``{chapter-time}`run``` (the wall time of the run that produced the page, from
    the run record ``<stem>.run.json`` that :func:`otlens.runner.run_notebook` writes beside the
    executed notebook) and ``{chapter-time}`reading``` (the page's words at
    :data:`WORDS_PER_MINUTE`), both measured, never typed;
  * hides the exercises' solutions (sphinx-exercise's ``hide_solutions``) when the environment
    variable ``OTLENS_HIDE_SOLUTIONS`` is 1 (``otlens book --no-solutions``).

- :func:`remote_references`: every resource an HTML tree would load from the network (scripts,
  stylesheets, images, frames, fonts, script loaders). Plain ``<a href>`` links are fine.

- :func:`build_pdf`: the single-page HTML book printed to one PDF by headless Chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "RemoteReference",
    "WORDS_PER_MINUTE",
    "build_pdf",
    "format_duration",
    "find_chromium",
    "mathjax_dir",
    "print_pdf",
    "remote_references",
    "setup",
]

MATHJAX_STATIC = "mathjax"  # folder under _static/ that receives MathJax's es5/ tree
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_REMOTE = re.compile(r"^(?:https?:)?//", re.IGNORECASE)

# ------------------------------------------------------------------------------------ MathJax


def mathjax_dir() -> Path:
    """Return the folder of MathJax 3's browser components (``es5/``, holding ``tex-mml-chtml.js``).

    Returns
    -------
    pathlib.Path
        The ``es5/`` folder.

    Raises
    ------
    ModuleNotFoundError
        If ``django-static-mathjax`` (which ships MathJax 3.2.2 as the module ``mathjax``) is missing.
    """
    try:
        import mathjax
    except ImportError as exc:
        raise ModuleNotFoundError(
            "MathJax for the offline book comes from the PyPI package django-static-mathjax; "
            "install it with `pip install -e '.[book]'`."
        ) from exc
    folder = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (folder / "tex-mml-chtml.js").is_file():
        raise FileNotFoundError(f"MathJax's tex-mml-chtml.js not found under {folder}.")
    return folder


def _copy_mathjax(app, exception) -> None:
    """``build-finished``: copy MathJax into ``_static/mathjax`` of an HTML build.

    Only when ``mathjax_path`` is ``mathjax/<component>.js``. Of MathJax's top-level combined
    components only that one is copied (``latest.js``, a loader that picks a CDN, stays out);
    the folders (TeX extensions, fonts, menu, accessibility, speech maps) are what it loads lazily.
    """
    if exception is not None or app.builder.format != "html":
        return
    folder, _, component = str(app.config.mathjax_path).partition("/")
    if folder != MATHJAX_STATIC or "/" in component:
        return
    source = mathjax_dir()
    if not (source / component).is_file():
        raise FileNotFoundError(f"mathjax_path names {component}, which is not in {source}.")
    target = Path(app.outdir) / "_static" / MATHJAX_STATIC

    def skip(directory: str, names: list[str]) -> list[str]:
        if Path(directory) != source:
            return []
        return [n for n in names if n.endswith(".js") and n != component]

    shutil.copytree(source, target, ignore=skip, dirs_exist_ok=True)
    shutil.copy2(source.parent / "LICENSE", target / "LICENSE")  # MathJax is Apache-2.0


# ------------------------------------------------------------------------------ page context


def _drop_thebe_loader(app, context: dict[str, Any]) -> None:
    """Remove sphinx-thebe's scripts (one names the thebe CDN) when the Live Code button is off."""
    launch = app.config.html_theme_options.get("launch_buttons", {})
    if launch.get("thebe") or "script_files" not in context:
        return
    context["script_files"][:] = [
        js for js in context["script_files"]
        if not (js.filename and js.filename.endswith("sphinx-thebe.js"))
        and "THEBE_JS_URL" not in (js.attributes.get("body") or "")
    ]


def _chapter_stem(pagename: str) -> str | None:
    """``book/executed/01_x`` → ``01_x``; other pages → None."""
    from otlens.runner import EXECUTED_DIR

    folder, _, stem = pagename.rpartition("/")
    return stem if folder == EXECUTED_DIR else None


def _point_launch_buttons(app, pagename: str, context: dict[str, Any]) -> None:
    """Rewrite the theme's Binder and Colab links of a chapter so they open its source."""
    stem = _chapter_stem(pagename)
    if stem is None:
        return
    from otlens.runner import EXECUTED_DIR

    executed = f"{EXECUTED_DIR}/{stem}.ipynb"
    binder_path = app.config.otlens_binder_path.format(stem=stem)
    colab_branch = app.config.otlens_colab_branch
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []) if isinstance(group, dict) else []:
            url = button.get("url", "")
            if button.get("text") == "Binder" and "urlpath=" in url:
                head, _, urlpath = url.partition("urlpath=")
                button["url"] = head + "urlpath=" + urlpath.replace(executed, binder_path)
            elif button.get("text") == "Colab":
                button["url"] = re.sub(rf"/blob/[^/]+/{re.escape(executed)}$",
                                       f"/blob/{colab_branch}/{executed}", url)


def _default_mode(app, config) -> None:
    """``config-inited``: an explicit colour mode ("auto"). The theme's empty default makes every
    first visit log a console error ("Got invalid theme mode: . Resetting to auto.")."""
    if config.html_theme in ("sphinx_book_theme", "pydata_sphinx_theme"):
        config.html_context.setdefault("default_mode", "auto")


def _theme_defaults(app, config) -> None:
    """``config-inited``: no search field in the top bar (the sidebar has one), and the solutions
    hidden when ``OTLENS_HIDE_SOLUTIONS=1``.

    pydata-sphinx-theme (>= 0.16) fills ``navbar_persistent`` with a search field unless the option
    is set; sphinx-book-theme leaves the rest of that bar empty, so wide pages showed an empty top
    bar with a second search box.
    """
    if config.html_theme in ("sphinx_book_theme", "pydata_sphinx_theme"):
        config.html_theme_options.setdefault("navbar_persistent", [])
    if os.environ.get(HIDE_SOLUTIONS_ENV) == "1" and "hide_solutions" in config:
        config.hide_solutions = True


# --------------------------------------------------------------- reading time and run time

WORDS_PER_MINUTE = 200  # reading speed assumed for the reading time of a page (technical prose)
HIDE_SOLUTIONS_ENV = "OTLENS_HIDE_SOLUTIONS"
_TIME_KINDS = ("run", "reading")


def format_duration(seconds: float) -> str:
    """``42 s``, ``4 min 12 s``, ``1 h 03 min``: a wall time for the page.

    Parameters
    ----------
    seconds : float
        The wall time in seconds.

    Returns
    -------
    str
        Whole seconds under a minute (a positive time under half a second shows as ``1 s``),
        minutes and seconds under an hour, else hours and minutes.

    Raises
    ------
    ValueError
        If ``seconds`` is negative or not finite.
    """
    import math

    seconds = float(seconds)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"`seconds` must be a finite number >= 0; got {seconds}")
    whole = int(round(seconds))
    if whole < 60:
        return f"{max(whole, 1) if seconds > 0 else 0} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60:02d} min"


def _time_node_class():
    from docutils import nodes

    class chapter_time(nodes.inline):  # noqa: N801 - docutils node naming
        """Placeholder for ``{chapter-time}``; replaced by text when the page's doctree is read."""

    return chapter_time


_CHAPTER_TIME = None


def _chapter_time_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{chapter-time}`run``` or ``{chapter-time}`reading```: a placeholder filled in on doctree-read."""
    kind = text.strip()
    if kind not in _TIME_KINDS:
        message = inliner.reporter.error(
            f"chapter-time takes one of {', '.join(_TIME_KINDS)}; got {kind!r}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, message)], [message]
    node = _CHAPTER_TIME(rawtext, "")
    node["kind"] = kind
    return [node], []


def reading_words(doctree) -> int:
    """Words a reader reads on a page: its text, without code, cell outputs, math or raw HTML.

    Code inputs count (they are read), outputs of code cells (tables, printed text, figures) and
    the bibliography do not.
    """
    from docutils import nodes

    skipped = (nodes.literal_block, nodes.raw, nodes.math, nodes.math_block, nodes.comment)

    def skip(node) -> bool:
        classes = set(node.get("classes", [])) if isinstance(node, nodes.Element) else set()
        return isinstance(node, skipped) or bool(classes & {"cell_output", "bibliography"})

    words = 0
    stack = [doctree]
    while stack:
        node = stack.pop()
        if skip(node):
            if isinstance(node, nodes.literal_block) and "cell_input" in set(
                    getattr(node.parent, "get", lambda *_: [])("classes", [])):
                words += len(node.astext().split())
            continue
        if isinstance(node, nodes.Text):
            words += len(node.astext().split())
        else:
            stack.extend(node.children)
    return words


def _provenance_text(record: dict) -> str:
    """Where the page comes from, from its run record: edition, parameters, commit, device."""
    if "parameters_sha256" not in record:
        return ""
    edition = "quick" if record.get("profile") == "quick" else "paper"
    commit = (record.get("commit") or "unknown")[:10] + (" with local changes" if record.get("dirty") else "")
    return (f"; {edition} edition, parameters sha256 {record['parameters_sha256'][:12]}, "
            f"otlens commit {commit}, on {record.get('device', '?')}")


def _fill_chapter_times(app, doctree) -> None:
    """``doctree-read``: replace the ``{chapter-time}`` placeholders of one page by their values."""
    from docutils import nodes
    from sphinx.util import logging

    from otlens.runner import RUN_RECORD_SUFFIX, read_run_record

    placeholders = list(doctree.findall(_CHAPTER_TIME))
    if not placeholders:
        return
    docname = app.env.docname
    logger = logging.getLogger(__name__)
    words = reading_words(doctree)
    executed = Path(app.srcdir) / docname
    record_path = executed.with_name(executed.name + RUN_RECORD_SUFFIX)
    for node in placeholders:
        if node["kind"] == "reading":
            minutes = max(1, -(-words // WORDS_PER_MINUTE))
            text = f"about {minutes} min ({words:,} words at {WORDS_PER_MINUTE} a minute)"
        else:
            if record_path.exists():
                app.env.note_dependency(str(record_path))
            record = read_run_record(executed)
            if record is None:
                logger.warning(f"no run record {record_path.name} beside the executed notebook: run "
                               f"the chapter with `otlens run` or `otlens book` to measure its run time",
                               location=node)
                text = "not measured"
            else:
                given = record.get("overrides") or []
                text = (f"{format_duration(record['wall_time_s'])} with the {record['profile']} profile"
                        + (f" and {', '.join(given)} overridden" if given else "")
                        + f" ({record.get('cpu_count') or '?'} CPU cores; measured in the run that made this page)"
                        + _provenance_text(record))
        node.replace_self(nodes.inline(node.rawsource, text, classes=["chapter-time"]))


def _page_context(app, pagename, templatename, context, doctree) -> None:
    if app.builder.format != "html":
        return
    _drop_thebe_loader(app, context)
    _point_launch_buttons(app, pagename, context)


def _html_handlers_for_singlehtml(app) -> None:
    """``builder-inited``: give the single-page builder every node handler registered for ``html``.

    Sphinx looks a translator's node handlers up by builder name and falls back to the format
    (``html``) only when no extension registered anything under that name. sphinx-exercise
    registers its nodes for ``singlehtml``, so the single-page build (``make pdf``) lost the
    ``html`` handlers of every other extension and stopped on myst-nb's ``HideCodeCellNode``
    (the ``hide-input`` cells): "unknown node type".
    """
    handlers = app.registry.translation_handlers
    if app.builder.name == "singlehtml" and "singlehtml" in handlers:
        for name, pair in handlers.get("html", {}).items():
            handlers["singlehtml"].setdefault(name, pair)


def setup(app) -> dict[str, Any]:
    """Register the extension with Sphinx (``extra_extensions: [otlens.book]``).

    Parameters
    ----------
    app : sphinx.application.Sphinx
        The Sphinx application.

    Returns
    -------
    dict
        The extension's metadata (``parallel_read_safe`` ...).
    """
    app.add_config_value("otlens_binder_path", "notebooks/{stem}.ipynb", "html")
    app.add_config_value("otlens_colab_branch", "notebooks", "html")
    global _CHAPTER_TIME
    if _CHAPTER_TIME is None:
        _CHAPTER_TIME = _time_node_class()
    app.connect("config-inited", _default_mode)
    app.connect("config-inited", _theme_defaults)
    app.add_role("chapter-time", _chapter_time_role)
    app.connect("doctree-read", _fill_chapter_times)
    app.connect("build-finished", _copy_mathjax)
    app.connect("builder-inited", _html_handlers_for_singlehtml)
    # after the theme's launch buttons (priority 500) and sphinx.ext.mathjax
    app.connect("html-page-context", _page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# ----------------------------------------------------------------------- remote references


class RemoteReference(NamedTuple):
    """A resource that a built page would fetch from the network.

    Parameters
    ----------
    file : str
        The page, relative to the HTML root.
    kind : str
        How it is fetched, e.g. ``"script src"``, ``"link stylesheet"``, ``"css url()"``,
        ``"js loader"``.
    url : str
        The remote address.
    """

    file: str  # relative to the HTML root
    kind: str  # e.g. "script src", "link stylesheet", "css url()", "js loader"
    url: str


class _ResourceParser(HTMLParser):
    """Collects ``(kind, url)`` of loaded resources, and the text of inline scripts and styles."""

    _SRC_TAGS = {"script", "img", "iframe", "frame", "embed", "source", "audio", "video", "track",
                 "input"}
    _NAV_RELS = {"canonical", "alternate", "next", "prev", "index", "search", "author", "license",
                 "help", "bookmark", "me"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []
        self.inline: list[tuple[str, str]] = []  # ("script" | "style", text)
        self._inside: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag in self._SRC_TAGS:
            for key in ("src", "poster"):
                if attrs.get(key):
                    self.found.append((f"{tag} {key}", attrs[key]))
            for url in _srcset(attrs.get("srcset", "")):
                self.found.append((f"{tag} srcset", url))
        elif tag == "object" and attrs.get("data"):
            self.found.append(("object data", attrs["data"]))
        elif tag == "link" and attrs.get("href"):
            rels = set(attrs.get("rel", "").lower().split())
            if not rels or rels - self._NAV_RELS:
                self.found.append((f"link {' '.join(sorted(rels)) or 'href'}", attrs["href"]))
        if attrs.get("style"):
            self.found += [("style url()", u) for u in _css_urls(attrs["style"])]
        if tag in ("script", "style") and not attrs.get("src"):
            self._inside = tag

    def handle_endtag(self, tag):
        if tag == self._inside:
            self._inside = None

    def handle_data(self, data):
        if self._inside:
            self.inline.append((self._inside, data))


def _srcset(value: str) -> list[str]:
    return [part.strip().split()[0] for part in value.split(",") if part.strip()]


# Addresses that MathJax's bundled speech-rule-engine (SRE) holds as defaults but that a browser
# never requests: MathJax points SRE at its local _static/mathjax/sre/mathmaps, and the other two
# are Internet Explorer fallbacks (its mathmaps, and an XPath polyfill for browsers without XPath).
# The browser test (tests/test_browser.py) checks that no page requests anything off the disk.
NEVER_REQUESTED = (
    "https://cdn.jsdelivr.net/npm/speech-rule-engine@",
    "https://cdn.jsdelivr.net/npm/sre-mathmaps-ie@",
    "https://cdn.jsdelivr.net/npm/wicked-good-xpath@1.3.0/dist/wgxpath.install.js",
)

_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", re.IGNORECASE)
# A script loader: a remote address in a JS string that ends in .js/.css/a font, or a known CDN.
_JS_LOADED = re.compile(
    r"""['"`]((?:https?:)?//[^'"`\s]+?(?:\.m?js|\.css|\.woff2?|\.ttf|\.otf)(?:\?[^'"`\s]*)?)['"`]"""
    r"""|['"`]((?:https?:)?//(?:cdn\.jsdelivr\.net|unpkg\.com|cdnjs\.cloudflare\.com|"""
    r"""fonts\.googleapis\.com|fonts\.gstatic\.com|www\.googletagmanager\.com|"""
    r"""ajax\.googleapis\.com|code\.jquery\.com|cdn\.plot\.ly)[^'"`\s]*)['"`]""",
    re.IGNORECASE,
)


def _css_urls(text: str) -> list[str]:
    return [a or b for a, b in _CSS_URL.findall(text)]


def _js_loads(text: str) -> list[str]:
    return [a or b for a, b in _JS_LOADED.findall(text)]


def remote_references(html_dir: str | os.PathLike) -> list[RemoteReference]:
    """Return every resource that the pages under ``html_dir`` would load from the network.

    Checked: ``src``/``srcset``/``poster`` of scripts, images, frames and media, ``<object data>``,
    ``<link href>`` other than navigation links (stylesheets, preloads, icons, fonts), ``url()``
    and ``@import`` in CSS files, ``<style>`` blocks and ``style`` attributes, and script loaders
    in JS files and inline scripts (a remote ``.js``/``.css``/font address in a string, or any
    address on a well-known CDN). Navigation links (``<a href>``) are not resources, and neither
    are the speech-rule-engine defaults inside MathJax's files listed in :data:`NEVER_REQUESTED`.

    Parameters
    ----------
    html_dir : path
        A built HTML tree, e.g. ``_build/html``.

    Returns
    -------
    list of RemoteReference
        Sorted by file, then kind; empty for a book that reads offline.
    """
    root = Path(html_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"No built HTML at {root}: build the book first (`make book`).")
    found: set[RemoteReference] = set()
    for path in sorted(root.rglob("*")):
        suffix = path.suffix.lower()
        if suffix not in (".html", ".htm", ".js", ".css") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(root).as_posix()
        refs: list[tuple[str, str]] = []
        if suffix in (".html", ".htm"):
            parser = _ResourceParser()
            parser.feed(text)
            refs += parser.found
            for kind, body in parser.inline:
                refs += [(f"inline {kind}", u) for u in
                         (_css_urls(body) if kind == "style" else _js_loads(body))]
        elif suffix == ".css":
            refs += [("css url()", u) for u in _css_urls(text)]
        else:
            refs += [("js loader", u) for u in _js_loads(text) if u not in NEVER_REQUESTED]
        found.update(RemoteReference(rel, kind, url) for kind, url in refs if _REMOTE.match(url))
    return sorted(found)


# ------------------------------------------------------------------------------------- PDF


# Added to the printed page: A4 with narrow margins, and code and wide equations wrapped or
# shrunk instead of cut off at the edge of a scroll box (which paper does not have).
PRINT_CSS = """<style media="print">
@page { size: A4; margin: 14mm 12mm; }
html { font-size: 13px; }
pre, pre code { white-space: pre-wrap !important; overflow-wrap: anywhere; overflow: visible !important; }
div.highlight, div.cell_output, div.output, .math, mjx-container { overflow: visible !important; }
mjx-container[display="true"] { font-size: 92% !important; }
table { font-size: 85%; max-width: 100%; }
th, td { overflow-wrap: anywhere; }
</style>
"""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable: ``$OTLENS_CHROMIUM``, else the first on ``PATH``.

    Returns
    -------
    str or None
        The executable, or None when there is none.
    """
    if os.environ.get("OTLENS_CHROMIUM"):
        return os.environ["OTLENS_CHROMIUM"]
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _require_chromium(chromium: str | None) -> str:
    chromium = chromium or find_chromium()
    if not chromium:
        raise FileNotFoundError(
            "Printing the PDF needs Chromium, which was not found on PATH (tried "
            f"{', '.join(CHROMIUM_NAMES)}; or set OTLENS_CHROMIUM). Install it, e.g. "
            "`sudo apt-get install chromium` on Debian/Ubuntu."
        )
    return chromium


def print_pdf(html: str | os.PathLike, pdf: str | os.PathLike, *, chromium: str | None = None,
              budget_ms: int = 60_000, timeout: float = 600.0) -> Path:
    """Print one HTML file to PDF with headless Chromium.

    Parameters
    ----------
    html : path
        The page to print (opened as a ``file://`` URL; it must not need the network).
    pdf : path
        The PDF to write; its folder is created.
    chromium : str, optional
        The browser executable; :func:`find_chromium` by default.
    budget_ms : int
        Chromium's virtual time budget: scripts (MathJax) run for up to this long before printing.
    timeout : float
        Wall-clock limit in seconds for the browser.

    Returns
    -------
    Path
        The PDF.

    Raises
    ------
    FileNotFoundError
        If Chromium or the HTML file is missing.
    otlens.runner.BookBuildError
        If Chromium fails or writes no PDF.
    """
    from otlens.runner import BookBuildError

    chromium = _require_chromium(chromium)
    html, pdf = Path(html).resolve(), Path(pdf).resolve()
    if not html.is_file():
        raise FileNotFoundError(f"No HTML page at {html}.")
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.unlink(missing_ok=True)
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
               f"--virtual-time-budget={int(budget_ms)}", f"--print-to-pdf={pdf}", html.as_uri()]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if completed.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        raise BookBuildError(
            f"Chromium did not print {html} (exit code {completed.returncode}):\n"
            + completed.stderr[-2000:]
        )
    return pdf


def build_pdf(root: str | os.PathLike | None = None, *, output: str | os.PathLike | None = None,
              chromium: str | None = None, strict: bool = True) -> Path:
    """Build the single-page HTML book from the executed chapters and print it to one PDF.

    Parameters
    ----------
    root : path, optional
        The project root; found from the working directory by default.
    output : path, optional
        The PDF; ``<root>/_build/pdf/otlens.pdf`` by default.
    chromium : str, optional
        The browser executable; :func:`find_chromium` by default.
    strict : bool
        Build with ``-W -n --keep-going`` like the HTML book.

    Returns
    -------
    Path
        The PDF.

    Raises
    ------
    FileNotFoundError
        If Chromium is missing (checked first) or an executed chapter is missing.
    otlens.runner.BookBuildError
        If the single-page build or the printing fails.
    """
    from otlens.runner import EXECUTED_DIR, notebooks_in_toc, project_root, run_jupyter_book

    chromium = _require_chromium(chromium)
    root = Path(root).resolve() if root else project_root()
    missing = [c.stem for c in notebooks_in_toc(root / "_toc.yml")
               if not (root / EXECUTED_DIR / f"{c.stem}.ipynb").is_file()]
    if missing:
        raise FileNotFoundError(
            f"Executed chapters missing in {EXECUTED_DIR}/: {', '.join(missing)}; run `make book` first."
        )
    run_jupyter_book(root, builder="singlehtml", strict=strict)
    # The single page is written as <root doc>.html (book/intro.html, behind a redirecting
    # index.html), but its links are relative to the output folder: print a copy placed there.
    import yaml

    site = root / "_build" / "singlehtml"
    page = site / (yaml.safe_load((root / "_toc.yml").read_text())["root"] + ".html")
    printable = site / "otlens-print.html"
    printable.write_text(page.read_text(encoding="utf-8").replace("</head>", PRINT_CSS + "</head>", 1),
                         encoding="utf-8")
    output = Path(output) if output else root / "_build" / "pdf" / "otlens.pdf"
    return print_pdf(printable, output, chromium=chromium)


def _main(argv: list[str] | None = None) -> int:
    """``python -m otlens.book check-offline [HTML_DIR]``: list remote resources, exit 1 if any."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "check-offline" or len(args) > 2:
        print("usage: python -m otlens.book check-offline [HTML_DIR (default: _build/html)]",
              file=sys.stderr)
        return 2
    html_dir = Path(args[1] if len(args) > 1 else "_build/html")
    refs = remote_references(html_dir)
    for ref in refs:
        print(f"{ref.file}: {ref.kind}: {ref.url}")
    if refs:
        print(f"{len(refs)} remote resource(s) in {html_dir}: the book does not read offline.",
              file=sys.stderr)
        return 1
    print(f"{html_dir}: no remote resources; the book reads offline.")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
