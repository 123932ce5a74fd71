"""Build the documentation site into _docs/.

nbdev's own steps (module index, sidebar, notebook processing into _proc/), then each experiment's
page and its row of the index's results table come from its results: runs/<name>/ when a run there
is newer than the committed one (a smoke run only when nothing is committed), otherwise
results/<name>/, the committed default run (see scripts/publish_results.py). Each such page opens
with the results-table row and says which commit, date and machine produced it, and warns when the
experiment's notebook changed in a commit after that one. An experiment with no results anywhere
keeps its template page, marked "no committed run yet". The site is rendered with Quarto when it is
on PATH, otherwise with smalldocs (pure Python). `nbdev_docs` is never called: without Quarto it
would try to download and install it.

Library notebooks are executed in the build: nbdev's processing runs only export, import and
show_doc cells, so here it runs every code cell of `nbs/NN_*.ipynb` except those flagged
`slow`/`notest` (as `nbdev_test` does) or `eval: false`. Their pages show outputs of the current
code, and a failing cell fails the build. Experiment templates are not executed: their pages come
from runs/ or results/. Every page's outputs are tidied as a terminal would show them: a progress
bar appears once in its final state, warnings are dropped, and this checkout's paths are removed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- results-table -->"
NO_RUN = "No committed run yet"
LIBRARY_NB = re.compile(r"^\d\d\w*\.ipynb$")
WARNING = re.compile(r"(?:/[\w.-]+)+\.py:\d+: \w*Warning\b")
PROGRESS = re.compile(r"\d+%\|")
FAILED = []  # library notebook cells that raised in the build
# set per notebook by the patched exec_show_docs.begin (each worker processes one at a time)
_exec_all = False


def execute_library_notebooks():
    """Make nbdev's exec_show_docs run every code cell of library notebooks (tst_flags and eval:
    false skipped)."""
    import nbdev.processors as procs
    from nbdev.config import get_config

    skip = set(get_config().tst_flags.split())
    show_docs_only, begin = procs._do_eval, procs.exec_show_docs.begin

    def do_eval(cell):
        if show_docs_only(cell) or not _exec_all: return show_docs_only(cell)
        if cell.cell_type != "code" or not cell.source.strip() or skip & set(cell.directives_):
            return None
        return cell.directives_.get("eval:", [""])[0].lower() != "false"

    def begin_(self):
        global _exec_all
        _exec_all = bool(LIBRARY_NB.match(Path(getattr(self.nb, "path_", "")).name))
        begin(self)

    call = procs.exec_show_docs.__call__

    def call_(self, cell):
        """A failing example or test cell is reported (and fails the build at the end); the page is
        still made."""
        try: call(self, cell)
        except Exception as e:
            if not _exec_all or show_docs_only(cell): raise
            name = Path(getattr(self.nb, "path_", "?")).name
            err = f"{type(self.k.exc).__name__}: {self.k.exc}".splitlines()[0][:200]
            FAILED.append(f"{name} cell {cell.idx_}: {err}")
            print(f"docs: FAILED {FAILED[-1]}", file=sys.stderr)
            self.k.exc = None

    procs._do_eval, procs.exec_show_docs.begin, procs.exec_show_docs.__call__ = (
        do_eval,
        begin_,
        call_,
    )


def tidy_text(text: str) -> str:
    "Stream text as a terminal shows it: each `\\r`-rewritten line's last state, no warnings."
    lines, skip_next = [], False
    for line in text.split("\n"):
        line = line.split("\r")[-1]
        if skip_next and line.startswith(" "): skip_next = False; continue
        warning = WARNING.search(line)
        skip_next = warning is not None
        # a warning may start in the middle of a progress bar's line; the bar goes on below
        if warning:
            line = line[:warning.start()]
            if not line.strip() or PROGRESS.search(line): continue
        lines.append(line)
    return strip_paths("\n".join(lines))


def strip_paths(text: str) -> str:
    "Remove this checkout's and this interpreter's absolute paths."
    text = text.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")
    return re.sub(r"/(?:[\w.-]+/)*site-packages/", "site-packages/", text)


def tidy_outputs(nb):
    """Merge consecutive stream outputs, tidy their text (see `tidy_text`), drop empty ones; strip
    paths elsewhere."""
    for cell in nb.cells:
        if cell.cell_type != "code": continue
        outs = []
        for o in cell.get("outputs", []):
            if (
                o.output_type == "stream"
                and outs
                and outs[-1].output_type == "stream"
                and outs[-1].name == o.name
            ):
                outs[-1].text += o.text
            else: outs.append(o)
        for o in outs:
            if o.output_type == "stream": o.text = tidy_text(o.text).strip("\n") + "\n"
            for mime in ("text/plain", "text/html", "text/markdown"):
                if mime in o.get("data", {}): o.data[mime] = strip_paths("".join(o.data[mime]))
        cell.outputs = [o for o in outs if not (o.output_type == "stream" and not o.text.strip())]
    return nb


def add_headline(nb, results: dict):
    """Open an executed experiment page with the three lines of its results-table row, after the
    title block."""
    import nbformat
    from lingua_nb.experiment import headline_markdown

    first = nb.cells[0]
    lines = first.source.splitlines()
    cut = 1  # the H1, then blank lines and the `>` summary
    while cut < len(lines) and (not lines[cut].strip() or lines[cut].startswith(">")): cut += 1
    head, rest = "\n".join(lines[:cut]).rstrip(), "\n".join(lines[cut:]).strip()
    first.source = head
    extra = [nbformat.v4.new_markdown_cell(headline_markdown(results))]
    if rest: extra.append(nbformat.v4.new_markdown_cell(rest))
    nb.cells[1:1] = extra
    return nb


def finished_at(results: dict, path: Path) -> float:
    "When a run finished: its recorded UTC time, else the file's modification time."
    try:
        return datetime.fromisoformat(results["finished"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return path.stat().st_mtime


def read_results(run_dir: Path) -> dict | None:
    "`run_dir`'s results.json with `_dir` and `_source` added; None when absent or not JSON."
    p = run_dir / "results.json"
    try:
        res = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(res, dict):
        return None
    source = run_dir.relative_to(ROOT) if run_dir.is_relative_to(ROOT) else run_dir
    return res | {"_dir": run_dir.name, "_source": str(source)}


def choose_results(name: str, runs: Path, committed: Path) -> tuple[Path, dict] | None:
    "The run directory that speaks for experiment `name`, with its results; None if none does."
    run, com = read_results(runs / name), read_results(committed / name)
    if run is None:
        return None if com is None else (committed / name, com)
    if com is None:
        return runs / name, run
    smoke = bool(run.get("params", {}).get("smoke"))
    run_time = finished_at(run, runs / name / "results.json")
    newer = run_time > finished_at(com, committed / name / "results.json")
    return (runs / name, run) if newer and not smoke else (committed / name, com)


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)


def notebook_age_note(name: str, commit: str | None) -> str:
    "A warning when the experiment's notebook changed in a commit `commit` lacks; else ''."
    nb = f"nbs/experiments/{name}.ipynb"
    if not commit:
        return f"**The commit that produced these results is not recorded**: `{nb}` may be newer."
    last = git("log", "-1", "--format=%H %cs", "--", nb).stdout.split()
    if not last:
        return ""  # not a git checkout, or the notebook is not committed
    if git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        return (f"**Commit `{commit[:10]}` is not in this repository's history**, so whether "
                f"`{nb}` changed since these results were produced cannot be told.")
    if git("merge-base", "--is-ancestor", last[0], commit).returncode == 0:
        return ""
    return (f"**Produced by an older version of this notebook**: `{nb}` changed in commit "
            f"`{last[0][:10]}` ({last[1]}), after commit `{commit[:10]}` that produced these "
            "results; rerun it to refresh them.")


def machine_text(results: dict) -> str:
    "The machine of a run in words: CPU, CPU count, threads, accelerator, precision, device."
    machine = results.get("machine") or {}
    parts = [machine.get("cpu") or "CPU not recorded"]
    if machine.get("cpu_count"):
        parts.append(f"{machine['cpu_count']} CPUs")
    if machine.get("torch_threads"):
        parts.append(f"{machine['torch_threads']} torch threads")
    if machine.get("accelerator"):
        parts.append(machine["accelerator"])
    if machine.get("precision"):
        parts.append(f"precision {machine['precision']}")
    parts.append(f"device {results.get('device', '?')}")
    return ", ".join(parts)


def provenance_markdown(name: str, results: dict) -> str:
    "Which commit, date and machine produced `results`, where they come from, whether stale."
    versions = results.get("versions") or {}
    commit = versions.get("git_commit")
    dirty = " (with uncommitted changes)" if versions.get("git_dirty") else ""
    when = results.get("finished") or "date not recorded"
    when = when.replace("T", " ").replace("+00:00", " UTC")
    source = results.get("_source", "")
    kind = "committed default run" if source.startswith("results/") else "local run, not committed"
    line = (f"**Produced by** commit `{(commit or 'unknown')[:10]}`{dirty} on {when} · "
            f"{machine_text(results)} · read from `{source}/` ({kind})")
    note = notebook_age_note(name, commit)
    return f"{line}\n\n> {note}" if note else line


def add_results_cells(nb, results: dict, figures_dir: str):
    "For a page without the executed notebook: the run's figures and its numbers, appended."
    import nbformat
    from lingua_nb.experiment import flat_metrics

    figs = "\n\n".join(f"![{f}]({figures_dir}/{f})" for f in results.get("figures", []))
    rows = [f"| `{k}` | {v:.4g} |" if isinstance(v, float) else f"| `{k}` | {v} |"
            for k, v in flat_metrics(results).items()]
    table = "| result | value |\n|---|---|\n" + "\n".join(rows)
    intro = ("The executed notebook is not committed (it is over the README's size limit); "
             "the run's figures and numbers:")
    text = ["## Results of this run", intro, figs, table]
    nb.cells.append(nbformat.v4.new_markdown_cell("\n\n".join(t for t in text if t)))
    return nb


def add_no_run_note(nb, name: str):
    "Mark a template page that has no results to show."
    import nbformat
    note = (f"> **{NO_RUN}.** `results/{name}/` holds no published default run and `runs/{name}/` "
            "no local run, so this page shows the notebook without outputs. Produce one with "
            f"`python scripts/run_experiments.py --publish {name}` (at the defaults).")
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(note))
    return nb


def experiment_page(proc: Path, name: str, src: Path, res: dict):
    "Write the page of `name` from the run in `src`: its executed notebook, else the template."
    import nbformat
    dst = proc / "experiments" / f"{name}.ipynb"
    executed = src / f"{name}.ipynb"
    dst.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(executed if executed.exists() else dst, as_version=4)
    if not executed.exists():
        add_results_cells(nb, res, name)
    add_headline(nb, res)
    nb.cells.insert(2, nbformat.v4.new_markdown_cell(provenance_markdown(name, res)))
    nbformat.write(nb, dst)
    for fig in src.glob("*.png"):
        (proc / "experiments" / name).mkdir(exist_ok=True)
        shutil.copy(fig, proc / "experiments" / name / fig.name)
    missing = "" if executed.exists() else " (no executed notebook)"
    print(f"docs: {name}: from {res['_source']}/{missing}")


def experiment_pages(proc: Path, runs: Path, committed: Path) -> tuple[list[dict], list[str]]:
    "Write every experiment page; return the results shown and the experiments without any."
    import nbformat
    shown, missing = [], []
    for template in sorted((ROOT / "nbs" / "experiments").glob("*.ipynb")):
        name = template.stem
        chosen = choose_results(name, runs, committed)
        if chosen is not None:
            experiment_page(proc, name, *chosen)
            shown.append(chosen[1])
            continue
        dst = proc / "experiments" / f"{name}.ipynb"
        if dst.exists():
            nbformat.write(add_no_run_note(nbformat.read(dst, as_version=4), name), dst)
        missing.append(name)
        print(f"docs: {name}: {NO_RUN.lower()}")
    return shown, missing


def index_table(shown: list[dict], missing: list[str]) -> str:
    "The index's results table, and a line naming the experiments without results."
    from lingua_nb.experiment import results_table

    if not shown:
        return ("*No results yet: no experiment has committed results (`results/`) or a local "
                "run (`runs/`); run them with `bash scripts/main.sh`.*")
    table = results_table(shown, link=lambda n: f"experiments/{n}.html")
    if missing:
        links = ", ".join(f"[{n}](experiments/{n}.html)" for n in missing)
        table += f"\n\n*{NO_RUN}:* {links}."
    return table


def main():
    os.chdir(ROOT)
    import nbformat
    from nbdev.config import get_config
    from nbdev.doclinks import _build_modidx
    from nbdev.quarto import nbdev_sidebar, refresh_quarto_yml
    from nbdev.serve import proc_nbs

    cfg = get_config()
    execute_library_notebooks()
    refresh_quarto_yml()  # writes nbs/nbdev.yml; the hand-written _quarto.yml is kept
    _build_modidx()
    nbdev_sidebar(force=True)
    proc = ROOT / "_proc"
    if proc.exists(): shutil.rmtree(proc)
    proc = Path(proc_nbs(force=True, n_workers=0))  # in this process: the patched processors apply

    # Experiment pages: the newer of runs/<name>/ and results/<name>/, else the marked template.
    shown, missing = experiment_pages(proc, ROOT / "runs", ROOT / "results")

    # Outputs as a reader should see them.
    for p in proc.rglob("*.ipynb"):
        nbformat.write(tidy_outputs(nbformat.read(p, as_version=4)), p)

    # The results table on the index page.
    index = proc / "index.ipynb"
    nb = nbformat.read(index, as_version=4)
    table = index_table(shown, missing)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and MARKER in cell.source:
            cell.source = cell.source.replace(MARKER, table)
    nbformat.write(nb, index)

    out = proc / cfg.doc_path.name
    if shutil.which("quarto"):
        subprocess.run(["quarto", "render", str(proc)], check=True)
    else:
        subprocess.run(
            [str(Path(sys.executable).parent / "smalldocs"), "render", "--quiet", str(proc)],
            check=True,
        )
    doc_path = Path(cfg.doc_path)
    if doc_path.exists(): shutil.rmtree(doc_path)
    shutil.move(str(out), str(doc_path))
    print(
        f"docs: site in {doc_path.relative_to(ROOT)}/ ({sum(1 for _ in doc_path.rglob('*.html'))}"
        " pages)"
    )
    if FAILED:
        print(
            f"docs: {len(FAILED)} library notebook cell(s) failed (their pages show the error):",
            file=sys.stderr,
        )
        for f in FAILED: print(f"  {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
