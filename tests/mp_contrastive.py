"""train_contrastive and train_lm on several processes: a tiny Llama, a word-level tokenizer, a few
steps each.

Run by test_multiprocess.py through mp_util.py (`check`), or alone, printing one JSON line per rank:
    OMP_NUM_THREADS=1 .venv/bin/python -m torch.distributed.run --nproc_per_node 2
    tests/mp_contrastive.py"""
import json
import random
import sys
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers

sys.path.insert(0, str(Path(__file__).parent))
from lingua_nb.contrastive import ContrastiveModel, train_contrastive, train_lm
from lingua_nb.core import tiny_llama
from mp_util import digest, trainable


def tokenizer(n=50):
    t = Tokenizer(
        models.WordLevel(
            {"[PAD]": 0, "[UNK]": 1, **{f"w{i}": i for i in range(2, n)}}, unk_token="[UNK]"
        )
    )
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=t, pad_token="[PAD]", unk_token="[UNK]"
    )


def check(acc):
    """Stage 1 (pooled layer 1 of 2: layer 2 and the head unused), then stage 3, on this rank; the
    batches it saw."""
    tok, seen = tokenizer(), []
    rng = random.Random(0)
    pairs = [
        (
            " ".join(f"w{rng.randint(3, 40)}" for _ in range(3)),
            " ".join(f"w{rng.randint(3, 40)}" for _ in range(2)),
        )
        for _ in range(32)
    ]
    model = ContrastiveModel.from_lm(
        tiny_llama(layers=2, hidden=16, vocab=50), layers=[1], tokenizer=tok
    )
    before = digest(*trainable(model))
    forward = model.forward
    def spy(*args, **kwargs):
        seen.append(args[0] if args else kwargs["input_ids"]); return forward(*args, **kwargs)
    model.forward = spy
    train_contrastive(
        model, tok, [pairs], steps=3, batch_size=4, lr=1e-2, progress=False, accelerator=acc
    )
    model.forward = forward
    train_lm(
        model.lm,
        tok,
        [k for k, _ in pairs],
        mode="full",
        steps=2,
        batch_size=4,
        lr=1e-2,
        progress=False,
        accelerator=acc,
    )
    return seen, model, before


if __name__ == "__main__":
    from accelerate import Accelerator, DistributedDataParallelKwargs
    acc = Accelerator(
        cpu=True, kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)]
    )
    batches, model, before = check(acc)
    print(json.dumps({"rank": acc.process_index, "batch_hash": digest(*batches), "before": before,
                      "param_hash": digest(*trainable(acc.unwrap_model(model)))}), flush=True)
