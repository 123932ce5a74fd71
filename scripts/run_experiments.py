"""Run experiment notebooks with papermill into runs/<name>/<name>.ipynb.

    python scripts/run_experiments.py                        # every notebook in nbs/experiments,
    default parameters python scripts/run_experiments.py e1_alignment -p seed 1 # one notebook, with
    parameters (as papermill's -p)

Parameters are parsed (YAML, as papermill's -p) and checked against each notebook's `parameters`
cell before any kernel starts: an unknown name, a value that is not valid YAML or not of the
declared type, or a --runs that is a file stops the command with a one-line error and exit status 2.
`--publish` copies each finished run into results/<name>/ (see scripts/publish_results.py); it
refuses, before anything runs, parameters other than the notebook's defaults. While a notebook runs,
the terminal shows a progress bar over its cells with the current section, the notebook's printed
lines, and the notebook's own progress bars (training loops) at the end of that bar. A failed
notebook is reported with its cell and error, the others still run, and the exit status is 1. The
run ends with a summary table.
"""
import argparse
import json
import logging
import math
import re
import sys
import time
from pathlib import Path

import nbformat
import papermill as pm
import yaml
from tqdm.auto import tqdm

from lingua_nb.experiment import claim_row

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import publish_results  # noqa: E402  (a script beside this one)

PROGRESS = re.compile(r"\d+%\|")  # a tqdm bar: "14%|█    | 215/1500 [...]"


def declared_parameters(nb: Path) -> list[str]:
    "The names of the notebook's `parameters` cell, as papermill reads them."
    return list(pm.inspect_notebook(str(nb)))


def unknown_parameters(nbs: list[Path], params: dict) -> list[str]:
    "One message per notebook that does not declare every name in `params`."
    out = []
    for nb in nbs:
        declared = declared_parameters(nb)
        unknown = [k for k in params if k not in declared]
        if unknown:
            out.append(
                f"{nb.stem} has no parameter(s) {unknown}; its parameters: {', '.join(declared)}"
            )
    return out


class UsageError(ValueError):
    "A mistake on the command line: reported in one line, exit status 2, before any kernel starts."


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "list": (list,),
          "dict": (dict,)}


def read_yaml(name: str, raw: str) -> object:
    "`raw` read as YAML; `UsageError` naming the parameter when it is not valid YAML."
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as e:
        problem = str(getattr(e, "problem", "") or e).splitlines()[0]
        message = f"parameter {name!r}: {raw!r} is not a valid YAML value ({problem})"
        raise UsageError(message) from None


def parse_value(name: str, raw: str, kind: str, where: str = "") -> object:
    "`raw`, the text after `-p name`, read as YAML and checked against the declared `kind`."
    value = read_yaml(name, raw)
    if raw.strip() == "None" or value is None:
        return None  # the notebook says whether None is allowed
    if kind == "str" and not isinstance(value, (str, list, dict)):
        return raw  # -p lm 123, -p answer yes: the text as typed
    if kind in ("int", "float") and isinstance(value, str):  # YAML reads 1e-3 as text
        try:
            value = int(value) if kind == "int" else float(value)
        except ValueError:
            pass
    if kind not in _TYPES:
        return value
    is_bool = isinstance(value, bool)
    if not isinstance(value, _TYPES[kind]) or (kind in ("int", "float") and is_bool):
        of = f" of {where}" if where else ""
        got = f"{raw!r} (read as {type(value).__name__})"
        raise UsageError(f"parameter {name!r}{of} must be {kind}, got {got}")
    if kind == "float" and not math.isfinite(value):
        raise UsageError(f"parameter {name!r} must be a finite number, got {raw!r}")
    return value


def parse_parameters(nbs: list[Path], pairs: list[tuple[str, str]]) -> dict[Path, dict]:
    "Each notebook's parameters from the `-p NAME VALUE` pairs, typed as it declares them."
    names = [k for k, _ in pairs]
    repeated = sorted({k for k in names if names.count(k) > 1})
    if repeated:
        raise UsageError(f"parameter(s) {repeated} given more than once")
    bad = unknown_parameters(nbs, dict(pairs))
    if bad:
        raise UsageError("unknown parameter name(s): " + "; ".join(bad))
    out = {}
    for nb in nbs:
        declared = pm.inspect_notebook(str(nb))
        kinds = {k: declared[k]["inferred_type_name"] for k, _ in pairs}
        out[nb] = {k: parse_value(k, raw, kinds[k], nb.stem) for k, raw in pairs}
    return out


def runs_root(runs: str) -> Path:
    "The --runs directory, resolved; `UsageError` if it (or a directory above it) is a file."
    root = (ROOT / runs).resolve()
    if root.exists() and not root.is_dir():
        raise UsageError(f"--runs {runs!r} is a file, not a directory")
    for parent in root.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"--runs {runs!r}: {parent} is a file")
    return root


def cell_labels(nb: Path) -> list[str]:
    """A label per cell of the notebook papermill will run (the injected cell included): its section
    heading."""
    cells = nbformat.read(nb, as_version=4).cells
    labels, section = [], "set-up"
    for c in cells:
        if c.cell_type == "markdown":
            heading = next(
                (l.lstrip("#").strip() for l in c.source.splitlines() if l.startswith("## ")), None
            )
            if heading: section = heading
        labels.append(section)
        # papermill's injected cell
        if "parameters" in c.metadata.get("tags", []):
            labels.append(section)
    return labels


class Progress:
    """What the terminal shows of one running notebook: a bar over its cells (on a TTY) or plain log
    lines."""
    def __init__(self, name, labels, tty, every=30.0):
        self.name, self.labels, self.section, self.every, self.last = name, labels, None, every, 0.0
        fmt = "{desc}: {percentage:3.0f}%|{bar:16}| {n}/{total} [{elapsed}<{remaining}]{postfix}"
        self.bar = (
            tqdm(
                total=len(labels),
                desc=name,
                bar_format=fmt,
                file=sys.stdout,
                dynamic_ncols=True,
                mininterval=0.5,
            )
            if tty
            else None
        )

    def line(self, text):
        if self.bar is not None: self.bar.write(text)
        else: print(text, flush=True)

    def cell(self, i):
        "Cell `i` (0-based) starts: advance the bar; name the section when it changes."
        label = self.labels[i] if i < len(self.labels) else ""
        if label != self.section:
            self.section = label
            self.line(f"-- {self.name}: {label}")
        if self.bar is not None:
            self.bar.set_description_str(f"{self.name} · cell {i + 1}", refresh=False)
            self.bar.set_postfix_str("", refresh=False)
            self.bar.update(i - self.bar.n)

    def inner(self, state):
        """The notebook's own progress bar (a training loop): at the end of ours, or every `every` s
        as a line."""
        if self.bar is not None:
            self.bar.set_postfix_str(state[:70], refresh=False)
            self.bar.refresh()
        elif time.time() - self.last >= self.every:
            self.last = time.time()
            self.line(f"   {state}")

    def close(self, done):
        if self.bar is None: return
        if done: self.bar.update(self.bar.total - self.bar.n)
        self.bar.close()


class CellLog(logging.Handler):
    "Turns papermill's 'Executing Cell N' log lines into `Progress.cell` calls."
    def __init__(self, progress):
        super().__init__()
        self.progress = progress

    def emit(self, record):
        m = re.match(r"Executing Cell (\d+)", record.getMessage())
        if m: self.progress.cell(int(m.group(1)) - 1)


class Stream:
    """A file for papermill's stdout/stderr: lines go to the terminal, progress-bar refreshes to
    `Progress.inner`."""
    def __init__(self, progress):
        self.progress, self.buf = progress, ""

    def write(self, text):
        *lines, rest = (self.buf + text).split("\n")
        for line in lines:
            line = line.split("\r")[-1].rstrip()  # a closed bar: its final state, once
            if line: self.progress.line(f"   {line}")
        self.buf = rest.split("\r")[-1]
        if PROGRESS.search(self.buf): self.progress.inner(self.buf.strip())

    def flush(self): pass


def run_one(nb: Path, out_dir: Path, params: dict) -> tuple[bool, str]:
    "Execute one notebook, showing its progress; return (ok, message)."
    labels = cell_labels(nb)
    progress = Progress(nb.stem, labels, tty=sys.stdout.isatty())
    log = logging.getLogger("papermill")
    handler = CellLog(progress)
    log.addHandler(handler); log.setLevel(logging.INFO); log.propagate = False
    rel = out_dir.relative_to(ROOT) if out_dir.is_relative_to(ROOT) else out_dir
    ok = False
    try:
        pm.execute_notebook(
            str(nb),
            str(out_dir / nb.name),
            parameters={"out_dir": str(rel), **params},
            cwd=str(ROOT),
            kernel_name="python3",
            progress_bar=False,
            log_output=True,
            stdout_file=Stream(progress),
            stderr_file=Stream(progress),
        )
        ok = True
        return True, "done"
    except pm.PapermillExecutionError as e:
        i = e.cell_index
        where = f"cell {i + 1} ({labels[i]})" if i < len(labels) else f"cell {i + 1}"
        return False, f"FAILED in {where}: {e.ename}: {e.evalue}"
    finally:
        progress.close(ok)
        log.removeHandler(handler)


def summary(rows: list[dict]) -> str:
    "A plain-text table: experiment, status, wall time, target met, results path."
    head = ("experiment", "status", "wall time", "target met", "results")
    table = [head] + [
        tuple(str(r[k]) for k in ("name", "status", "wall", "met", "results")) for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths)] + lines[1:])


def result_row(nb: Path, out_dir: Path, ok: bool, seconds: float, started: float) -> dict:
    "The summary row of one notebook, from its fresh results.json when there is one."
    res = out_dir / "results.json"
    row = {
        "name": nb.stem,
        "status": "ok" if ok else "FAILED",
        "wall": f"{seconds:.0f} s",
        "met": "—",
        "results": "—",
    }
    if res.exists() and res.stat().st_mtime >= started:
        c = claim_row(json.loads(res.read_text()))
        met = {True: "yes", False: "no", None: "—"}[c["met"]]
        row.update(met=met + (" (smoke)" if c["smoke"] else ""), results=str(res.relative_to(ROOT))
                   if res.is_relative_to(ROOT) else str(res))
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "names", nargs="*", help="experiment names (default: all of nbs/experiments/*.ipynb)"
    )
    ap.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter, its value parsed as YAML like papermill's -p",
    )
    ap.add_argument("--runs", default="runs", help="root of the run directories")
    ap.add_argument("--publish", action="store_true",
                    help="copy each finished default run into results/<name>/ (publish_results.py)")
    args = ap.parse_args(argv)
    try:
        chosen, params, root = check_arguments(args)
    except UsageError as e:
        ap.exit(2, f"{ap.prog}: error: {e}\n")
    rows, failed = [], []
    for k, nb in enumerate(chosen, 1):
        out_dir = root / nb.stem
        out_dir.mkdir(parents=True, exist_ok=True)
        print(f"== [{k}/{len(chosen)}] {nb.stem} -> {args.runs}/{nb.stem}/", flush=True)
        t0 = time.time()
        ok, msg = run_one(nb, out_dir, params[nb])
        print(f"== {nb.stem}: {msg} ({time.time() - t0:.0f} s)", flush=True)
        if not ok: failed.append(nb.stem)
        rows.append(result_row(nb, out_dir, ok, time.time() - t0, t0))
        if ok and args.publish and not publish_one(nb.stem, root):
            failed.append(f"{nb.stem} (publish)")
    print("\n" + summary(rows), flush=True)
    if failed:
        print(
            f"failed: {failed} (executed notebooks with the traceback in {args.runs}/<name>/)",
            file=sys.stderr,
        )
        return 1
    return 0


def check_arguments(args) -> tuple[list[Path], dict[Path, dict], Path]:
    "The notebooks to run, each one's parameters and the runs root; `UsageError` for any mistake."
    nbs = sorted((ROOT / "nbs" / "experiments").glob("*.ipynb"))
    known = {nb.stem: nb for nb in nbs}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        raise UsageError(f"unknown experiment(s) {unknown}; known: {sorted(known)}")
    chosen = [known[n] for n in args.names] or nbs
    params = parse_parameters(chosen, [tuple(p) for p in args.parameter])
    root = runs_root(args.runs)
    if args.publish:
        for nb in chosen:
            defaults = publish_results.notebook_defaults(nb)
            differ = publish_results.param_differences(params[nb], defaults, complete=False)
            if differ:
                raise UsageError(f"--publish takes default runs only: {nb.stem}: {differ[0]}")
    return chosen, params, root


def publish_one(name: str, root: Path) -> bool:
    "Publish the finished run `root/name` into results/; print one line either way."
    try:
        print(publish_results.publish(name, runs=root), flush=True)
    except publish_results.Refused as e:
        print(f"== {name}: not published: {e}", file=sys.stderr, flush=True)
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
