"""The built site in a real browser: headless Chromium (driven by selenium) opens _docs/index.html
and every
executed experiment page, checks that each <img> loaded and that the results table is there, and
saves screenshots (into $LINGUA_NB_SCREENSHOTS when set). Build the site first (`python
scripts/build_docs.py`); the
tests skip, saying why, where Chromium, chromedriver, selenium or _docs/ is missing."""
import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium: no usage statistics over the network

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "_docs"
RUNS = ROOT / "runs"
TABLE_HEAD = ["experiment", "paper", "ours", "target", "met", "wall time"]


def executed_pages() -> list[str]:
    "Experiments whose executed notebook is in runs/ and whose page is in _docs/."
    return [
        p.parent.name
        for p in sorted(RUNS.glob("*/results.json"))
        if (p.parent / f"{p.parent.name}.ipynb").exists()
        and (DOCS / "experiments" / f"{p.parent.name}.html").exists()
    ]


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
    )
    chrome = next(
        (
            shutil.which(n)
            for n in ("chromium", "chromium-browser", "google-chrome")
            if shutil.which(n)
        ),
        None,
    )
    driver = shutil.which("chromedriver")
    if not chrome or not driver:
        pytest.skip(
            "no Chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver)"
        )
    if not (DOCS / "index.html").exists():
        pytest.skip("no _docs/index.html: build the site first (python scripts/build_docs.py)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        opts.add_argument(arg)
    b = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=driver))
    b.set_page_load_timeout(60)
    yield b
    b.quit()


def open_page(b, page: Path, shot: str):
    """Load `page`, wait for every image, save a full-page screenshot; return [(src, naturalWidth)]
    of its images."""
    b.get(page.as_uri())
    b.execute_async_script("""const done = arguments[arguments.length - 1];
        Promise.all([...document.images].map(
            i => i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; })))
               .then(() => done());""")
    out = Path(os.environ.get("LINGUA_NB_SCREENSHOTS") or DOCS.parent / "_proc" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    height = b.execute_script("return document.documentElement.scrollHeight")
    b.set_window_size(1280, min(max(height, 800), 12000))
    b.save_screenshot(str(out / f"{shot}.png"))
    b.set_window_size(1280, 1000)
    return b.execute_script(
        "return [...document.images].map(i => [i.src.slice(0, 120), i.naturalWidth])"
    )


def test_index_has_results_table(browser):
    images = open_page(browser, DOCS / "index.html", "index")
    assert all(
        w > 0 for _, w in images
    ), f"images that did not load: {[s for s, w in images if w == 0]}"
    heads = browser.execute_script("""return [...document.querySelectorAll('table')].map(
        t => [...t.querySelectorAll('th')].map(th => th.textContent.trim().toLowerCase()))""")
    if list(RUNS.glob("*/results.json")):
        assert TABLE_HEAD in heads, f"no results table on the index page; tables there: {heads}"
        rows = browser.execute_script("""return [...document.querySelectorAll('table')].filter(t =>
            t.querySelector('th') && t.querySelector('th').textContent.trim() === 'experiment')[0]
            .querySelectorAll('tbody tr').length""")
        assert rows >= len(executed_pages())
    else:
        assert "No results yet" in browser.page_source


def test_executed_experiment_pages_show_their_figures(browser):
    names = executed_pages()
    if not names:
        pytest.skip(
            "no executed experiment in runs/ (e.g. scripts/run_experiments.py -p smoke True)"
        )
    for name in names:
        images = open_page(browser, DOCS / "experiments" / f"{name}.html", name)
        figures = json.loads((RUNS / name / "results.json").read_text()).get("figures", [])
        loaded = [s for s, w in images if w > 0]
        assert len(loaded) == len(
            images
        ), f"{name}: images that did not load: {[s for s, w in images if w == 0]}"
        assert len(loaded) >= len(
            figures
        ), f"{name}: {len(figures)} figures saved, {len(loaded)} shown"
        text = browser.find_element("tag name", "body").text
        assert (
            "Paper:" in text and "Ours:" in text and "Target:" in text
        ), f"{name}: no headline lines"
        assert (
            str(ROOT) not in browser.page_source
        ), f"{name}: the page shows this checkout's absolute path"


def test_method_entries_in_api_docs(browser):
    open_page(browser, DOCS / "30_langbridge.html", "30_langbridge")
    text = browser.find_element("tag name", "body").text
    for m in ("forward", "generate", "build_inputs", "save_pretrained", "from_pretrained"):
        assert f"LangBridgeModel.{m}" in text, f"no API entry for LangBridgeModel.{m}"
