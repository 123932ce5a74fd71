"""Load time of every packaged alias: the first load in this process (converting into the cache if
it is cold)
and the second load (from the cache). A model's time includes one forward pass of one token, because
the cached safetensors are memory-mapped and read from disk only when first used. Run:
.venv/bin/python benchmarks/bench_zoo_load.py [--cold]

--cold uses a fresh temporary cache, so the first load includes the one-time conversion.
"""
import argparse
import os
import tempfile
import time

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--cold", action="store_true", help="convert into a fresh temporary cache first"
    )
    args = ap.parse_args()
    if args.cold: os.environ["LINGUA_NB_CACHE"] = tempfile.mkdtemp(prefix="lingua_nb_cache_")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lingua_nb.assets import (
        ASSETS,
        asset_path,
        cache_dir,
        load_causal_lm,
        load_encoder,
        load_tokenizer,
    )

    loaders = {"tokenizer": load_tokenizer, "causal_lm": load_causal_lm, "encoder": load_encoder}
    print(f"cache: {cache_dir()}")
    print(f"{'alias':<30}{'kind':<11}{'first (s)':>10}{'second (s)':>11}{'cache (MB)':>11}")
    for name, asset in ASSETS.items():
        for kind in asset.kinds:
            times = []
            for _ in range(2):
                t0 = time.perf_counter(); obj = loaders[kind](name)
                if kind != "tokenizer":
                    with torch.no_grad(): obj(input_ids=torch.tensor([[1]]))
                times.append(time.perf_counter() - t0)
                del obj
            entry = asset_path(name, kind)
            mb = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file()) / 2**20
            print(f"{name:<30}{kind:<11}{times[0]:>10.2f}{times[1]:>11.2f}{mb:>11.0f}", flush=True)


if __name__ == "__main__":
    main()
