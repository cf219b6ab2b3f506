"""The built book in a real browser: headless Chromium opens the pages from disk (``file://``), with
every host name unresolvable, so that anything the book tried to fetch from the network would fail.

Checked on the introduction (math) and the tiny stand-in chapter 1 (a figure): every ``<img>`` has
loaded (natural width > 0), MathJax typeset every ``.math`` element and left no TeX delimiters,
the console has no errors, and no request left ``file://``. Screenshots go to pytest's tmp folder
and, when ``OTLENS_SCREENSHOTS`` is set, to that folder too.

The reader's acceptance test (issue #18) loads every page of a built book at window widths of 900
and 1,400 px: the tiny book, and the real book's ``_build/html`` (or ``$OTLENS_BOOK_HTML``) when
it has been built (skipped otherwise). On every page: the text column does not overflow
sideways (anything wider sits in a scroll box that fits it), and no ``PosixPath``, ``NaN`` or
``Traceback`` shows, nor a table cell reading ``None``, ``NaN`` or ``-0.000``. On every chapter
page (``book/executed/``): every figure is referred to by a link to its id from the page, every
plot of a cell output is a figure, and the page has an "At a glance" box (objectives) and a
"Summary" section.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (``dev`` extra);
skipped with a message otherwise. Selenium is given the system chromedriver explicitly: its
driver manager would try to download one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from otlens.book import find_chromium

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
WIDTHS = (900, 1400)  # px: a laptop window with the sidebar folded away, and one with both sidebars

PAGES = {"intro": "book/intro.html", "chapter": "book/executed/01_ot_across_depth.html"}
CHROMEDRIVER_NAMES = ("chromedriver", "chromium-driver")


def _chromedriver() -> str | None:
    if os.environ.get("OTLENS_CHROMEDRIVER"):
        return os.environ["OTLENS_CHROMEDRIVER"]
    found = [shutil.which(n) for n in CHROMEDRIVER_NAMES]
    return next((f for f in found if f), None)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium driven by Selenium through the system chromedriver; no network."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (dev extra)")
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = find_chromium(), _chromedriver()
    if not chromium or not driver_path:
        pytest.skip("Chromium or chromedriver not found: install Debian's `chromium chromium-driver` "
                    "(apt-get install chromium chromium-driver) to run the browser test")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1600", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def _open(driver, page: Path) -> dict:
    """Load a page, wait for MathJax, and return what the page and the logs say."""
    driver.get(page.as_uri())
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const ready = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
        const wait = (n) => ready() ? MathJax.startup.promise.then(() => done(true), () => done(false))
                                    : n > 0 ? setTimeout(() => wait(n - 1), 100) : done(false);
        if (document.querySelector('.math')) { wait(200); } else { done(true); }
    """)
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        Promise.all([...document.images].map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })))
            .then(() => done(true));
    """)
    state = driver.execute_script("""
        const maths = [...document.querySelectorAll('.math')];
        return {
          images: [...document.images].map(i => ({src: i.getAttribute('src'), width: i.naturalWidth})),
          maths: maths.length,
          typeset: maths.filter(m => m.querySelector('mjx-container')).length,
          containers: document.querySelectorAll('mjx-container').length,
          raw: maths.map(m => m.textContent).filter(t => /\\\\\\(|\\\\\\[|\\$\\$/.test(t)),
        };
    """)
    state["console"] = driver.get_log("browser")
    state["requests"] = [
        json.loads(entry["message"])["message"]["params"]["request"]["url"]
        for entry in driver.get_log("performance")
        if json.loads(entry["message"])["message"]["method"] == "Network.requestWillBeSent"
    ]
    return state


def _screenshot(driver, tmp_path: Path, name: str) -> list[Path]:
    height = driver.execute_script("return Math.min(document.body.scrollHeight, 6000)")
    driver.set_window_size(1280, max(800, int(height)))
    folders = [tmp_path] + ([Path(os.environ["OTLENS_SCREENSHOTS"])] if os.environ.get("OTLENS_SCREENSHOTS") else [])
    paths = []
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        assert driver.save_screenshot(str(path))
        paths.append(path)
    driver.set_window_size(1280, 1600)
    return paths


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_offline_in_chromium(browser, tiny_book, tmp_path, name):
    page = tiny_book / "_build" / "html" / PAGES[name]
    state = _open(browser, page)
    shots = _screenshot(browser, tmp_path, name)
    assert all(p.stat().st_size > 10_000 for p in shots)  # a rendered page, not a blank one

    broken = [img["src"] for img in state["images"] if not img["width"]]
    assert not broken, f"images that did not load: {broken}"
    assert not state["raw"], f"math left as TeX: {state['raw'][:3]}"
    assert state["typeset"] == state["maths"], f"{state['maths'] - state['typeset']} math elements not typeset"
    errors = [e["message"] for e in state["console"] if e["level"] == "SEVERE"]
    assert not errors, f"console errors: {errors}"
    remote = [u for u in state["requests"] if not u.startswith(("file:", "data:", "blob:"))]
    assert not remote, f"requests off the disk: {remote}"

    if name == "intro":
        assert state["maths"] > 0 and state["containers"] >= state["maths"]
    if name == "chapter":
        assert any(img["src"].startswith("../../_images/") for img in state["images"])  # the figure


# ----------------------------------------------------------------------------- the reader's acceptance test
READER_CHECKS = r"""
const art = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
const box = art.getBoundingClientRect();
const fits = (r) => r.left >= box.left - 1 && r.right <= box.right + 1;
const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).slice(0, 2).join('.') : '');
// wider than the column, and neither visually hidden (clipped away, as MathJax's assistive MathML)
// nor inside a scroll box (overflow-x auto/scroll/hidden) that fits the column
const scrolled = (el) => {
  for (let p = el; p && p !== art; p = p.parentElement) {
    const s = getComputedStyle(p);
    if ((s.clip && s.clip !== 'auto') || (s.clipPath && s.clipPath !== 'none')) return true;
    if (p !== el && ['auto', 'scroll', 'hidden', 'clip'].includes(s.overflowX)) return fits(p.getBoundingClientRect());
  }
  return false;
};
const wide = [];
let inScrollBox = 0;  // elements wider than the column that a scroll box holds (fine, but counted)
for (const el of art.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (!r.width || fits(r)) continue;
  if (scrolled(el)) { inScrollBox += 1; continue; }
  if (!wide.some(w => w.contains(el))) wide.push(el);
}
// the page's text: prose and outputs, not the code of the cells
const copy = art.cloneNode(true);
copy.querySelectorAll('.cell_input, script, style').forEach(e => e.remove());
const text = copy.textContent;
const badText = [...new Set(text.match(/PosixPath|WindowsPath|\bNaN\b|Traceback/g) || [])];
const badCells = [...art.querySelectorAll('td, th')].map(c => c.textContent.trim())
    .filter(s => /^(None|NaN|nan|<NA>|-0\.0+)$/.test(s));
// figures and the links that refer to them from this page
const page = location.pathname.split('/').pop();
const links = [...document.querySelectorAll('a[href*="#"]')].filter(a => !a.classList.contains('headerlink'));
const figures = [...art.querySelectorAll('figure, div.figure')];
const unreferenced = figures.filter(f => !f.id || !links.some(a => {
  const [file, id] = a.getAttribute('href').split('#');
  return id === f.id && (file === '' || file === page) && !f.contains(a);
})).map(f => f.id || '(no id) ' + f.textContent.trim().slice(0, 60));
const loosePlots = [...art.querySelectorAll('.cell_output img')].filter(i => !i.closest('figure, div.figure')).length;
const strip = (e) => e.textContent.replace(/[#¶]\s*$/, '').trim();
// plots shrunk by more than the 2x of a retina drawing: drawn for a wider page than this one
const shrunk = [...art.querySelectorAll('.cell_output img, figure img')]
    .filter(i => i.naturalWidth > 0 && i.clientWidth > 0 && i.naturalWidth / i.clientWidth > 2.25)
    .map(i => (i.closest('figure') ? i.closest('figure').id : '') + ' ' + i.naturalWidth + ' px shown at ' + i.clientWidth);
return {
  width: window.innerWidth,
  article: [art.scrollWidth, art.clientWidth],
  document: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
  wide: wide.slice(0, 5).map(e => name(e) + ' ' + Math.round(e.getBoundingClientRect().width) + ' px'),
  inScrollBox: inScrollBox,
  badText: badText,
  badCells: [...new Set(badCells)],
  figures: figures.length,
  unreferenced: unreferenced,
  loosePlots: loosePlots,
  shrunk: shrunk,
  h2: [...art.querySelectorAll('h2')].map(strip),
  glance: [...art.querySelectorAll('.admonition-title')].some(t => /^At a glance/.test(t.textContent.trim())),
};
"""


def _is_chapter(page: Path) -> bool:
    return page.parent.name == "executed"


def reader_problems(state: dict, *, chapter: bool) -> list[str]:
    """What a reader would trip over on a page, from :data:`READER_CHECKS`' report (empty: none)."""
    where = f"at {state['width']} px"
    problems = []
    if state["article"][0] > state["article"][1] + 1 or state["wide"]:
        problems.append(f"{where}: the text column overflows ({state['article']}): {state['wide']}")
    if state["document"][0] > state["document"][1] + 1:
        problems.append(f"{where}: the page scrolls sideways ({state['document']})")
    if state["badText"]:
        problems.append(f"{where}: plumbing on the page: {state['badText']}")
    if state["badCells"]:
        problems.append(f"{where}: raw values in tables: {state['badCells']}")
    if state["width"] >= 1200 and state["shrunk"]:  # where the text column is at its full width
        problems.append(f"{where}: figures shrunk more than 2x (ticks below the figure system's 8 pt): "
                        f"{state['shrunk']}")
    if chapter:
        if state["unreferenced"]:
            problems.append(f"figures the prose never refers to: {state['unreferenced']}")
        if state["loosePlots"]:
            problems.append(f"{state['loosePlots']} plot(s) not in a figure (no number, no caption)")
        if "Summary" not in state["h2"]:
            problems.append(f"no Summary section (sections: {state['h2']})")
        if not state["glance"]:
            problems.append("no 'At a glance' box (objectives, prerequisites, times)")
    return problems


def _read_page(driver, page: Path) -> list[str]:
    """Load ``page`` at each of :data:`WIDTHS` and return the problems found at any of them."""
    problems = []
    for width in WIDTHS:
        driver.set_window_size(width, 1000)
        _open(driver, page)
        problems += reader_problems(driver.execute_script(READER_CHECKS), chapter=_is_chapter(page))
    driver.set_window_size(1280, 1600)
    return sorted(set(problems))


def _book_pages(html: Path) -> list[Path]:
    """Every page of a built book: the introduction, the chapters and the other pages of the toc."""
    return sorted((html / "book").rglob("*.html"))


def test_tiny_book_reads_well_at_two_widths(browser, tiny_book):
    pages = _book_pages(tiny_book / "_build" / "html")
    assert any(_is_chapter(p) for p in pages) and len(pages) >= 3
    found = {p.name: _read_page(browser, p) for p in pages}
    assert not any(found.values()), {k: v for k, v in found.items() if v}


def test_reader_checks_catch_what_they_look_for(browser, tiny_book):
    """Each check fails on the tiny chapter once the defect it looks for is put into the page."""
    page = tiny_book / "_build" / "html" / PAGES["chapter"]
    browser.set_window_size(900, 1000)
    _open(browser, page)
    state = browser.execute_script(READER_CHECKS)
    assert state["figures"] >= 1 and not reader_problems(state, chapter=True), state
    assert state["inScrollBox"] >= 1  # the chapter's wide table is wider than the column, in a scroll box
    browser.execute_script("""
        const art = document.querySelector('article.bd-article');
        art.insertAdjacentHTML('beforeend',
            '<div style="width: 3000px">a wide box</div><p>PosixPath("/x/results.csv")</p>'
            + '<table><tr><td>NaN</td></tr></table><figure id="fig-orphan"><p>an orphan</p></figure>'
            + '<div class="cell_output"><img src="x.png" width="10" height="10"></div>'
            + '<figure id="fig-huge"><div class="cell_output"><img style="width: 100px" src="data:image/svg+xml,'
            + encodeURIComponent('<svg xmlns="http://www.w3.org/2000/svg" width="2735" height="600"/>') + '"></div></figure>');
        [...art.querySelectorAll('h2')].filter(h => h.textContent.startsWith('Summary')).forEach(h => h.remove());
        art.querySelectorAll('.admonition-title').forEach(t => { t.textContent = 'Notes'; });
    """)
    problems = " | ".join(reader_problems(browser.execute_script(READER_CHECKS), chapter=True))
    for expected in ("text column overflows", "div 3000 px", "PosixPath", "raw values in tables", "fig-orphan",
                     "not in a figure", "no Summary", "At a glance"):
        assert expected in problems, (expected, problems)
    browser.set_window_size(1400, 1000)  # a figure drawn 2,735 px wide and shown at 100 px: shrunk 27x
    browser.execute_async_script("const done = arguments[arguments.length - 1];"
                                 "const i = document.querySelector('#fig-huge img');"
                                 "i.complete ? done(true) : (i.onload = i.onerror = () => done(true));")
    wide = " | ".join(reader_problems(browser.execute_script(READER_CHECKS), chapter=True))
    assert "shrunk more than 2x" in wide and "fig-huge 2735 px shown at 100" in wide, wide
    browser.set_window_size(1280, 1600)


def _real_book() -> Path:
    return Path(os.environ.get("OTLENS_BOOK_HTML") or REPO / "_build" / "html").resolve()  # file:// needs it absolute


def _real_pages() -> list:
    pages = _book_pages(_real_book()) if (_real_book() / "book").is_dir() else []
    if not pages:
        return [pytest.param(None, id="not-built", marks=pytest.mark.skip(
            reason=f"no built book at {_real_book()} (run `otlens book`, or set OTLENS_BOOK_HTML)"))]
    return [pytest.param(p, id=str(p.relative_to(_real_book()))) for p in pages]


@pytest.mark.parametrize("page", _real_pages())
def test_built_book_reads_well_at_two_widths(browser, page):
    problems = _read_page(browser, page)
    assert not problems, f"{page.name}: " + "; ".join(problems)
