"""Multiple-choice scoring of one checkpoint on ARC-Challenge (English) and its Korean translation.
Run: .venv/bin/python benchmarks/bench_contrastive.py [--model smollm2-135m-instruct] [--items 299]
[--threads 2] [--profile] [--bf16]

`score_multiple_choice` runs each item's context once and its choices as one batch on copies of the
context's KV cache. Prints the wall time per language, items per second, and the extrapolation to
all 299 + 299 items (target: <= 180 s on a quiet 2-core machine). The profile shows matrix products
(aten::mm) at ~76% of the time, attention ~10%: scoring is compute-bound, so `--bf16` (autocast;
~3.5x faster products on CPUs with avx512_bf16) is the lever. `--profile` prints the top torch
operators of the Korean pass.
"""
import argparse
import os
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--items", type=int, default=299)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="score under bfloat16 autocast")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from lingua_nb.assets import load_causal_lm, load_tokenizer
    from lingua_nb.corpora import load_arc_challenge, load_ko_arc_challenge
    from lingua_nb.contrastive import score_multiple_choice

    torch.set_num_threads(args.threads)
    lm, tok = load_causal_lm(args.model), load_tokenizer(args.model)
    en, ko = load_arc_challenge("validation"), load_ko_arc_challenge()
    n = min(args.items, len(en))
    total = 0.0
    kw = {"progress": False, "autocast": torch.bfloat16 if args.bf16 else None}
    for lang, items in (("en", en.select(range(n))), ("ko", ko.select(range(n)))):
        t0 = time.perf_counter()
        if args.profile and lang == "ko":
            with torch.profiler.profile() as prof: score_multiple_choice(lm, tok, items, lang, **kw)
            print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=12))
        else: score_multiple_choice(lm, tok, items, lang, **kw)
        dt = time.perf_counter() - t0; total += dt
        print(f"{lang}: {n} items in {dt:.1f} s ({n / dt:.2f} items/s)")
    print(
        f"total {total:.1f} s for {n} + {n} items; extrapolated to 299 + 299: {total * 299 / n:.1f}"
        " s (target <= 180)"
    )


if __name__ == "__main__":
    main()
