"""Every trainer on two processes (torchrun, gloo, CPU): each rank draws its own batches, and both
ranks end with the
same trained parameters, which differ from those they started with. The checks are the `mp_*.py`
files here."""
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CHECKS = sorted(p.stem[3:] for p in HERE.glob("mp_*.py") if p.stem != "mp_util")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


@pytest.fixture(scope="module")
def lines() -> list[dict]:
    "One launch runs every check (process start-up is most of the cost)."
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "mp_util.py",
        *CHECKS,
    ]
    with tempfile.TemporaryDirectory() as out:
        env = os.environ | {
            "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "MP_OUT": out,
        }
        r = subprocess.run(cmd, cwd=HERE, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
        return [
            json.loads(l)
            for f in sorted(Path(out).glob("rank*.jsonl"))
            for l in f.read_text().splitlines()
        ]


@pytest.mark.parametrize("check", CHECKS)
def test_two_processes(lines, check):
    ranks = {l["rank"]: l for l in lines if l["check"] == check}
    assert (
        sorted(ranks) == [0, 1] and ranks[0]["world"] == 2
    ), f"{check}: expected one line from each of 2 ranks, got {ranks}"
    assert (
        ranks[0]["batch_hash"] != ranks[1]["batch_hash"]
    ), f"{check}: both ranks trained on the same batches"
    assert (
        ranks[0]["param_hash"] == ranks[1]["param_hash"]
    ), f"{check}: the ranks ended with different parameters"
    assert (
        ranks[0]["param_hash"] != ranks[0]["before"]
    ), f"{check}: training did not change the parameters"
