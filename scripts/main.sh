#!/usr/bin/env bash
# The main job: set up, run every experiment notebook at its default parameters into runs/<name>/,
# then build the documentation site into _docs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} MPLBACKEND=Agg PYTHONUNBUFFERED=1
.venv/bin/python scripts/run_experiments.py "$@"
.venv/bin/python scripts/build_docs.py
