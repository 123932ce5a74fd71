"""Multi-process checks, run by test_multiprocess.py under `torchrun --nproc_per_node 2` (gloo,
CPU).

Each `mp_<name>.py` defines `check(acc) -> (batches, model, before)`: it trains a tiny model for a
few steps on this rank and returns the tensors of the batches this rank saw, the trained model and
`digest` of its trainable parameters before training. `python mp_util.py name ...` runs the named
checks in one launch and writes one JSON line per check to `$MP_OUT/rank<r>.jsonl` (a file per rank:
printed
lines of two ranks can interleave)."""
import hashlib
import importlib
import json
import os
import sys
from pathlib import Path

import torch
from accelerate import Accelerator


def digest(*tensors) -> str:
    "A short hash of tensors' values."
    h = hashlib.sha256()
    for t in tensors: h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def trainable(model) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


if __name__ == "__main__":
    acc = Accelerator(cpu=True)
    for name in sys.argv[1:]:
        batches, model, before = importlib.import_module(f"mp_{name}").check(acc)
        line = {
            "check": name,
            "rank": acc.process_index,
            "world": acc.num_processes,
            "batch_hash": digest(*batches),
            "before": before,
            "param_hash": digest(*trainable(acc.unwrap_model(model))),
        }
        with open(Path(os.environ["MP_OUT"]) / f"rank{acc.process_index}.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
