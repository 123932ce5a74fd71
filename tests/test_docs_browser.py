"""The built site in a real browser: headless Chromium (driven by selenium) opens _docs/index.html
and every experiment page with results (from runs/ or the committed results/), checks that each
<img> loaded, that the results table is there, that a page says which commit and machine produced
it, and that an experiment without results says so; it saves screenshots (into
$LINGUA_NB_SCREENSHOTS when set). Build the site first (`python scripts/build_docs.py`); the tests
skip, saying why, where Chromium, chromedriver, selenium or _docs/ is missing."""
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium: no usage statistics over the network

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from build_docs import choose_results  # noqa: E402  (the newer of runs/ and results/)

DOCS = ROOT / "_docs"
RUNS = ROOT / "runs"
RESULTS = ROOT / "results"
TABLE_HEAD = ["experiment", "paper", "ours", "target", "met", "wall time"]
EXPERIMENTS = sorted(p.stem for p in (ROOT / "nbs" / "experiments").glob("*.ipynb"))


def results_of(name: str) -> dict | None:
    "The results an experiment's page shows (the build's choice of runs/ or results/), or None."
    chosen = choose_results(name, RUNS, RESULTS)
    return None if chosen is None else chosen[1]


def executed_pages() -> list[str]:
    "Experiments with results in runs/ or results/ and a page in _docs/."
    return [n for n in EXPERIMENTS if results_of(n) is not None and page(n).exists()]


def page(name: str) -> Path:
    return DOCS / "experiments" / f"{name}.html"


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
    if executed_pages():
        assert TABLE_HEAD in heads, f"no results table on the index page; tables there: {heads}"
        rows = browser.execute_script("""return [...document.querySelectorAll('table')].filter(t =>
            t.querySelector('th') && t.querySelector('th').textContent.trim() === 'experiment')[0]
            .querySelectorAll('tbody tr').length""")
        assert rows >= len(executed_pages())
    else:
        assert "No results yet" in browser.page_source


def test_executed_experiment_pages_show_their_figures(browser):
    names = executed_pages()
    if not names: pytest.skip("no experiment with results in runs/ or results/")
    for name in names:
        images = open_page(browser, DOCS / "experiments" / f"{name}.html", name)
        res = results_of(name)
        loaded = [s for s, w in images if w > 0]
        assert len(loaded) == len(
            images
        ), f"{name}: images that did not load: {[s for s, w in images if w == 0]}"
        figures = res.get("figures", [])
        assert len(loaded) >= len(figures), f"{name}: {len(figures)} figures, {len(loaded)} shown"
        text = browser.find_element("tag name", "body").text
        assert (
            "Paper:" in text and "Ours:" in text and "Target:" in text
        ), f"{name}: no headline lines"
        assert (
            str(ROOT) not in browser.page_source
        ), f"{name}: the page shows this checkout's absolute path"
        commit = (res.get("versions") or {}).get("git_commit")
        if commit: assert f"Produced by commit {commit[:10]}" in text, f"{name}: no provenance line"


def test_committed_results_page(browser):
    "A page built from results/ shows the committed run: provenance, machine, figures, prose."
    names = [n for n in executed_pages() if results_of(n)["_source"].startswith("results/")]
    if not names: pytest.skip("no page is built from results/ (each has a newer run in runs/)")
    for name in names:
        res = json.loads((RESULTS / name / "results.json").read_text())
        images = open_page(browser, page(name), f"{name}_committed")
        text = browser.find_element("tag name", "body").text
        assert f"read from results/{name}/ (committed default run)" in text, f"{name}: no source"
        assert res["machine"]["cpu"] in text, f"{name}: the machine is not named"
        assert sum(w > 0 for _, w in images) >= len(res["figures"]) > 0
        prose = text.split("What this run shows")[1][:400] if "What this run shows" in text else ""
        assert prose and "{" not in prose, f"{name}: no rendered prose"


def test_experiments_without_results_say_so(browser):
    names = [n for n in EXPERIMENTS if results_of(n) is None and page(n).exists()]
    if not names: pytest.skip("every experiment has results")
    for name in names:
        open_page(browser, page(name), f"{name}_no_run")
        assert "No committed run yet" in browser.find_element("tag name", "body").text, name
    open_page(browser, DOCS / "index.html", "index")
    assert "No committed run yet" in browser.find_element("tag name", "body").text


def test_method_entries_in_api_docs(browser):
    open_page(browser, DOCS / "30_langbridge.html", "30_langbridge")
    text = browser.find_element("tag name", "body").text
    for m in ("forward", "generate", "build_inputs", "save_pretrained", "from_pretrained"):
        assert f"LangBridgeModel.{m}" in text, f"no API entry for LangBridgeModel.{m}"
