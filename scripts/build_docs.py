"""Build the documentation site into _docs/.

nbdev's own steps (module index, sidebar, notebook processing into _proc/), then the executed
experiment notebooks from runs/ replace their templates, the index page gets the results table from
runs/*/results.json, and the site is rendered with Quarto when it is on PATH, otherwise with
smalldocs (pure Python). `nbdev_docs` is never called: without Quarto it would try to download and
install it.

Library notebooks are executed in the build: nbdev's processing runs only export, import and
show_doc cells, so here it runs every code cell of `nbs/NN_*.ipynb` except those flagged
`slow`/`notest` (as `nbdev_test` does) or `eval: false`. Their pages show outputs of the current
code, and a failing cell fails the build. Experiment templates are not executed: their pages come
from runs/. Every page's outputs are tidied as a terminal would show them: a progress bar appears
once in its final state, warnings are dropped, and this checkout's paths are removed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- results-table -->"
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
    """Stream text as a terminal shows it: the last state of each `\\r`-rewritten line, no warnings,
    no local paths."""
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


def main():
    os.chdir(ROOT)
    import nbformat
    from nbdev.config import get_config
    from nbdev.doclinks import _build_modidx
    from nbdev.quarto import nbdev_sidebar, refresh_quarto_yml
    from nbdev.serve import proc_nbs

    from lingua_nb.experiment import results_markdown

    cfg = get_config()
    execute_library_notebooks()
    refresh_quarto_yml()  # writes nbs/nbdev.yml; the hand-written _quarto.yml is kept
    _build_modidx()
    nbdev_sidebar(force=True)
    proc = ROOT / "_proc"
    if proc.exists(): shutil.rmtree(proc)
    proc = Path(proc_nbs(force=True, n_workers=0))  # in this process: the patched processors apply

    # Executed experiment notebooks (and their figures) replace the templates.
    runs = ROOT / "runs"
    for executed in sorted(runs.glob("*/*.ipynb")):
        name = executed.parent.name
        if executed.stem != name: continue
        dst = proc / "experiments" / f"{name}.ipynb"
        if dst.exists() or (ROOT / "nbs" / "experiments" / f"{name}.ipynb").exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            nb = nbformat.read(executed, as_version=4)
            res = executed.parent / "results.json"
            if res.exists(): add_headline(nb, json.loads(res.read_text()))
            nbformat.write(nb, dst)
            for fig in executed.parent.glob("*.png"):
                (proc / "experiments" / name).mkdir(exist_ok=True)
                shutil.copy(fig, proc / "experiments" / name / fig.name)
            print(f"docs: executed notebook runs/{name}/{executed.name}")

    # Outputs as a reader should see them.
    for p in proc.rglob("*.ipynb"):
        nbformat.write(tidy_outputs(nbformat.read(p, as_version=4)), p)

    # The results table on the index page.
    index = proc / "index.ipynb"
    nb = nbformat.read(index, as_version=4)
    table = results_markdown(runs, link=lambda n: f"experiments/{n}.html")
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
