"""e3's two stages on SmolLM2-135M-Instruct + multilingual-e5-small (or `--encoder`): step times,
and a pilot of the mapping stage from a random and from the closed-form (token-alignment) start.

    .venv/bin/python benchmarks/sweep_e3.py                       # timing rows, then the pilot
    .venv/bin/python benchmarks/sweep_e3.py --steps 30 --n-eval 40 --threads 1
    .venv/bin/python benchmarks/sweep_e3.py --skip-timing --rows alignment@0 alignment@N
    .venv/bin/python benchmarks/sweep_e3.py --skip-timing --rows alignment@0 --enc-layers 4 6 8 -1
    .venv/bin/python benchmarks/sweep_e3.py --skip-timing --rows alignment@0 alignment@N \
        --steps 60 --encoder qwen2.5-coder-0.5b-instruct --enc-layers 3 6  # a causal LM

Timing rows: seconds per optimiser step of the mapping stage (`ReconstructionCollator`: the encoder
reads an English GSM-Symbolic question, the frozen LM writes it back) and of the task stage
(`LabelledCollator`: question in the encoder, gold chain of thought from the LM), both with the
encoder's states computed beforehand (`encoder_states`), in fp32 and under bf16 autocast; one
warm-up step, then `--timed-steps` steps. The encoder's own cost per text is timed once.

With `--pooled-tokens K` the soft prompt starts with K vectors made from the mean encoder state
(a sentence vector, which multilingual-e5 is trained to align across languages), and with
`--no-token-prompt` it is those alone.

Pilot rows `<init>@<steps>`: the bridge starts at random (the paper) or from `alignment_init` (a
ridge map from e5 token states to SmolLM2's input embeddings of the offset-aligned tokens, fitted
on the mapping texts) and trains `--steps` mapping steps (`@0`: none; `@N`: `--steps`). Each row
is judged on `--n-eval` held-out problems (GSM-Symbolic templates e3 holds out): the per-token NLL
of the English question after the bridge reads the English or the Korean question, matched and
mismatched (another problem's question), with the content effect (mismatched − matched) and its
95% paired bootstrap CI over problems; and one greedy reconstruction per language. Mapping texts
are English questions of the training templates only (asserted: no Hangul). With `--enc-layers`,
every pilot row runs once per encoder layer the bridge reads (`LangBridgeConfig.enc_layer`; -1:
the last, the paper's): a bridge fitted and trained on English alone passes Korean content only
as far as the encoder's states of a Korean question resemble those of its English twin.
`--encoder` takes an encoder's alias or a causal LM's (its decoder stack, `load_encoder`; no
prefix).

The JSON (`--out`, default `benchmarks/results/sweep_e3.json`) is rewritten atomically after
every row.
"""

import argparse
import os
import re
import time

ROWS = ("random@0", "alignment@0", "random@N", "alignment@N")
HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")


def parse_args():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", nargs="*", default=["alignment@0", "alignment@N", "random@N"],
                    choices=ROWS)
    ap.add_argument("--steps", type=int, default=30, help="mapping steps of the @N rows")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--ridge", type=float, default=1.0)
    ap.add_argument("--n-map", type=int, default=200, help="English mapping (and fitting) texts")
    ap.add_argument("--n-eval", type=int, default=40, help="held-out problems per language")
    ap.add_argument("--max-enc-length", type=int, default=160)
    ap.add_argument("--max-lm-length", type=int, default=160)
    ap.add_argument("--timed-steps", type=int, default=3)
    ap.add_argument("--precisions", nargs="*", default=["no"], choices=["no", "bf16"])
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--timing-last", action="store_true", help="the pilot rows first")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--enc-layers", nargs="*", type=int, default=[-1],
                    help="encoder layers the bridge reads, one set of pilot rows each (-1: last)")
    ap.add_argument("--pooled-tokens", nargs="*", type=int, default=[0],
                    help="soft tokens from the mean encoder state (LangBridgeConfig.pooled_tokens),"
                         " one set of pilot rows each")
    ap.add_argument("--no-token-prompt", action="store_true",
                    help="the soft prompt is the pooled tokens alone")
    ap.add_argument("--encoder", default="multilingual-e5-small",
                    help="the frozen encoder: an encoder alias, or a causal LM alias whose"
                         " decoder stack reads the question")
    ap.add_argument("--enc-prefix", default=None,
                    help="text before each encoder input (default: default_enc_prefix(--encoder))")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/sweep_e3.json")
    return ap.parse_args()


def timed_steps(model, rows, collate, args, mixed_precision):
    "Seconds per optimiser step: one warm-up step, then `args.timed_steps` timed ones."
    from lingua_nb.langbridge import train_bridge

    kw = dict(batch_size=args.batch_size, lr=args.lr, seed=args.seed, progress=False,
              mixed_precision=mixed_precision)
    train_bridge(model, rows, collate, steps=1, **kw)
    t0 = time.time()
    train_bridge(model, rows, collate, steps=args.timed_steps, **kw)
    return (time.time() - t0) / args.timed_steps


def lm_tokens(collate, rows):
    "Mean LM-side and encoder-side tokens per row of one collated batch."
    b = collate(rows)
    return float(b["attention_mask"].sum(1).float().mean()), float(
        b["enc_attention_mask"].sum(1).float().mean()
    )


def main():
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch
    from accelerate.state import AcceleratorState

    from lingua_nb.assets import load_tokenizer
    from lingua_nb.core import dump_json, seed_everything
    from lingua_nb.corpora import load_gsm_symbolic_parallel
    from lingua_nb.evaluate import bootstrap_indices
    from lingua_nb.experiment import machine_info
    from lingua_nb.langbridge import (LabelledCollator, LangBridgeConfig, LangBridgeModel,
                                      ReconstructionCollator, alignment_init,
                                      bridge_content_effect, bridge_generate, default_enc_prefix,
                                      encoder_states, train_bridge)

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    out = {"args": vars(args), "machine": machine_info("fp32"), "timing": [], "pilot": []}

    def save():
        dump_json(out, args.out)

    etok, ltok = load_tokenizer(args.encoder), load_tokenizer("smollm2-135m-instruct")
    # the grid's first layer: the states computed below serve its rows (not only another layer's)
    config = LangBridgeConfig(encoder_name=args.encoder, lm_name="smollm2-135m-instruct",
                              enc_layer=args.enc_layers[0])
    model = LangBridgeModel(config, enc_tokenizer=etok, lm_tokenizer=ltok)
    random_state = {k: v.clone() for k, v in model.bridge.state_dict().items()}
    random_pool = None
    gsm = load_gsm_symbolic_parallel(n_per_template=12, seed=args.seed, originals=False)
    train = gsm.filter(lambda s: s == "train", input_columns="split").shuffle(seed=args.seed)
    test = gsm.filter(lambda s: s == "test", input_columns="split").shuffle(seed=args.seed)
    map_texts = list(dict.fromkeys(train["question_eng"]))[: args.n_map]
    assert not any(HANGUL.search(t) for t in map_texts), "Korean text in the mapping texts"
    ev = test.select(range(min(args.n_eval, len(test))))
    frame = ltok.bos_token + "<|im_end|>\n<|im_start|>assistant\n"
    recon_prompt = frame + "The problem: "
    if args.enc_prefix is None: args.enc_prefix = default_enc_prefix(args.encoder)
    enc = dict(enc_prefix=args.enc_prefix, max_enc_length=args.max_enc_length)
    out["data"] = {"map_texts": len(map_texts), "n_eval": len(ev), "recon_prompt": recon_prompt}

    t0 = time.time()
    states = encoder_states(model, etok, map_texts, **enc)  # computed once, then cached
    out["data"]["encoder_states_s"] = time.time() - t0
    print(f"encoder states of {len(map_texts)} texts: {time.time() - t0:.1f} s", flush=True)
    map_rows = [{"text": t} for t in map_texts]
    recon = ReconstructionCollator(etok, ltok, lm_prompt=recon_prompt, states=states,
                                   max_lm_length=args.max_lm_length, **enc)
    save()

    def timing_rows():
        "Seconds per step of both stages."
        task_rows = [{"input": r["question_eng"], "output": frame + r["answer_eng"]}
                     for r in train.select(range(min(len(train), 4 * args.batch_size)))]
        task_states = encoder_states(model, etok, [r["input"] for r in task_rows], **enc)
        task = LabelledCollator(etok, ltok, max_lm_length=args.max_lm_length, states=task_states,
                                **enc)
        for stage, rows, collate in (("map", map_rows, recon), ("task", task_rows, task)):
            lm_len, enc_len = lm_tokens(collate, rows[: args.batch_size])
            for mp in args.precisions:
                AcceleratorState._reset_state(reset_partial_state=True)  # precision is global
                s = timed_steps(model, rows, collate, args, mp)
                row = {"stage": stage, "mixed_precision": mp, "batch_size": args.batch_size,
                       "s_per_step": s, "lm_tokens_per_row": lm_len,
                       "enc_tokens_per_row": enc_len,
                       "lm_tokens_per_s": args.batch_size * (lm_len + enc_len + 1) / s}
                out["timing"].append(row)
                print(row, flush=True)
                save()

    if not args.skip_timing and not args.timing_last:
        timing_rows()
    idx = bootstrap_indices(len(ev), seed=args.seed)
    refs = list(ev["question_eng"])
    inputs = {"en": refs, "ko": list(ev["question_kor"])}
    grid = [(k, n, r) for k in args.enc_layers for n in args.pooled_tokens for r in args.rows]
    for layer, pooled, name in grid:
        init, at = name.split("@")
        steps = 0 if at == "0" else args.steps
        shape = dict(pooled_tokens=pooled, token_prompt=not args.no_token_prompt)
        if (layer, pooled) != (model.config.enc_layer, model.config.pooled_tokens) or (
                model.config.token_prompt != shape["token_prompt"]):
            # the same encoder and LM, another layer read or another soft prompt
            torch.manual_seed(args.seed)
            model = LangBridgeModel(
                LangBridgeConfig(encoder_name=args.encoder,
                                 lm_name="smollm2-135m-instruct", enc_layer=layer, **shape),
                encoder=model.encoder, lm=model.lm, enc_tokenizer=etok, lm_tokenizer=ltok)
            random_pool = None if model.pool_bridge is None else {
                k: v.clone() for k, v in model.pool_bridge.state_dict().items()}
            states = encoder_states(model, etok, map_texts, **enc)
            recon = ReconstructionCollator(etok, ltok, lm_prompt=recon_prompt, states=states,
                                           max_lm_length=args.max_lm_length, **enc)
        model.bridge.load_state_dict(random_state)
        if random_pool:
            model.pool_bridge.load_state_dict(random_pool)
        with torch.no_grad():
            model.eos_embedding.copy_(model.lm.get_input_embeddings().weight.mean(0))
        tag = "".join([f" layer {layer}" if layer != -1 else "",
                       f" pooled {pooled}" if pooled else "",
                       " no token prompt" if args.no_token_prompt else ""])
        row = {"row": name + tag, "init": init, "steps": steps, "enc_layer": layer, **shape}
        if init == "alignment":
            t0 = time.time()
            row["fit"] = alignment_init(model, etok, ltok, map_texts, ridge=args.ridge,
                                        states=states, **enc)
            row["fit"]["seconds"] = time.time() - t0
        if steps:
            AcceleratorState._reset_state(reset_partial_state=True)
            t0 = time.time()
            hist = train_bridge(model, map_rows, recon, steps=steps, batch_size=args.batch_size,
                                lr=args.lr, seed=args.seed, progress=False)
            row["train_s"] = time.time() - t0
            row["loss_first5"] = float(np.mean(hist.loss[:5]))
            row["loss_last5"] = float(np.mean(hist.loss[-5:]))
        t0 = time.time()
        for lang, texts in inputs.items():
            r = bridge_content_effect(model, etok, ltok, texts, refs, idx, lm_prompt=recon_prompt,
                                      batch_size=8, **enc)
            row[lang] = r
            row[f"{lang}_example"] = bridge_generate(
                model, etok, ltok, texts[:1], lm_prompt=recon_prompt, max_new_tokens=32, **enc
            )[0]
        row["eval_s"] = time.time() - t0
        out["pilot"].append(row)
        print({k: v for k, v in row.items() if k not in ("en_example", "ko_example")}, flush=True)
        print("  en:", row["en_example"][:150], "\n  ko:", row["ko_example"][:150], flush=True)
        save()
    print("reference:", refs[0][:150])
    if not args.skip_timing and args.timing_last:
        timing_rows()


if __name__ == "__main__":
    main()
