"""The built book in a real browser: headless Chromium opens the pages from disk (``file://``), with
every host name unresolvable, so that anything the book tried to fetch from the network would fail.

Checked on the introduction (math) and the tiny stand-in chapter 1 (a figure): every ``<img>`` has
loaded (natural width > 0), MathJax typeset every ``.math`` element and left no TeX delimiters,
the console has no errors, and no request left ``file://``. Screenshots go to pytest's tmp folder
and, when ``OTLENS_SCREENSHOTS`` is set, to that folder too.

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
