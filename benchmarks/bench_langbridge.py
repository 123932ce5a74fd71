"""Train-step time of LangBridge vs the LM alone on the same LM tokens, side by side in one run.
Run: .venv/bin/python benchmarks/bench_langbridge.py [--steps 5] [--batch 8] [--enc_len 32] [--lm_len 32]

LangBridge step: frozen encoder (no grad) -> bridge -> frozen LM over [soft prompt, eos, LM tokens], loss on the LM
tokens, backward into the bridge, AdamW step. LM-alone step: the same LM tokens through the same frozen LM, loss on
the same targets, backward to its input embeddings (the cheapest step that still back-propagates through every LM
layer). Both use the real zoo models (multilingual-e5-small, SmolLM2-135M-Instruct). Target: ratio <= 1.3.
"""
import argparse
import os
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--enc_len", type=int, default=32)
    ap.add_argument("--lm_len", type=int, default=32)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from lingua_nb.langbridge import LangBridgeConfig, LangBridgeModel

    torch.manual_seed(0)
    model = LangBridgeModel(LangBridgeConfig(encoder_name="multilingual-e5-small", lm_name="smollm2-135m-instruct"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=6e-4, weight_decay=0.0)
    b = args.batch
    enc_ids = torch.randint(5, 1000, (b, args.enc_len)); enc_mask = torch.ones_like(enc_ids)
    ids = torch.randint(5, 1000, (b, args.lm_len)); mask = torch.ones_like(ids)

    def lb_step():
        loss = model(enc_ids, enc_mask, ids, mask, labels=ids).loss
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)

    def lm_step():
        emb = model.lm.get_input_embeddings()(ids).detach().requires_grad_(True)
        model.lm(inputs_embeds=emb, attention_mask=mask, labels=ids).loss.backward()

    times = {"lm_alone": [], "langbridge": []}
    for i in range(args.warmup + args.steps):  # interleaved, so load changes hit both alike
        for name, fn in (("lm_alone", lm_step), ("langbridge", lb_step)):
            t0 = time.perf_counter(); fn(); dt = time.perf_counter() - t0
            if i >= args.warmup: times[name].append(dt)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    print(f"threads={torch.get_num_threads()} batch={b} enc_len={args.enc_len} lm_len={args.lm_len} steps={args.steps}")
    for k, v in med.items(): print(f"{k:<12} median {v * 1000:8.1f} ms/step")
    print(f"ratio langbridge / lm_alone: {med['langbridge'] / med['lm_alone']:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
