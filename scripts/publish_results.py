"""Publish finished experiment runs into results/<name>/, the study's committed results.

    python scripts/publish_results.py e0_zoo e1_alignment         # runs/<name>/ -> results/<name>/
    python scripts/publish_results.py --runs elsewhere e0_zoo     # from elsewhere/<name>/
    python scripts/run_experiments.py --publish e0_zoo            # run at the defaults, publish

A run is published only when it is the notebook's default run: not a smoke run, every parameter
equal to the default its `parameters` cell declares (papermill's `inspect_notebook`; `out_dir`
aside), and produced from a clean git tree. Otherwise one line says why (which parameter differs)
and nothing is written.

What is copied: results.json, the figures it lists, and the executed notebook with its outputs
tidied as the docs show them (warnings dropped, local paths removed, widget state stripped) when it
stays under NOTEBOOK_LIMIT bytes (2 MB); a larger notebook is left out, and the site then shows the
template with the results' numbers and figures. Every file is written atomically (a temporary file
beside it, then a rename), results.json last, so a publish that is killed leaves each file whole;
files of an earlier publish that this run lacks are removed at the end.
"""

import argparse
import ast
import copy
import functools
import json
import os
import sys
from pathlib import Path

import nbformat
import papermill as pm

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_LIMIT = 2_000_000  # bytes: an executed notebook larger than this is not committed
IGNORED = {"out_dir"}  # where a run writes is not part of what it measured
WIDGET_MIMES = (
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
)


class Refused(ValueError):
    "A run that may not be published, with the one-line reason."


def notebook_path(name: str) -> Path:
    "The template of experiment `name`; `Refused` if there is none."
    nb = ROOT / "nbs" / "experiments" / f"{name}.ipynb"
    if not isinstance(name, str) or "/" in name or not nb.exists():
        known = sorted(p.stem for p in nb.parent.glob("*.ipynb"))
        raise Refused(f"no experiment {name!r}; known: {known}")
    return nb


def notebook_defaults(nb: Path) -> dict:
    "name -> default value of the notebook's `parameters` cell (its literal, read as Python)."
    return copy.deepcopy(_defaults(str(nb), nb.stat().st_mtime_ns))


@functools.lru_cache(maxsize=32)
def _defaults(nb: str, mtime_ns: int) -> dict:
    "The defaults of the notebook at `nb`, read once per version of the file."
    out = {}
    for name, p in pm.inspect_notebook(nb).items():
        try:
            value = ast.literal_eval(p["default"])
        except (ValueError, SyntaxError, TypeError):
            out[name] = ("<not a literal>", p["default"])
            continue
        out[name] = json.loads(json.dumps(value))  # tuples as JSON lists
    return out


def param_differences(params: dict, defaults: dict, complete: bool = True) -> list[str]:
    "One line per parameter not at its default (`complete`: also defaults absent from `params`)."
    out = []
    for name, value in params.items():
        if name in IGNORED:
            continue
        if name not in defaults:
            out.append(f"{name!r} is not a parameter of the notebook")
        elif json.loads(json.dumps(value)) != defaults[name]:
            out.append(f"{name} is {value!r}, the notebook's default is {defaults[name]!r}")
    if complete:
        out += [
            f"{name} is not recorded in the results"
            for name in defaults
            if name not in params and name not in IGNORED
        ]
    return out


def publish_problems(results: dict, nb: Path) -> list[str]:
    "Why `results` is not the default run of the notebook `nb` ([] when it is)."
    params = results.get("params")
    if not isinstance(params, dict):
        return ["results.json has no 'params'"]
    out = ["it is a smoke run"] if params.get("smoke") else []
    if results.get("name") != nb.stem:
        out.append(f"its name is {results.get('name')!r}, not {nb.stem!r}")
    return out + param_differences(params, notebook_defaults(nb))


def slim_notebook(path: Path) -> bytes:
    "The executed notebook as the site shows it: outputs tidied, widget state and outputs removed."
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from build_docs import tidy_outputs

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            for mime in WIDGET_MIMES:
                o.get("data", {}).pop(mime, None)
        cell.outputs = [
            o
            for o in cell.get("outputs", [])
            if o.output_type == "stream" or o.get("data") or o.output_type == "error"
        ]
    # The checkout it ran in (papermill records the template's absolute path): removed everywhere.
    pm_meta = nb.metadata.get("papermill", {})
    template = str(pm_meta.get("input_path") or "")
    root = template.split("nbs/experiments/")[0] if "nbs/experiments/" in template else None
    text = nbformat.writes(tidy_outputs(nb))
    if root and root != "/":
        text = text.replace(root, "")
    return text.encode("utf-8") + b"\n"


def write_atomic(path: Path, data: bytes) -> None:
    "Write `data` to `path` through a temporary file beside it and a rename."
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def publish(
    name: str,  # the experiment, e.g. "e0_zoo"
    runs: str | os.PathLike = ROOT / "runs",  # root of the run directories
    results: str | os.PathLike = ROOT / "results",  # root of the published results
    allow_dirty: bool = False,  # publish a run made from a git tree with uncommitted changes
) -> str:
    "Copy the finished default run `runs/name` into `results/name`; `Refused` when it is not one."
    nb = notebook_path(name)
    src = Path(runs) / name
    res_path = src / "results.json"
    if not res_path.is_file():
        raise Refused(f"{name}: no finished run: {res_path} does not exist")
    try:
        res = json.loads(res_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise Refused(f"{name}: {res_path} is not valid JSON ({e})") from None
    problems = publish_problems(res, nb)
    if res.get("versions", {}).get("git_dirty") and not allow_dirty:
        problems.append(
            "it ran from a git tree with uncommitted changes (--allow-dirty to publish anyway)"
        )
    if problems:
        raise Refused(f"{name}: not the notebook's default run: {problems[0]}")
    figures = [src / f for f in res.get("figures", [])]
    missing = [f.name for f in figures if not f.is_file()]
    if missing:
        raise Refused(f"{name}: figures listed in results.json are missing: {missing}")
    executed = src / f"{name}.ipynb"
    notebook = slim_notebook(executed) if executed.is_file() else None
    note = ""
    if notebook is not None and len(notebook) > NOTEBOOK_LIMIT:
        size, limit = len(notebook) / 1e6, NOTEBOOK_LIMIT / 1e6
        note = f"; executed notebook left out ({size:.1f} MB > {limit:.0f} MB)"
        notebook = None
    dst = Path(results) / name
    dst.mkdir(parents=True, exist_ok=True)
    written = []
    for f in figures:
        write_atomic(dst / f.name, f.read_bytes())
        written.append(f.name)
    if notebook is not None:
        write_atomic(dst / executed.name, notebook)
        written.append(executed.name)
    write_atomic(dst / "results.json", res_path.read_bytes())
    written.append("results.json")
    for old in dst.iterdir():
        if old.is_file() and old.name not in written:
            old.unlink()
    commit = (res.get("versions", {}).get("git_commit") or "?")[:10]
    return f"== {name}: published {len(written)} files into {dst} (commit {commit}){note}"


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("names", nargs="+", help="experiment names")
    ap.add_argument("--runs", default="runs", help="root of the run directories")
    ap.add_argument("--results", default="results", help="root of the published results")
    ap.add_argument(
        "--allow-dirty", action="store_true", help="publish a run made from an uncommitted tree"
    )
    args = ap.parse_args(argv)
    refused = 0
    for name in args.names:
        try:
            print(publish(name, ROOT / args.runs, ROOT / args.results, args.allow_dirty))
        except Refused as e:
            print(f"not published: {e}", file=sys.stderr)
            refused += 1
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
