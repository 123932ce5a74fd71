"""Run experiment notebooks with papermill into runs/<name>/<name>.ipynb.

    python scripts/run_experiments.py                      # every notebook in nbs/experiments, default parameters
    python scripts/run_experiments.py e1_alignment -p seed 1 # one notebook, with parameters (as papermill's -p)
"""
import argparse
import sys
import time
from pathlib import Path

import papermill as pm
import yaml

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="experiment names (default: all of nbs/experiments/*.ipynb)")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a parameter, its value parsed as YAML like papermill's -p")
    ap.add_argument("--runs", default="runs", help="root of the run directories")
    args = ap.parse_args(argv)
    nbs = sorted((ROOT / "nbs" / "experiments").glob("*.ipynb"))
    known = {nb.stem: nb for nb in nbs}
    unknown = [n for n in args.names if n not in known]
    if unknown: ap.error(f"unknown experiment(s) {unknown}; known: {sorted(known)}")
    chosen = [known[n] for n in args.names] or nbs
    params = {k: yaml.safe_load(v) for k, v in args.parameter}
    failed = []
    for nb in chosen:
        out_dir = ROOT / args.runs / nb.stem
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        print(f"== {nb.stem}: running -> {out_dir.relative_to(ROOT)}/", flush=True)
        try:
            pm.execute_notebook(str(nb), str(out_dir / nb.name), parameters={"out_dir": str(out_dir), **params},
                                cwd=str(ROOT), kernel_name="python3", progress_bar=False)
            print(f"== {nb.stem}: done in {time.time() - t0:.0f} s", flush=True)
        except pm.PapermillExecutionError as e:
            print(f"== {nb.stem}: FAILED in cell {e.cell_index}: {e.ename}: {e.evalue}", flush=True)
            failed.append(nb.stem)
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
