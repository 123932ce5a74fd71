"""e5's stage-1 sweep: which recipe moves KO–EN retrieval on the *valid* pairs, at what cost.

    .venv/bin/python benchmarks/sweep_e5.py                     # every row below, 100 steps each
    .venv/bin/python benchmarks/sweep_e5.py --steps 40 --rows base lr_1e-4
    .venv/bin/python benchmarks/sweep_e5.py --rows lr_3e-5 --append   # add rows to the table

Each row trains the contrastive-only weighted variant of `lingua_nb.contrastive` from
SmolLM2-135M-Instruct on the `train` split of its pair sources, with one setting of the `base` row
changed. It is judged only on pairs e5 never scores: retrieval@1 (mean of KO→EN and EN→KO, pooled
with the learned weights) on the `valid` split of the LibreOffice pairs every `--eval-every` steps,
and the LM's next-token loss on the English side of those valid pairs at the end (how far the shared
tower's language modelling moved). The test pairs and ARC are never read. The JSON it writes
(`benchmarks/results/sweep_e5.json`, after every row) is the table e5 renders and took its
defaults from.
"""

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

ROWS = {  # name -> changes to the base row
    "base": {},
    "lr_1e-4": {"lr": 1e-4},
    "lr_3e-5": {"lr": 3e-5},
    "lr_1e-5": {"lr": 1e-5},
    "tau_0.1": {"temperature": 0.1},
    "batch_32": {"batch_size": 32},
    "layers_8-20": {"layers": [8, 10, 12, 14, 16, 18, 20]},
    "whole_128": {"max_length": 128, "whole": True},
    "plus_gettext": {"sources": ["libreoffice", "gettext"]},
    "layers_2-10": {"layers": [2, 4, 6, 8, 10]},
    "layers_2-10_lr_1e-4": {"layers": [2, 4, 6, 8, 10], "lr": 1e-4},
    "layers_2-10_lr_3e-5": {"layers": [2, 4, 6, 8, 10], "lr": 3e-5},
    "short_lr_1e-4": {"layers": [2, 4, 6, 8, 10], "lr": 1e-4, "max_length": 32, "whole": True},
    "short_lr_3e-5": {"layers": [2, 4, 6, 8, 10], "lr": 3e-5, "max_length": 32, "whole": True},
    "short_lr_3e-4": {"layers": [2, 4, 6, 8, 10], "lr": 3e-4, "max_length": 32, "whole": True},
    "short_tau_0.1": {"layers": [2, 4, 6, 8, 10], "lr": 1e-4, "max_length": 32, "whole": True,
                      "temperature": 0.1},
    "short_batch_32": {"layers": [2, 4, 6, 8, 10], "lr": 1e-4, "max_length": 32, "whole": True,
                       "batch_size": 32},
    "layers_2-10_plus_gsm": {"layers": [2, 4, 6, 8, 10], "lr": 1e-4,
                             "sources": ["libreoffice", "gsm_symbolic"]},
}
COSTS = {  # name -> changes to the base row, timed with --costs (a few steps, no evaluation)
    "base": {},
    "layers_2-10": {"layers": [2, 4, 6, 8, 10]},
    "layers_2-8": {"layers": [2, 4, 6, 8]},
    "max_length_32": {"max_length": 32},
    "layers_2-10_max_length_32": {"layers": [2, 4, 6, 8, 10], "max_length": 32},
    "max_length_128": {"max_length": 128},
    "batch_32": {"batch_size": 32},
    "gen": {"gen_weight": 1.0},
    "layers_2-10_gen": {"layers": [2, 4, 6, 8, 10], "gen_weight": 1.0},
    "fp32": {"precision": "fp32"},
}
BASE = {
    "lr": 3e-4,
    "temperature": 0.05,
    "batch_size": 16,
    "layers": [4, 6, 8, 10, 12, 14, 16],
    "max_length": 64,
    "whole": False,
    "sources": ["libreoffice"],
    "pooling_lr": 1e-2,
}


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--n-valid", type=int, default=200, help="valid pairs scored")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--out", default="benchmarks/results/sweep_e5.json")
    ap.add_argument("--append", action="store_true", help="keep the rows already in --out")
    ap.add_argument("--costs", action="store_true",
                    help="time --timed-steps steps of every COSTS row (into 'costs') instead")
    ap.add_argument("--timed-steps", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from lingua_nb.assets import (
        load_causal_lm,
        load_en_ko_pairs,
        load_tokenizer,
        sample_en_ko_pairs,
    )
    from lingua_nb.contrastive import (
        ContrastiveModel,
        evaluate_alignment,
        fitting_pairs,
        pairs_by_source,
        train_contrastive,
    )
    from lingua_nb.evaluate import reference_nll

    torch.set_num_threads(args.threads)
    precision = args.precision
    autocast = torch.bfloat16 if precision == "bf16" else None
    tok, base_lm = load_tokenizer("smollm2-135m-instruct"), load_causal_lm("smollm2-135m-instruct")
    if args.costs:
        return step_costs(args, tok, base_lm)
    valid = sample_en_ko_pairs(["libreoffice"], "valid", args.n_valid, seed=0)
    valid_pairs = {"valid": (list(valid["ko"]), list(valid["en"]))}
    base_nll = reference_nll(
        base_lm, tok, ["Text:" for _ in valid["en"]], [" " + e for e in valid["en"]]
    )
    base_nll = round(float(base_nll[:, 0].sum() / base_nll[:, 1].sum()), 3)
    table = []
    if args.append and Path(args.out).exists():
        old = json.loads(Path(args.out).read_text())
        if old.get("n_valid", args.n_valid) != args.n_valid:
            sys.exit(f"--append: the table's rows were scored on {old['n_valid']} valid pairs,"
                     f" not {args.n_valid}; pass --n-valid {old['n_valid']}")
        table = [r for r in old["rows"] if r["row"] not in args.rows]
    for name in args.rows:
        cfg = BASE | ROWS[name]
        train = load_en_ko_pairs(tuple(cfg["sources"]), split="train")
        sources = pairs_by_source(train, cfg["sources"])
        if cfg["whole"]:
            sources = [fitting_pairs(s, tok, cfg["max_length"]) for s in sources]
        model = ContrastiveModel.from_lm(
            copy.deepcopy(base_lm), layers=cfg["layers"], temperature=cfg["temperature"]
        )

        def score(m, done):
            t0 = time.time()
            ev = evaluate_alignment(
                m, tok, valid_pairs, batch_size=32, max_length=128, autocast=autocast
            )
            return {"valid_retrieval": 100 * ev["retrieval"]["valid"], "seconds": time.time() - t0}

        t0 = time.time()
        hist = train_contrastive(
            model,
            tok,
            sources,
            steps=args.steps,
            batch_size=cfg["batch_size"],
            lr=cfg["lr"],
            pooling_lr=cfg["pooling_lr"],
            max_length=cfg["max_length"],
            seed=0,
            mixed_precision="bf16" if autocast else "no",
            progress=True,
            eval_fn=score,
            eval_every=args.eval_every,
        )
        wall = time.time() - t0 - sum(e["seconds"] for e in hist.evals)  # training alone
        nll = reference_nll(
            model.lm, tok, ["Text:" for _ in valid["en"]], [" " + e for e in valid["en"]]
        )
        curve = {e["step"] - 1: round(e["valid_retrieval"], 1) for e in hist.evals}
        row = {
            "row": name,
            "changes": ROWS[name],
            "steps": args.steps,
            "s_per_step": round(wall / args.steps, 2),
            "train_pairs": sum(len(s) for s in sources),
            "valid_retrieval": curve,
            "final_infonce": round(sum(hist.extras["contrastive"][-10:]) / 10, 3),
            "en_valid_nll": round(float(nll[:, 0].sum() / nll[:, 1].sum()), 3),
        }
        table.append(row)
        print(json.dumps(row), flush=True)
        write(args, table, base_nll)


def step_costs(args, tok, base_lm):
    """Seconds per stage-1 step of every `COSTS` row: `--timed-steps` steps after one untimed
    step, no evaluation; written under "costs" beside the sweep's rows."""
    from accelerate.state import AcceleratorState
    from lingua_nb.assets import load_en_ko_pairs
    from lingua_nb.contrastive import ContrastiveModel, pairs_by_source, train_contrastive

    train = load_en_ko_pairs(("libreoffice",), split="train")
    sources, table = pairs_by_source(train, ["libreoffice"]), {}
    for name, change in COSTS.items():
        cfg = BASE | {"precision": args.precision, "gen_weight": 0.0} | change
        model = ContrastiveModel.from_lm(
            copy.deepcopy(base_lm), layers=cfg["layers"], temperature=cfg["temperature"]
        )
        kw = dict(batch_size=cfg["batch_size"], lr=cfg["lr"], gen_weight=cfg["gen_weight"],
                  max_length=cfg["max_length"], progress=False,
                  mixed_precision="bf16" if cfg["precision"] == "bf16" else "no")
        AcceleratorState._reset_state(True)  # a row may change the mixed precision
        times = []
        for n in (1, 1 + args.timed_steps):
            t0 = time.time()
            train_contrastive(model, tok, sources, steps=n, **kw)
            times.append(time.time() - t0)
        per_step = (times[1] - times[0]) / args.timed_steps
        table[name] = {"changes": change, "s_per_step": round(per_step, 2)}
        print(name, table[name], flush=True)
    path = Path(args.out)
    out = json.loads(path.read_text()) if path.exists() else {}
    out["costs"] = {"command": "python benchmarks/sweep_e5.py " + " ".join(sys.argv[1:]),
                    "threads": args.threads, "rows": table}
    save(path, out)


def write(args, table, base_nll):
    "The sweep so far, written atomically after every row (a stopped sweep keeps its rows)."
    path = Path(args.out)
    before = json.loads(path.read_text()) if path.exists() else {}
    commands = ["python benchmarks/sweep_e5.py " + " ".join(sys.argv[1:])]
    if args.append and before:
        old = before.get("commands") or [before["command"]]
        commands = old + [c for c in commands if c not in old]
    out = {
        "costs": before.get("costs"),
        "commands": commands,
        "eval_every": args.eval_every,
        "n_valid": args.n_valid,
        "precision": args.precision,
        "threads": args.threads,
        "base": BASE,
        "base_en_valid_nll": base_nll,
        "rows": table,
    }
    save(path, out)


def save(path: Path, out: dict):
    "Write the sweep's JSON atomically (a stopped sweep keeps what it wrote before)."
    from lingua_nb.core import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
