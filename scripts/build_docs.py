"""Build the documentation site into _docs/.

nbdev's own steps (module index, sidebar, notebook processing into _proc/), then the executed experiment notebooks
from runs/ replace their templates, the index page gets the results table from runs/*/results.json, and the site
is rendered with Quarto when it is on PATH, otherwise with smalldocs (pure Python). `nbdev_docs` is never called:
without Quarto it would try to download and install it.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- results-table -->"


def main():
    os.chdir(ROOT)
    import nbformat
    from nbdev.config import get_config
    from nbdev.doclinks import _build_modidx
    from nbdev.quarto import nbdev_sidebar, refresh_quarto_yml
    from nbdev.serve import proc_nbs

    from lingua_nb.experiment import results_markdown

    cfg = get_config()
    refresh_quarto_yml()  # writes nbs/nbdev.yml; the hand-written _quarto.yml is kept
    _build_modidx()
    nbdev_sidebar(force=True)
    proc = ROOT / "_proc"
    if proc.exists(): shutil.rmtree(proc)
    proc = Path(proc_nbs(force=True))

    # Executed experiment notebooks (and their figures) replace the templates.
    runs = ROOT / "runs"
    for executed in sorted(runs.glob("*/*.ipynb")):
        name = executed.parent.name
        if executed.stem != name: continue
        dst = proc / "experiments" / f"{name}.ipynb"
        if dst.exists() or (ROOT / "nbs" / "experiments" / f"{name}.ipynb").exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(executed, dst)
            for fig in executed.parent.glob("*.png"):
                (proc / "experiments" / name).mkdir(exist_ok=True)
                shutil.copy(fig, proc / "experiments" / name / fig.name)
            print(f"docs: executed notebook runs/{name}/{executed.name}")

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
        subprocess.run([str(Path(sys.executable).parent / "smalldocs"), "render", "--quiet", str(proc)], check=True)
    doc_path = Path(cfg.doc_path)
    if doc_path.exists(): shutil.rmtree(doc_path)
    shutil.move(str(out), str(doc_path))
    print(f"docs: site in {doc_path.relative_to(ROOT)}/ ({sum(1 for _ in doc_path.rglob('*.html'))} pages)")


if __name__ == "__main__":  # proc_nbs starts worker processes
    main()
