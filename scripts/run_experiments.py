"""Run experiment notebooks with papermill into runs/<name>/<name>.ipynb.

    python scripts/run_experiments.py                        # every notebook in nbs/experiments,
    default parameters python scripts/run_experiments.py e1_alignment -p seed 1 # one notebook, with
    parameters (as papermill's -p)

Parameter names are checked against each notebook's `parameters` cell before anything runs. While a
notebook runs, the terminal shows a progress bar over its cells with the current section, the
notebook's printed lines, and the notebook's own progress bars (training loops) at the end of that
bar. A failed notebook is reported with its cell and error, the others still run, and the exit
status is 1. The run ends with a summary table.
"""
import argparse
import json
import logging
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
    args = ap.parse_args(argv)
    nbs = sorted((ROOT / "nbs" / "experiments").glob("*.ipynb"))
    known = {nb.stem: nb for nb in nbs}
    unknown = [n for n in args.names if n not in known]
    if unknown: ap.error(f"unknown experiment(s) {unknown}; known: {sorted(known)}")
    chosen = [known[n] for n in args.names] or nbs
    params = {k: yaml.safe_load(v) for k, v in args.parameter}
    bad = unknown_parameters(chosen, params)
    if bad: ap.error("\n  ".join(["unknown parameter name(s):"] + bad))
    rows, failed = [], []
    for k, nb in enumerate(chosen, 1):
        out_dir = (ROOT / args.runs / nb.stem).resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        print(f"== [{k}/{len(chosen)}] {nb.stem} -> {args.runs}/{nb.stem}/", flush=True)
        t0 = time.time()
        ok, msg = run_one(nb, out_dir, params)
        print(f"== {nb.stem}: {msg} ({time.time() - t0:.0f} s)", flush=True)
        if not ok: failed.append(nb.stem)
        rows.append(result_row(nb, out_dir, ok, time.time() - t0, t0))
    print("\n" + summary(rows), flush=True)
    if failed:
        print(
            f"failed: {failed} (executed notebooks with the traceback in {args.runs}/<name>/)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
