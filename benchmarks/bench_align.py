"""Speed and faithfulness of `lingua_nb.align` on the 1,319 GSM8K test answers (gold chain-of-thought texts),
GPT-2 byte-level BPE (src, the teacher side) → XLM-R SentencePiece (tgt, the student side).

Prints tokens per second (src + tgt tokens aligned per wall-clock second) of

* a plain pure-Python O(n·m) implementation of Fu et al.'s recurrence (written below: Python lists, one
  `editdistance.eval` and one `min` per cell, Fu's backtrace),
* `dp_align_batch` (all texts in one call; token strings, and token ids) and `dp_align` (one call per text), default
  band and full matrices,
* `offset_align_batch` and `offset_align` (tokenization with offsets done beforehand, as for the DP),

and the share of texts whose path equals the reference path, with the disagreements classified.

    python benchmarks/bench_align.py [--n 1319] [--repeats 3] [--json results.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import editdistance
import numpy as np

from lingua_nb.align import dp_align, dp_align_batch, normalize_tokens, offset_align, offset_align_batch, tokenize_batch
from lingua_nb.assets import load_gsm8k, load_tokenizer


# The reference is written out here, independently of lingua_nb.align (which has its own copy for the experiment),
# so that the benchmark checks the library against code it does not share.
def reference_dtw(src: list[str], tgt: list[str]) -> tuple[list[tuple[int, int]], float]:
    "Fu et al.'s recurrence and backtrace in plain Python on normalised strings: (links, total cost)."
    n, m = len(src), len(tgt)
    inf = float("inf")
    D = [[inf] * (m + 1) for _ in range(n + 1)]
    D[0][0] = 0.0
    for i in range(n):
        a, prev, row = src[i], D[i], D[i + 1]
        for j in range(m):
            row[j + 1] = editdistance.eval(a, tgt[j]) + min(prev[j], prev[j + 1], row[j])
    i, j, path = n, m, [(n - 1, m - 1)]
    while i > 1 or j > 1:
        diag, up, left = D[i - 1][j - 1], D[i - 1][j], D[i][j - 1]
        if diag <= up and diag <= left: i, j = i - 1, j - 1
        elif up <= left: i -= 1
        else: j -= 1
        path.append((i - 1, j - 1))
    return path[::-1], D[n][m]


def best_of(repeats: int, fn):
    "Fastest wall time of `repeats` calls, and the last result."
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter(); out = fn(); best = min(best, time.perf_counter() - t)
    return best, out


def classify(ref: list[tuple[int, int]], got: np.ndarray, src: list[str], tgt: list[str]) -> str:
    "Why a path differs from the reference, judged at its first differing link."
    got = [tuple(x) for x in got.tolist()]
    k = next(k for k, (x, y) in enumerate(zip(ref, got)) if x != y) if ref[:len(got)] != got[:len(ref)] else min(len(ref), len(got))
    i, j = (got[k] if k < len(got) else got[-1])
    near_src = src[max(i - 1, 0):i + 2]; near_tgt = tgt[max(j - 1, 0):j + 2]
    if any(s.strip() == "" or s.strip("\n") == "" for s in near_src) or any(s == "" for s in near_tgt):
        return "whitespace-only token attached elsewhere"
    if any("\udc80" <= c <= "\udcff" for s in near_src + near_tgt for c in s) or (len(set(near_src)) < len(near_src)):
        return "split character / repeated pieces"
    return "crossing token boundaries (edit cost prefers another split)"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=None, help="use only the first N answers (default: all 1,319)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repetitions of the fast paths (best is reported)")
    ap.add_argument("--band", type=int, default=6, help="band of dp_align (default 6, the library default)")
    ap.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args()

    texts = list(load_gsm8k("test")["answer"])[: args.n]
    gpt2, xlmr = load_tokenizer("gpt2"), load_tokenizer("xlm-r")
    ta, tb = tokenize_batch(texts, gpt2), tokenize_batch(texts, xlmr)
    src, tgt = [t.tokens for t in ta], [t.tokens for t in tb]
    n_tok = sum(len(a) + len(b) for a, b in zip(src, tgt))
    cells = sum(len(a) * len(b) for a, b in zip(src, tgt))
    print(f"{len(texts)} GSM8K test answers, GPT-2 → XLM-R: {n_tok:,} tokens, {cells:,} DP cells; "
          f"{platform.processor() or platform.machine()}, numpy {np.__version__}")

    # --- reference (normalisation done beforehand, i.e. not timed: favours the reference)
    nsrc = [normalize_tokens(s, "byte_level") for s in src]
    ntgt = [normalize_tokens(t, "sentencepiece") for t in tgt]
    t0 = time.perf_counter()
    ref = [reference_dtw(a, b) for a, b in zip(nsrc, ntgt)]
    t_ref = time.perf_counter() - t0

    # --- the library (warm-up call first: caches of normalised tokenizer strings)
    dp_align_batch(src[:50], tgt[:50], gpt2, xlmr, band=args.band)
    stats = {}
    t_dp, dp = best_of(args.repeats, lambda: dp_align_batch(src, tgt, gpt2, xlmr, band=args.band, stats=stats))
    ids_a = [np.array(x) for x in gpt2(texts, add_special_tokens=False)["input_ids"]]
    ids_b = [np.array(x) for x in xlmr(texts, add_special_tokens=False)["input_ids"]]
    dp_align_batch(ids_a[:50], ids_b[:50], gpt2, xlmr, band=args.band)
    t_ids, dp_ids = best_of(args.repeats, lambda: dp_align_batch(ids_a, ids_b, gpt2, xlmr, band=args.band))
    t_single, dp1 = best_of(1, lambda: [dp_align(a, b, gpt2, xlmr, band=args.band) for a, b in zip(src, tgt)])
    t_full, full = best_of(1, lambda: dp_align_batch(src, tgt, gpt2, xlmr, band=None))
    t_off, off = best_of(args.repeats, lambda: offset_align_batch(texts, ta, tb))
    t_off1, _ = best_of(1, lambda: [offset_align_batch([x], [a], [b])[0] for x, a, b in zip(texts, ta, tb)])

    same = lambda als: [a.links.tolist() == [list(x) for x in r[0]] for a, r in zip(als, ref)]
    dp_same, off_same, full_same = same(dp), same(off), same(full)
    single_same = [a == b for a, b in zip(dp1, dp)]
    cost_ok = all(a.cost == r[1] for a, r in zip(full, ref))
    why = Counter(classify(r[0], a.links, s, t) for a, r, s, t, ok in zip(off, ref, nsrc, ntgt, off_same) if not ok)
    why_dp = Counter("equal cost, another tie" if a.cost == r[1] else "cheaper path outside the band"
                     for a, r, ok in zip(dp, ref, dp_same) if not ok)
    agree = float(np.mean([a.agreement(b) for a, b in zip(dp, off)]))

    rate = lambda t: n_tok / t
    rows = [("reference (pure Python)", t_ref, rate(t_ref), 1.0, 1.0),
            (f"dp_align_batch (band={args.band})", t_dp, rate(t_dp), t_ref / t_dp, np.mean(dp_same)),
            (f"dp_align_batch, token ids", t_ids, rate(t_ids), t_ref / t_ids, np.mean(same(dp_ids))),
            ("dp_align_batch (band=None, full)", t_full, rate(t_full), t_ref / t_full, np.mean(full_same)),
            (f"dp_align, one call per text", t_single, rate(t_single), t_ref / t_single, np.mean(dp_same)),
            ("offset_align_batch", t_off, rate(t_off), t_ref / t_off, np.mean(off_same)),
            ("offset_align, one call per text", t_off1, rate(t_off1), t_ref / t_off1, np.mean(off_same))]
    print(f"\n{'method':36s} {'seconds':>9s} {'tokens/s':>12s} {'× reference':>12s} {'same path as reference':>24s}")
    for name, t, r, x, s in rows: print(f"{name:36s} {t:9.3f} {r:12,.0f} {x:12.1f} {s:24.2%}")
    print(f"\nfull-matrix costs equal the reference's on every text: {cost_ok}; dp_align one call per text equals the "
          f"batch on {np.mean(single_same):.2%}; settling rounds {stats.get('rounds')}, widened texts {stats.get('widened')}")
    print(f"dp_align_batch paths differing from the reference: {sum(not x for x in dp_same)} {dict(why_dp)}")
    print(f"offset paths differing from the reference: {sum(not x for x in off_same)} of {len(off_same)}; "
          f"first difference: {dict(why)}")
    print(f"student (XLM-R) tokens linked alike by DP and offsets: {agree:.2%}")
    if args.json:
        out = dict(n_texts=len(texts), n_tokens=n_tok, n_cells=cells, band=args.band,
                   tokens_per_s=dict(reference=rate(t_ref), dp_batch=rate(t_dp), dp_batch_ids=rate(t_ids), dp_full=rate(t_full),
                                     dp_single=rate(t_single),
                                     offset_batch=rate(t_off), offset_single=rate(t_off1)),
                   speedup=dict(dp_batch=t_ref / t_dp, dp_batch_ids=t_ref / t_ids, dp_full=t_ref / t_full, dp_single=t_ref / t_single,
                                offset_batch=t_ref / t_off, offset_single=t_ref / t_off1),
                   same_path_as_reference=dict(dp_batch=float(np.mean(dp_same)), dp_full=float(np.mean(full_same)),
                                               offset=float(np.mean(off_same))),
                   offset_differences=dict(why), dp_differences=dict(why_dp), agreement_dp_offset=agree)
        with open(args.json, "w") as f: json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
