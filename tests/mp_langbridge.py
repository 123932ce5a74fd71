"train_bridge: a tiny BERT encoder, a tiny Llama, the labelled collator."
import random

import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers

from lingua_nb.core import tiny_llama
from mp_util import digest, trainable
from lingua_nb.langbridge import LabelledCollator, LangBridgeConfig, LangBridgeModel, train_bridge


def tokenizer(n=50):
    t = Tokenizer(
        models.WordLevel(
            {"[PAD]": 0, "[UNK]": 1, **{f"w{i}": i for i in range(2, n)}}, unk_token="[UNK]"
        )
    )
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=t, pad_token="[PAD]", unk_token="[UNK]", eos_token="w49"
    )


def check(acc):
    torch.manual_seed(0)
    enc = transformers.BertModel(
        transformers.BertConfig(
            vocab_size=50,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    )
    lb = LangBridgeModel(
        LangBridgeConfig(), encoder=enc, lm=tiny_llama(layers=1, hidden=16, vocab=50)
    )
    data = [
        {"input": " ".join(f"w{random.Random(i * 3 + j).randint(3, 40)}" for j in range(3))}
        for i in range(32)
    ]
    for d in data: d["output"] = d["input"]
    collate, seen = LabelledCollator(tokenizer(), tokenizer()), []
    def spy(examples):
        b = collate(examples); seen.append(b["enc_input_ids"]); return b
    before = digest(*trainable(lb))
    train_bridge(lb, data, spy, steps=3, batch_size=4, lr=1e-2, progress=False, accelerator=acc)
    return seen, lb, before
