"""Probe the public boundaries with bad inputs and valid edge inputs; tally outcomes by category.

Each bad input is run in a forked child and classed as `clear` (ValueError, TypeError or IndexError
naming the argument), `cryptic` (another error, or one that does not name the argument), `silent`
(no error) or `crash` (the child died). Each valid edge input is `ok` (the right result), `silent`
(a wrong result) or `cryptic` (an error). Only long-standing public names are used, so the same
probe runs against an older checkout:
    PYTHONPATH=. .venv/bin/python benchmarks/probe_bad_inputs.py          # this tree
    PYTHONPATH=/other/checkout .venv/bin/python benchmarks/probe_bad_inputs.py"""

import json
import os
import pickle
import shutil
import sys
import tempfile
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers

from lingua_nb import align as A
from lingua_nb import align_engine as E
from lingua_nb.assets import load_tokenizer
from lingua_nb.calm import CALMConfig, CALMModel, encode_across, fit, generate_across
from lingua_nb.contrastive import ContrastiveModel, info_nce, layer_cosines, train_contrastive
from lingua_nb.core import masked_mean, tiny_llama
from lingua_nb.evaluate import greedy_generate, reference_nll, separation, token_nll
from lingua_nb.langbridge import LangBridgeConfig, LangBridgeModel, bridge_generate, train_bridge
from lingua_nb.tasks import encode_pairs, kv_tasks, render, subs_rows, task_tokenizer, vocab_keys
from lingua_nb.train import lr_factor, train_loop

torch.set_num_threads(1)
IDS = torch.tensor([[3, 4, 5, 6], [7, 8, 9, 10]])
LABELS = torch.tensor([[-100, 3, 4, -100], [-100, -100, 5, 6]])
SEVENTY = np.r_[np.zeros(70), np.ones(70)].astype(np.int64)


def word_tokenizer(n=100):
    vocab = {"[PAD]": 0, "[UNK]": 1, **{f"w{i}": i for i in range(2, n)}}
    t = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=t, pad_token="[PAD]", unk_token="[UNK]", eos_token="w2"
    )


@lru_cache(maxsize=1)
def toks():
    return load_tokenizer("gpt2"), load_tokenizer("xlm-r")


@lru_cache(maxsize=1)
def calm():
    anchor, aug = tiny_llama(2, 32, seed=0), tiny_llama(4, 24, seed=1)
    return CALMModel(
        CALMConfig(anchor.config, [aug.config], layer_maps=[[(0, 1), (1, 3)]]), anchor, [aug]
    )


@lru_cache(maxsize=1)
def bridge():
    torch.manual_seed(0)
    enc = transformers.BertModel(
        transformers.BertConfig(
            vocab_size=100,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        ),
        add_pooling_layer=False,
    )
    return LangBridgeModel(
        LangBridgeConfig(), encoder=enc.eval(), lm=tiny_llama(vocab=120, hidden=48)
    )


def lb_reads_calm_config():
    "A LangBridge checkpoint whose config.json is a CALM one: loading must refuse it."
    tmp = Path(tempfile.mkdtemp())
    lb = bridge()
    lb.encoder.save_pretrained(tmp / "enc")
    lb.lm.save_pretrained(tmp / "lm")
    lb.config.encoder_name, lb.config.lm_name = str(tmp / "enc"), str(tmp / "lm")
    lb.save_pretrained(tmp / "lb", enc_tokenizer=word_tokenizer(), lm_tokenizer=word_tokenizer(120))
    calm().save_pretrained(tmp / "calm")
    shutil.copy(tmp / "calm" / "config.json", tmp / "lb" / "config.json")
    return LangBridgeModel.from_pretrained(tmp / "lb", encoder=lb.encoder, lm=lb.lm)


def train(**kw):
    def loss(m, b):
        return m(input_ids=b, labels=b).loss

    return train_loop(tiny_llama(), [IDS], loss, **{"steps": 2, "progress": False} | kw)


def token_batch(**kw):
    tb = A.tokenize_batch(["hello world"], toks()[0], as_arrays=True)
    fields = {"ids": tb.ids, "starts": tb.starts, "offsets": tb.offsets} | kw
    return A.TokenBatch(fields["ids"], fields["starts"], fields["offsets"], toks()[0])


def side_b():
    return A.tokenize_batch(["hello world"], toks()[1], as_arrays=True)


def cm():
    return ContrastiveModel.from_lm(tiny_llama(layers=2, hidden=16, vocab=100), layers=[1, 2])


NAN = float("nan")
# bad inputs: (module, case, the argument the message must name, call)
BAD = [
    ("train", "max_grad_norm=-1", "max_grad_norm", lambda: train(max_grad_norm=-1)),
    ("train", "max_grad_norm=0", "max_grad_norm", lambda: train(max_grad_norm=0)),
    ("train", "lr=inf", "lr", lambda: train(lr=float("inf"))),
    ("train", "warmup=-1", "warmup", lambda: train(warmup=-1)),
    ("train", "min_ratio=2", "min_ratio", lambda: train(min_ratio=2)),
    ("train", "weight_decay=-1", "weight_decay", lambda: train(weight_decay=-1)),
    (
        "train",
        "loss_fn a string",
        "loss_fn",
        lambda: train_loop(tiny_llama(), [IDS], "mse", steps=1),
    ),
    ("train", "lr_factor step=-1", "step", lambda: lr_factor(-1, 10)),
    ("train", "lr_factor min_ratio=2", "min_ratio", lambda: lr_factor(3, 10, min_ratio=2)),
    (
        "evaluate",
        "label -5",
        "labels",
        lambda: token_nll(torch.zeros(2, 4, 7), LABELS.masked_fill(LABELS == 3, -5)),
    ),
    ("evaluate", "label >= V", "labels", lambda: token_nll(torch.zeros(2, 4, 7), LABELS + 7)),
    ("evaluate", "NaN logits", "logits", lambda: token_nll(torch.full((2, 4, 7), NAN), LABELS)),
    ("evaluate", "separation dims", "b", lambda: separation(torch.ones(3, 4), torch.ones(3, 5))),
    (
        "evaluate",
        "greedy one string",
        "prompts",
        lambda: greedy_generate(tiny_llama(vocab=100), word_tokenizer(), "w3 w4", max_new_tokens=1),
    ),
    (
        "evaluate",
        "reference_nll one string",
        "prompts",
        lambda: reference_nll(tiny_llama(vocab=100), word_tokenizer(), "w3", "w4"),
    ),
    ("tasks", "render one string", "operands", lambda: render("ab", ["+"])),
    ("tasks", "vocab_keys min > max", "min_len", lambda: vocab_keys(word_tokenizer(), 5, 2)),
    (
        "tasks",
        "subs_rows one string",
        "keys",
        lambda: subs_rows(kv_tasks(20, n_train=20, n_comp=10, n_test=5), "ab"),
    ),
    (
        "tasks",
        "extra one string",
        "extra",
        lambda: task_tokenizer(kv_tasks(20, n_train=20, n_comp=10, n_test=5), extra="xy"),
    ),
    (
        "tasks",
        "pair not strings",
        "pairs",
        lambda: encode_pairs(
            task_tokenizer(kv_tasks(20, n_train=20, n_comp=10, n_test=5)), [("a", 1)]
        ),
    ),
    ("align", "no tokenizer", "tok_a", lambda: A.align("hello", None, toks()[1])),
    (
        "align",
        "TokenBatch float ids",
        "ids",
        lambda: A.dp_align_batch(token_batch(ids=token_batch().ids * 1.0), side_b()),
    ),
    (
        "align",
        "TokenBatch list ids",
        "ids",
        lambda: A.dp_align_batch(token_batch(ids=[1, 2]), side_b()),
    ),
    (
        "align",
        "negative ids",
        "src_batch",
        lambda: A.dp_align_batch(token_batch(ids=token_batch().ids - 10**6), side_b()),
    ),
    ("align", "text list", "texts", lambda: A.align_batch(["a", 3], *toks())),
    ("engine", "myers span outside", "codes", lambda: E.edit_distance(SEVENTY, 0, 5, 10**9, 5)),
    (
        "engine",
        "pair_cost id outside",
        "vocabulary",
        lambda: E.pair_cost(10**9, 0, SEVENTY, np.array([0, 70, 140]), np.array([1, 1], np.uint64)),
    ),
    ("langbridge", "CALM config.json", "model_type", lb_reads_calm_config),
    (
        "langbridge",
        "train lr=inf",
        "lr",
        lambda: train_bridge(bridge(), [{}], None, lr=float("inf")),
    ),
    (
        "langbridge",
        "generate one string",
        "inputs",
        lambda: bridge_generate(
            bridge(), word_tokenizer(), word_tokenizer(120), "w5", max_new_tokens=1
        ),
    ),
    (
        "calm",
        "generate_across one string",
        "prompts",
        lambda: generate_across(
            calm(), word_tokenizer(50), [word_tokenizer(50)], "w3 w4", max_new_tokens=1
        ),
    ),
    (
        "calm",
        "one augment tokenizer",
        "augment_tokenizers",
        lambda: generate_across(
            calm(), word_tokenizer(50), word_tokenizer(50), ["w3"], max_new_tokens=1
        ),
    ),
    (
        "calm",
        "targets one string",
        "targets",
        lambda: encode_across(word_tokenizer(50), [], ["w3"], targets="w4"),
    ),
    (
        "calm",
        "fit without targets",
        "labels",
        lambda: fit(calm(), IDS, torch.full_like(IDS, -100), steps=1, progress=False),
    ),
    (
        "contrastive",
        "info_nce one pair",
        "pairs",
        lambda: info_nce(torch.ones(1, 4), torch.ones(1, 4)),
    ),
    (
        "contrastive",
        "batch_size=1",
        "batch_size",
        lambda: train_contrastive(
            cm(), word_tokenizer(), [[("w3", "w4")] * 2], batch_size=1, steps=1, progress=False
        ),
    ),
    (
        "contrastive",
        "gen_weight NaN in forward",
        "gen_weight",
        lambda: cm()(IDS, torch.ones_like(IDS), IDS, torch.ones_like(IDS), gen_weight=NAN),
    ),
    (
        "contrastive",
        "layer_cosines NaN",
        "ko",
        lambda: layer_cosines(torch.full((3, 4), NAN), torch.ones(3, 4)),
    ),
]

# valid edge inputs: (module, case, call, expected result)
EDGE = [
    (
        "core",
        "masked_mean NaN in padding",
        lambda: masked_mean(
            torch.tensor([[[1.0], [3.0], [NAN]]]), torch.tensor([[1, 1, 0]])
        ).tolist(),
        [[2.0]],
    ),
    (
        "train",
        "cosine past the end",
        lambda: lr_factor(20, 10, schedule="cosine", min_ratio=0.1),
        0.1,
    ),
    (
        "train",
        "linear past the end",
        lambda: lr_factor(20, 10, schedule="linear", min_ratio=0.1),
        0.1,
    ),
    ("engine", "myers on 70 characters", lambda: int(E.myers(SEVENTY, 0, 70, 70, 70)), 70),
    ("align", "empty text", lambda: len(A.align("", *toks()).links), 0),
    ("align", "empty text among others", lambda: len(A.align_batch(["", "hi"], *toks())), 2),
]


def in_child(call):
    "('value', result), ('error', type name, message) or ('crash', signal) of `call` in a fork."
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = ("value", repr(call())[:200])
        except BaseException as e:  # noqa: BLE001 (the probe reports whatever is raised)
            out = ("error", type(e).__name__, str(e)[:300])
        os.write(w, pickle.dumps(out))
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return (
        pickle.loads(data)
        if data
        else ("crash", os.WTERMSIG(status) if os.WIFSIGNALED(status) else status)
    )


def classify_bad(arg, res):
    if res[0] == "crash":
        return "crash"
    if res[0] == "value":
        return "silent"
    named = arg in res[2]
    return "clear" if res[1] in ("ValueError", "TypeError", "IndexError") and named else "cryptic"


def classify_edge(want, res):
    if res[0] == "crash":
        return "crash"
    if res[0] == "error":
        return "cryptic"
    return "ok" if res[1] == repr(want) else "silent"


def main():
    rows = []
    for module, case, arg, call in BAD:
        res = in_child(call)
        rows.append(
            {
                "module": module,
                "case": case,
                "kind": "bad",
                "outcome": classify_bad(arg, res),
                "detail": res[2] if res[0] == "error" else res[1],
            }
        )
    for module, case, call, want in EDGE:
        res = in_child(call)
        rows.append(
            {
                "module": module,
                "case": case,
                "kind": "edge",
                "outcome": classify_edge(want, res),
                "detail": res[-1],
            }
        )
    for r in rows:
        print(json.dumps(r, ensure_ascii=False)[:240])
    print(json.dumps({"tally": Counter(r["outcome"] for r in rows), "cases": len(rows)}))


if __name__ == "__main__":
    main()
