"""e4's composition sweep: what makes CALM's cross-attention learn KV arithmetic over unseen keys.

    .venv/bin/python benchmarks/sweep_e4.py                       # every row below
    .venv/bin/python benchmarks/sweep_e4.py --rows base keys_60 --steps 300
    .venv/bin/python benchmarks/sweep_e4.py --rows lr_3e-3 --append  # add rows to the table

The anchor (SmolLM2-135M-Instruct fine-tuned on numeric arithmetic) and the augment (its first
layers fine-tuned on KV substitution over every key) are e4's own, built with e4's default task and
training settings and read from the cache (`lingua_nb.calm.cached_fit`), so every row composes the
same two models. Each row trains only the composition blocks, with one setting of the `base` row
changed, and is judged on the *valid* splits of `lingua_nb.tasks.kv_tasks` (never on a test
split): KV arithmetic over keys the composition never saw, over composition keys in unseen
expressions, and numeric arithmetic (the anchor's own skill). Two diagnostics ride along: the
anchor's exact match on the numeric twins of the unseen-key items (each key replaced by its value:
the most a composition can get from this anchor), and per row the composition's exact match on its
own KV training rows and, for every block, where its cross-attention looks from an operand's key
position (the share on the same position, the augment's state of that very key) and from the `=`
position (the share on the operands' positions). The JSON it writes
(`benchmarks/results/sweep_e4.json`, after every row) is the table e4 renders and took its defaults
from.
"""

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

SAME = [[1, 1], [3, 3], [5, 5], [7, 7], [9, 9]]
ROWS = {  # name -> changes to the base row
    "base": {},
    "keys_60": {"comp_keys": 60},
    "keys_200": {"comp_keys": 200},
    "steps_150": {"steps": 150},
    "steps_600": {"steps": 600},
    "lr_3e-4": {"lr": 3e-4},
    "lr_3e-3": {"lr": 3e-3},
    "map_deep_to_early": {"layer_map": [[1, 5], [2, 7], [3, 9]]},
    "map_every_layer": {"layer_map": [[i, i] for i in range(10)]},
    "map_stride4": {"layer_map": [[3, 3], [7, 7]]},
    "heads_2": {"heads": 2},
    "num_rows_20": {"num_frac": 0.2},
    "num_rows_20_steps_1000": {"num_frac": 0.2, "steps": 1000},
    "num_rows_10_steps_1000": {"num_frac": 0.1, "steps": 1000},
    "oracle_proj": {"oracle": True},
    "norm": {"norm_augment": True},
    "norm_lr_3e-3": {"norm_augment": True, "lr": 3e-3},
    "norm_deep_to_early": {"norm_augment": True, "layer_map": [[1, 5], [2, 7], [3, 9]]},
    "norm_steps_600": {"norm_augment": True, "steps": 600},
    "num_rows_20_same_4": {"num_frac": 0.2, "same_position": 4.0},
}
BASE = {
    "comp_keys": None,  # composition keys the rows use (None: all of them)
    "steps": 600,
    "lr": 1e-3,
    "batch_size": 32,
    "layer_map": SAME,
    "heads": 8,
    "num_frac": 0.0,  # share of numeric-arithmetic rows in the composition set (not the paper's)
    "oracle": False,  # each block's projection starts from the closed-form map (see below)
    "norm_augment": False,  # RMS-normalise the augment states before the projection
    "same_position": None,  # each head's starting bonus on the key's own position (not the paper's)
}


def draw_rows(keys, n, n_operands, ops, exclude, seed):
    "n distinct expressions over `keys`, none in `exclude`."
    rng, out, seen = random.Random(seed), [], set(exclude)
    while len(out) < n:
        e = (tuple(rng.choices(keys, k=n_operands)), tuple(rng.choices(ops, k=n_operands - 1)))
        if e not in seen:
            seen.add(e)
            out.append(e)
    return out


def attention_shares(calm, tok, pairs):
    """Per block: the mean share of cross-attention (over heads and items) that an operand's key
    position (the second and later ones) puts on the same augment position, and that the `=`
    position puts on those operands' positions. Items whose prompt is not one token per key and
    per operator are skipped."""
    import torch

    n = 2 * sum(pairs[0][0].count(o) for o in "+-*") + 2  # k + k - k =: keys at 0, 2, ...
    prompts = [tok.encode(p, add_special_tokens=False) for p, _ in pairs]
    ids = torch.tensor([p for p in prompts if len(p) == n])
    if not len(ids):
        return None
    keys = list(range(2, n - 1, 2))  # the first key's position reads only itself: left out
    found = {}

    def hook(i):
        def fn(block, args, output):
            with torch.no_grad():
                w = block.forward(*args, output_attentions=True)[1]  # (b, h, t_q, t_k)
                w = w.float().mean(1)  # over heads
            found[i] = {
                "key_on_same_position": round(float(w[:, keys, keys].mean()), 3),
                "equals_on_keys": round(float(w[:, -1, keys].sum(-1).mean()), 3),
            }
        return fn

    handles = [blk.register_forward_hook(hook(i)) for i, blk in enumerate(calm.blocks)]
    try:
        with torch.no_grad():
            calm(input_ids=ids)
    finally:
        for h in handles:
            h.remove()
    return [found[i] for i in sorted(found)]


def oracle_projection(calm, anchor, augment, tok, tasks, ridge=1.0):
    """Start each block's projection from the closed-form linear map that takes the augment's state
    at a composition key (after `+`) to the anchor's state at the digit of the key's value, at the
    block's own two layers: the projection a perfect composition would need, fitted in closed form
    (ridge regression) on the composition keys only."""
    import torch

    keys = tasks.comp_keys
    def states(model, texts):
        ids = torch.tensor([tok.encode(t, add_special_tokens=False) for t in texts])
        with torch.no_grad():
            hs = model(input_ids=ids, output_hidden_states=True).hidden_states
        return [h[:, -1].float() for h in hs]
    aug = states(augment, ["+" + k for k in keys])
    anc = states(anchor, ["+" + str(tasks.values[k]) for k in keys])
    for (_, a_layer, g_layer), blk in zip(calm.connections, calm.blocks):
        x, y = aug[g_layer + 1], anc[a_layer + 1]  # outputs of the connected layers
        x1 = torch.cat([x, torch.ones(len(x), 1)], 1)
        w = torch.linalg.solve(x1.T @ x1 + ridge * torch.eye(x1.shape[1]), x1.T @ y)
        with torch.no_grad():
            blk.proj.weight.copy_(w[:-1].T)
            blk.proj.bias.copy_(w[-1])


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--steps", type=int, default=None, help="the base row's steps")
    ap.add_argument("--n-valid", type=int, default=200)
    ap.add_argument("--eval-every", type=int, default=0,
                    help="score the valid splits every N steps too (0: at the end only)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/sweep_e4.json")
    ap.add_argument("--append", action="store_true", help="keep the rows already in --out")
    ap.add_argument("--notebook", default="nbs/experiments/e4_calm_kv.ipynb")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from lingua_nb.assets import load_causal_lm, load_tokenizer
    from lingua_nb.calm import CALMConfig, CALMModel, fit, kv_models
    from lingua_nb.core import atomic_path, autocast_dtype, resolve_precision
    from lingua_nb.tasks import (composition_pairs, encode_pairs, exact_match, kv_tasks,
                                 vocab_keys)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from publish_results import notebook_defaults

    torch.set_num_threads(args.threads)
    p = notebook_defaults(Path(args.notebook))
    precision = resolve_precision(p["precision"], "cpu")
    amp = autocast_dtype(precision)
    mixed = "bf16" if precision == "bf16" else "no"
    tok = load_tokenizer(p["lm"])
    task_args = ("n_keys", "max_value", "n_operands", "ops", "comp_key_frac", "n_train", "n_subs")
    tasks = kv_tasks(
        **{k: p[k] for k in task_args + ("n_comp", "n_test", "seed")},
        keys=vocab_keys(tok),
        sep="",
        n_valid=args.n_valid,
    )
    anchor, augment, _ = kv_models(
        load_causal_lm(p["lm"]),
        p["lm"],
        tok,
        tasks,
        p["augment_layers"],
        (p["steps_anchor"], p["steps_augment"]),
        (p["lr_anchor"], p["lr_augment"]),
        batch_size=(p["batch_size"], p["batch_augment"]),
        seed=p["seed"],
        mixed_precision=mixed,
    )

    def score(model):
        "Exact match (%) on the valid splits."
        return {
            name: exact_match(model, tok, tasks.pairs(split, kind), bos=False, autocast=amp)
            for name, split, kind in (
                ("kv_math_unseen_keys", "valid_math", "kv_math"),
                ("kv_math_comp_keys", "valid_math_seen", "kv_math"),
                ("num_math", "valid_num", "num_math"),
            )
        }

    def timed_score(model, done):
        "`score` during training, with its seconds (taken off the step time)."
        t0 = time.time()
        return score(model) | {"seconds": time.time() - t0}

    out = Path(args.out)
    old = json.loads(out.read_text()) if args.append and out.exists() else {}
    table = old.get("rows", {})
    command = "python benchmarks/sweep_e4.py " + " ".join(sys.argv[1:])
    if old.get("command"):
        command = old["command"] + "; " + command
    reference = {"anchor": score(anchor), "augment": score(augment)}
    reference["anchor"]["num_twins_of_unseen_keys"] = exact_match(  # the composition's ceiling
        anchor, tok, tasks.pairs("valid_math", "num_math"), bos=False, autocast=amp
    )
    reference["augment"]["kv_subs_valid"] = exact_match(
        augment, tok, tasks.pairs("valid_math", "kv_subs"), bos=False, autocast=amp
    )
    print(reference, flush=True)
    for name in args.rows:
        cfg = BASE | ({"steps": args.steps} if args.steps else {}) | ROWS[name]
        keys = tasks.comp_keys[: cfg["comp_keys"]] if cfg["comp_keys"] else tasks.comp_keys
        if cfg["comp_keys"]:  # a smaller composition set over the first comp_keys keys
            assert not cfg["num_frac"], "a row with comp_keys draws no numeric rows"
            exclude = set(tasks.splits["test_math_seen"]) | set(tasks.splits["valid_math_seen"])
            comp = draw_rows(keys, p["n_comp"], p["n_operands"], p["ops"], exclude, 1)
            pairs = [tasks.pair(e, "kv_math") for e in comp]
        else:
            pairs = composition_pairs(tasks, cfg["num_frac"])
        calm = CALMModel(
            CALMConfig(
                anchor.config,
                [augment.config],
                layer_maps=[cfg["layer_map"]],
                num_heads=cfg["heads"],
                norm_augment=cfg["norm_augment"],
                same_position=cfg["same_position"],
            ),
            anchor,
            [augment],
        )
        if cfg["oracle"]:
            oracle_projection(calm, anchor, augment, tok, tasks)
        t0 = time.time()
        hist = fit(
            calm,
            **encode_pairs(tok, pairs, bos=False),
            steps=cfg["steps"],
            batch_size=cfg["batch_size"],
            lr=cfg["lr"],
            warmup=max(1, cfg["steps"] // 10),
            seed=p["seed"],
            mixed_precision=mixed,
            desc=name,
            eval_fn=timed_score if args.eval_every else None,
            eval_every=args.eval_every,
        )
        secs = time.time() - t0
        curve = [{k: v for k, v in e.items() if k != "seconds"} for e in hist.evals]
        secs -= sum(e["seconds"] for e in hist.evals)
        final = {k: v for k, v in curve[-1].items() if k != "step"} if curve else score(calm.eval())
        kv_rows = [q for q in pairs if not q[0][0].isdigit()][: args.n_valid]
        final["kv_math_train_rows"] = exact_match(calm.eval(), tok, kv_rows, bos=False,
                                                  autocast=amp)
        final["attention"] = attention_shares(calm, tok, tasks.pairs("valid_math", "kv_math"))
        row = {
            "settings": cfg,
            "n_comp_keys": len(keys),
            "s_per_step": round(secs / cfg["steps"], 3),
            "final_loss": round(sum(hist.loss[-20:]) / len(hist.loss[-20:]), 4),
        } | final | ({"curve": curve} if curve else {})
        table[name] = row
        print(name, json.dumps(row), flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            tmp.write_text(
                json.dumps(
                    {
                        "command": command,
                        "base": BASE,
                        "n_valid": args.n_valid,
                        "n_keys": len(tasks.keys),
                        "n_comp_keys": len(tasks.comp_keys),
                        "precision": precision,
                        "threads": args.threads,
                        **reference,
                        "rows": table,
                    },
                    indent=1,
                )
            )


if __name__ == "__main__":
    main()
