"""Composed CALM forward vs the anchor and augment forwards run separately, side by side in one run.
Run: .venv/bin/python benchmarks/bench_calm.py [--steps 10] [--batch 8] [--seq 128] [--hidden 256]
[--layers 8] [--threads 1]

Separate: anchor forward + augment forward (output_hidden_states), both under no_grad. Composed:
CALMModel forward (augment once, anchor with the composition blocks every k-th layer), no_grad. Time
is the median over interleaved repetitions; peak memory is the peak of live tensor memory during one
call (CUDA: torch.cuda.max_memory_allocated above the baseline; CPU: the running sum of allocations
and frees recorded by torch.profiler with profile_memory). Models: two Llamas from config (random
weights), same vocabulary. Target: ratio <= 1.2.
"""
import argparse
import os
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from lingua_nb.calm import CALMConfig, CALMModel

    torch.set_num_threads(args.threads)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    def lm(seed):
        torch.manual_seed(seed)
        return (
            LlamaForCausalLM(
                LlamaConfig(
                    vocab_size=4000,
                    hidden_size=args.hidden,
                    intermediate_size=4 * args.hidden,
                    num_hidden_layers=args.layers,
                    num_attention_heads=8,
                    num_key_value_heads=8,
                )
            )
            .to(dev)
            .eval()
        )
    anchor, augment = lm(0), lm(1)
    calm = (
        CALMModel(
            CALMConfig(anchor.config, [augment.config], layer_maps="stride", k=args.k),
            anchor,
            [augment],
        )
        .to(dev)
        .eval()
    )
    ids = torch.randint(5, 4000, (args.batch, args.seq), device=dev); mask = torch.ones_like(ids)

    @torch.no_grad()
    def separate():
        augment(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False)
        anchor(input_ids=ids, attention_mask=mask, use_cache=False)

    @torch.no_grad()
    def composed(): calm(ids, mask)

    def peak(fn):
        if dev.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            fn()
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - base) / 2**20
        import torch.profiler as tp
        with tp.profile(activities=[tp.ProfilerActivity.CPU], profile_memory=True) as prof: fn()
        ev = sorted(
            ((e.time_range.start, e.cpu_memory_usage) for e in prof.events() if e.cpu_memory_usage),
            key=lambda x: x[0],
        )
        cur = best = 0
        for _, m in ev: cur += m; best = max(best, cur)
        return best / 2**20

    times = {"separate": [], "composed": []}
    for i in range(args.warmup + args.steps):  # interleaved, so load changes hit both alike
        for name, fn in (("separate", separate), ("composed", composed)):
            if dev.type == "cuda": torch.cuda.synchronize()
            t0 = time.perf_counter(); fn()
            if dev.type == "cuda": torch.cuda.synchronize()
            if i >= args.warmup: times[name].append(time.perf_counter() - t0)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    mem = {"separate": peak(separate), "composed": peak(composed)}
    n_conn = len(calm.blocks)
    print(
        f"device={dev.type} threads={torch.get_num_threads()} batch={args.batch} seq={args.seq}"
        f" hidden={args.hidden} layers={args.layers} connections={n_conn} steps={args.steps}"
    )
    for k_ in med: print(f"{k_:<9} median {med[k_] * 1000:8.1f} ms   peak {mem[k_]:8.1f} MiB")
    print(f"ratio composed / separate: time {med['composed'] / med['separate']:.2f}x, "
          f"peak memory {mem['composed'] / mem['separate']:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
