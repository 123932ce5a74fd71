#!/usr/bin/env bash
# The test command: set up if needed, then pytest runs every library notebook (nbdev's runner), every experiment
# notebook in smoke mode (papermill) and the package tests in tests/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} MPLBACKEND=Agg PYTHONUNBUFFERED=1
exec .venv/bin/python -m pytest tests "$@"
