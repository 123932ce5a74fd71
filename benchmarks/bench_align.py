"""Speed and faithfulness of `lingua_nb.align` against a pure-Python implementation of Fu et al.'s
recurrence,
GPT-2 byte-level BPE (src, the teacher side) → XLM-R SentencePiece (tgt, the student side), on

* short texts: the English and the Korean sides of the project's EN–KO pairs (`load_en_ko_pairs`)
  whose two
  tokenizations both have at most 40 tokens;
* the short texts whose longer tokenization has 20 to 40 tokens (sentences rather than emoji names),
  separately;
* long texts: the 1,319 GSM8K test answers (gold chains of thought, ~100 tokens a side).

Per text set it prints the wall time, the speed-up over the reference and the share of texts whose
path equals the reference path of every way `lingua_nb.align` offers
(`lingua_nb.align.time_aligners`):

* the reference: Python lists, one `editdistance.eval` and one `min` per cell, Fu's backtrace, on
  normalised
  strings made beforehand (not timed: this favours the reference), best of `--repeats` runs like the
  others;
* tokenizing only: both fast tokenizers' batch calls into flat arrays (`tokenize_batch(...,
  as_arrays=True)`);
* DP (`dp_align_batch`): from token strings (normalisation timed), default band and full matrices;
  from `TokenBatch`es
  made beforehand into an `AlignmentBatch` (`as_arrays=True`); the same with the tokenizing timed;
  `dp_align` one call per text;
* offsets (`offset_align_batch`): from `Tokenized` lists; from `TokenBatch`es into an
  `AlignmentBatch`; the same
  with the tokenizing timed; and `align_batch(method="auto")` from the two tokenizers.

Rows whose name says *tokenizing* count the tokenizers' time; the others start from tokenizations
made beforehand. Also printed: the call overhead of `dp_align` on a one-token pair.

    python benchmarks/bench_align.py [--n-short 4000] [--n-long 1319] [--repeats 3] [--json
    results.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import editdistance
import numpy as np

from lingua_nb.align import call_overhead, time_aligners
from lingua_nb.assets import load_tokenizer
from lingua_nb.corpora import load_en_ko_pairs, load_gsm8k

SHORT_MAX = 40  # tokens a side at most for a "short" text


# The reference is written out here, independently of lingua_nb.align (which has its own copy for
# the experiment),
# so that the benchmark checks the library against code it does not share.
def reference_dtw(src: list[str], tgt: list[str]) -> tuple[list[tuple[int, int]], float]:
    """Fu et al.'s recurrence and backtrace in plain Python on normalised strings: (links, total
    cost)."""
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


def text_sets(n_short: int, n_long: int, gpt2, xlmr) -> dict[str, list[str]]:
    """Short texts (EN and KO sides of the EN–KO pairs, ≤ SHORT_MAX tokens a side; also those of
    them whose longer
    side has at least 20 tokens) and long ones (GSM8K answers)."""
    pairs = load_en_ko_pairs()
    # EN and KO interleaved
    both = [t for en, ko in zip(pairs["en"], pairs["ko"]) for t in (en, ko)]
    na = [len(x) for x in gpt2(both, add_special_tokens=False)["input_ids"]]
    nb = [len(x) for x in xlmr(both, add_special_tokens=False)["input_ids"]]
    short = [
        (t, max(a, b)) for t, a, b in zip(both, na, nb) if 0 < a <= SHORT_MAX and 0 < b <= SHORT_MAX
    ]
    return {
        "short": [t for t, _ in short][:n_short],
        # sentences rather than names
        "short, 20-40 tokens": [t for t, k in short if k >= 20][:n_short],
        "long": list(load_gsm8k("test")["answer"])[:n_long],
    }


def measure(texts: list[str], gpt2, xlmr, band: int, repeats: int) -> dict:
    """Seconds, speed-up over the reference and share of reference paths of every method on one text
    set."""
    rows = time_aligners(texts, gpt2, xlmr, band, repeats, reference=reference_dtw)
    n_tok = sum(
        len(a) + len(b)
        for a, b in zip(
            gpt2(texts, add_special_tokens=False)["input_ids"],
            xlmr(texts, add_special_tokens=False)["input_ids"],
        )
    )
    return dict(
        texts=len(texts), tokens=n_tok, tokens_per_text_side=n_tok / 2 / len(texts), methods=rows
    )


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n-short", type=int, default=4000, help="short texts at most (default 4,000)")
    ap.add_argument(
        "--n-long", type=int, default=1319, help="GSM8K answers at most (default all 1,319)"
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed repetitions of the fast paths (best is reported)",
    )
    ap.add_argument(
        "--band", type=int, default=6, help="band of dp_align (default 6, the library default)"
    )
    ap.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)

    gpt2, xlmr = load_tokenizer("gpt2"), load_tokenizer("xlm-r")
    print(
        f"GPT-2 → XLM-R; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy"
        f" {np.__version__}"
    )
    out = {"band": args.band, "cpus": os.cpu_count()}
    for kind, texts in text_sets(args.n_short, args.n_long, gpt2, xlmr).items():
        res = out[kind] = measure(texts, gpt2, xlmr, args.band, args.repeats)
        print(
            f"\n{kind}: {res['texts']} texts, {res['tokens_per_text_side']:.1f} tokens a side on"
            " average"
        )
        print(
            f"{'method':38s} {'seconds':>9s} {'× reference':>12s} {'same path as reference':>23s}"
        )
        for name, r in res["methods"].items():
            same = "" if r["same_path"] is None else f"{r['same_path']:.2%}"
            print(f"{name:38s} {r['seconds']:9.4f} {r['speedup']:12.1f} {same:>23s}")
    out["dp_align_call_overhead_ms"] = call_overhead(gpt2, xlmr) * 1e3
    print(
        "\ndp_align call overhead (one-token pair, median):"
        f" {out['dp_align_call_overhead_ms']:.3f} ms"
    )
    if args.json:
        with open(args.json, "w") as f: json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
