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


# ---- assets, teacher, distill, corpora
def probe_tmp():
    return Path(tempfile.mkdtemp(prefix="probe-"))


def cache_rebuilds_vanished_file():
    "A cache entry whose tokenizer_config.json vanished: the next use must not see it missing."
    from lingua_nb.assets import cached_build

    os.environ["LINGUA_NB_CACHE"] = str(probe_tmp())

    def build(p):
        word_tokenizer().save_pretrained(p)

    entry = cached_build("tok", build)
    (entry / "tokenizer_config.json").unlink()
    return (cached_build("tok", build) / "tokenizer_config.json").exists()


def cache_rebuilds_cut_file():
    from lingua_nb.assets import cached_build

    os.environ["LINGUA_NB_CACHE"] = str(probe_tmp())

    def build(p):
        (p / "weights.bin").write_bytes(b"w" * 1000)

    entry = cached_build("w", build)
    with open(entry / "weights.bin", "r+b") as f:
        f.truncate(10)
    return (cached_build("w", build) / "weights.bin").stat().st_size


def gguf_spec(tmp, corrupt=False):
    import hashlib

    from lingua_nb.assets import GGUFParts

    parts = [tmp / f"p{i}" for i in range(2)]
    for i, p in enumerate(parts):
        p.write_bytes(bytes([i]) * 1000)
    sums = [hashlib.sha256(p.read_bytes()).hexdigest() for p in parts]
    whole = b"".join(p.read_bytes() for p in parts)
    rows = tuple((f"k{i}", p.name, h) for i, (p, h) in enumerate(zip(parts, sums)))
    spec = GGUFParts("t.gguf", "1", rows, hashlib.sha256(whole).hexdigest(), len(whole))
    if corrupt:
        parts[1].write_bytes(b"x" * 1000)
    return spec, parts, whole


def gguf_keeps_good_output():
    "join_gguf with a corrupt part must leave a good joined file as it was."
    from lingua_nb.assets import join_gguf

    tmp = probe_tmp()
    spec, parts, whole = gguf_spec(tmp)
    join_gguf(spec, tmp / "t.gguf", parts)
    gguf_spec(tmp, corrupt=True)
    try:
        join_gguf(spec, tmp / "t.gguf", parts)
    except ValueError:
        pass
    return (tmp / "t.gguf").read_bytes() == whole


def encoder_dir():
    tmp = probe_tmp()
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32)
    transformers.BertModel(cfg).save_pretrained(tmp / "enc")
    return tmp / "enc"


def cut_safetensors():
    d = encoder_dir()
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[:300])
    return d


def cut_tokenizer():
    d = probe_tmp() / "tok"
    word_tokenizer().save_pretrained(d)
    w = d / "tokenizer.json"
    w.write_bytes(w.read_bytes()[:200])
    return d


def records():
    from lingua_nb.teacher import TeacherRecord, TeacherStep

    step = TeacherStep("a", -0.1, (("a", -0.1), ("b", -2.5)))
    return [TeacherRecord([step]) for _ in range(3)]


def records_cut_at_a_line():
    "Three records written, the file cut at a line boundary: reading must not give 2 of 3."
    from lingua_nb.teacher import read_teacher_records, write_teacher_records

    p = write_teacher_records(records(), probe_tmp() / "records.jsonl")
    lines = p.read_text().splitlines(keepends=True)
    p.write_text("".join(lines[: len(lines) - 1]))
    return len(read_teacher_records(p))


def sample(**kw):
    from lingua_nb.teacher import sample_teacher_topk

    return sample_teacher_topk(tiny_llama(vocab=100), word_tokenizer(), ["w3 w4"],
                               **{"max_new_tokens": 2, "progress": False} | kw)


def projection(student_ids):
    from lingua_nb.align import dp_align, project_topk

    al = dp_align(["a", "b"], ["a", "b"], "plain", "plain")
    return project_topk(al, [["a", "x"], ["b", "a"]], [[0.6, 0.4], [0.9, 0.1]], student_ids,
                        {"a": 0, "b": 1}, teacher_scheme="plain", student_scheme="plain")


def topk_loss(logits=None, ids=None, probs=None, **kw):
    from lingua_nb.distill import topk_distill_loss

    logits = torch.zeros(1, 2, 5) if logits is None else logits
    ids = torch.tensor([[[0, 1], [2, -1]]]) if ids is None else ids
    probs = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]]) if probs is None else probs
    return topk_distill_loss(logits, ids, probs, torch.ones(1, 2), **kw).item()


def subvocab():
    from lingua_nb.distill import SubVocab

    return SubVocab(word_tokenizer(), [3, 4, 5])


def student_run(**kw):
    import datasets

    from lingua_nb.distill import CausalCollator, train_student

    ds = datasets.Dataset.from_list([{"format": "zs_cot", "input_ids": [3, 4]}])
    kw = {"objective": "sm", "steps": 1, "device": "cpu", "progress": False} | kw
    return train_student(tiny_llama(vocab=100), ds, CausalCollator(), **kw).losses


def cache_call(key, build):
    "cached_build in a throw-away cache root (an older tree may write outside it)."
    from lingua_nb.assets import cached_build

    os.environ["LINGUA_NB_CACHE"] = str(probe_tmp() / "cache")
    return cached_build(key, build)


def corpora(name):
    from lingua_nb import corpora as C

    return getattr(C, name)


def teacher(name):
    from lingua_nb import teacher as T

    return getattr(T, name)


def distill(name):
    from lingua_nb import distill as D

    return getattr(D, name)


def assets(name):
    from lingua_nb import assets as S

    return getattr(S, name)


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
    # assets
    ("assets", "cached_build('../x')", "key", lambda: cache_call("../x", print)),
    ("assets", "cached_build(3)", "key", lambda: cache_call(3, print)),
    ("assets", "cached_build build str", "build", lambda: cache_call("x", "b")),
    (
        "assets",
        "join_gguf one path",
        "paths",
        lambda: assets("join_gguf")(gguf_spec(probe_tmp())[0], probe_tmp() / "t", "p0"),
    ),
    (
        "assets",
        "join_gguf chunk 0",
        "chunk",
        lambda: assets("join_gguf")(
            *gguf_spec(probe_tmp())[:1], probe_tmp() / "t", gguf_spec(probe_tmp())[1], chunk=0
        ),
    ),
    (
        "assets",
        "load_causal_lm(encoder dir)",
        "name",
        lambda: type(assets("load_causal_lm")(encoder_dir())).__name__,
    ),
    (
        "assets",
        "load_encoder(cut safetensors)",
        "model.safetensors",
        lambda: assets("load_encoder")(cut_safetensors()),
    ),
    (
        "assets",
        "load_tokenizer(cut tokenizer.json)",
        "tokenizer.json",
        lambda: assets("load_tokenizer")(cut_tokenizer()),
    ),
    # teacher
    ("teacher", "records.jsonl cut at a line", "cut short", records_cut_at_a_line),
    (
        "teacher",
        "write_teacher_records(one record)",
        "records",
        lambda: teacher("write_teacher_records")(records()[0], probe_tmp() / "r.jsonl"),
    ),
    ("teacher", "read_teacher_records(3)", "path", lambda: teacher("read_teacher_records")(3)),
    (
        "teacher",
        "read_openai_logprobs([path])",
        "path",
        lambda: teacher("read_openai_logprobs")([probe_tmp() / "a.json"]),
    ),
    (
        "teacher",
        "records_from_response scheme 3",
        "scheme",
        lambda: teacher("records_from_response")({"choices": []}, scheme=3),
    ),
    ("teacher", "sample temperature NaN", "temperature", lambda: len(sample(temperature=NAN))),
    ("teacher", "sample batch_size 0", "batch_size", lambda: len(sample(batch_size=0))),
    ("teacher", "sample seed 1.5", "seed", lambda: len(sample(seed=1.5))),
    (
        "teacher",
        "sample one prompt string",
        "prompts",
        lambda: len(
            teacher("sample_teacher_topk")(
                tiny_llama(vocab=100), word_tokenizer(), "w3 w4", max_new_tokens=2, progress=False
            )
        ),
    ),
    (
        "teacher",
        "sparse_sample(probabilities)",
        "logp",
        lambda: teacher("sparse_sample")(torch.tensor([0.5, 0.5]), 2)[1].tolist(),
    ),
    (
        "teacher",
        "sparse_sample NaN",
        "logp",
        lambda: teacher("sparse_sample")(torch.tensor([-0.5, NAN]), 2)[1].tolist(),
    ),
    # distill
    (
        "distill",
        "project_topk student id -5",
        "student_ids",
        lambda: projection([0, -5]).ids.tolist(),
    ),
    (
        "distill",
        "project_topk student id 1e9",
        "student_ids",
        lambda: projection([0, 10**9]).ids.tolist(),
    ),
    ("distill", "project_topk student ids 'ab'", "student_ids", lambda: projection("ab")),
    ("distill", "SubVocab.encode one string", "texts", lambda: subvocab().encode("w3 w4")),
    (
        "distill",
        "SubVocab.from_texts one string",
        "texts",
        lambda: len(distill("SubVocab").from_texts(word_tokenizer(), "w3 w4")),
    ),
    (
        "distill",
        "chat_prompts one string",
        "questions",
        lambda: len(distill("chat_prompts")(load_tokenizer("smollm2-135m-instruct"), "What is 2?")),
    ),
    (
        "distill",
        "topk loss NaN logits",
        "student_logits",
        lambda: topk_loss(logits=torch.full((1, 2, 5), NAN)),
    ),
    (
        "distill",
        "topk loss inf probs",
        "target_probs",
        lambda: topk_loss(probs=torch.tensor([[[float("inf"), 0.0], [1.0, 0.0]]])),
    ),
    (
        "distill",
        "topk loss ids (1, 3, 2)",
        "target_ids",
        lambda: topk_loss(ids=torch.zeros(1, 3, 2).long()),
    ),
    ("distill", "topk loss eps 0", "eps", lambda: topk_loss(eps=0.0)),
    (
        "distill",
        "sample matching NaN logits",
        "student_logits",
        lambda: distill("sample_matching_loss")(
            torch.full((1, 2, 5), NAN), torch.tensor([[1, 2]])
        ).item(),
    ),
    (
        "distill",
        "dense loss inf logits",
        "student_logits",
        lambda: distill("dense_distill_loss")(
            torch.full((1, 2, 5), float("inf")),
            torch.tensor([[[0], [1]]]),
            torch.tensor([[[1.0], [1.0]]]),
            torch.ones(1, 2),
        ).item(),
    ),
    ("distill", "train_student lr NaN", "lr", lambda: student_run(lr=NAN)),
    ("distill", "train_student warmup -1", "warmup", lambda: student_run(warmup=-1)),
    (
        "distill",
        "train_student max_grad_norm 0",
        "max_grad_norm",
        lambda: student_run(max_grad_norm=0),
    ),
    ("distill", "train_student objective 'kl'", "objective", lambda: student_run(objective="kl")),
    (
        "distill",
        "train_student dataset list",
        "dataset",
        lambda: distill("train_student")(tiny_llama(vocab=100), [{"format": "a"}], print),
    ),
    (
        "distill",
        "t5_student dropout 2",
        "dropout",
        lambda: type(
            distill("t5_student")(10, d_model=8, num_layers=1, d_ff=8, num_heads=2, dropout=2.0)
        ).__name__,
    ),
    (
        "distill",
        "evaluate_nll batch_size 0",
        "batch_size",
        lambda: distill("evaluate_nll")(None, [1], None, batch_size=0),
    ),
    (
        "distill",
        "student_targets k 0",
        "k",
        lambda: distill("student_targets")(records(), word_tokenizer(), k=0),
    ),
    # corpora
    (
        "corpora",
        "load_arc_challenge('train')",
        "split",
        lambda: len(corpora("load_arc_challenge")("train")),
    ),
    ("corpora", "load_gsm8k('dev')", "split", lambda: len(corpora("load_gsm8k")("dev"))),
    (
        "corpora",
        "load_arc_en_ko seed -1",
        "seed",
        lambda: len(corpora("load_arc_en_ko")(5, seed=-1)[0]),
    ),
    ("corpora", "gsm_symbolic seed 1.5", "seed", lambda: len(corpora("gsm_symbolic")(5, seed=1.5))),
    (
        "corpora",
        "gsm_template_split frac NaN",
        "heldout_frac",
        lambda: corpora("gsm_template_split")(3, NAN),
    ),
    (
        "corpora",
        "gsm_template_split id '3'",
        "template_id",
        lambda: corpora("gsm_template_split")("3"),
    ),
    (
        "corpora",
        "gsm parallel langs 'eng'",
        "langs",
        lambda: len(corpora("load_gsm_symbolic_parallel")("eng")),
    ),
    (
        "corpora",
        "gsm parallel heldout NaN",
        "heldout_frac",
        lambda: len(corpora("load_gsm_symbolic_parallel")(heldout_frac=NAN)),
    ),
    (
        "corpora",
        "load_en_ko_pairs('emoji')",
        "sources",
        lambda: len(corpora("load_en_ko_pairs")("emoji")),
    ),
    (
        "corpora",
        "load_en_ko_pairs valid_frac NaN",
        "valid_frac",
        lambda: len(corpora("load_en_ko_pairs")(("emoji",), valid_frac=NAN)),
    ),
    (
        "corpora",
        "load_en_ko_pairs max_chars 0",
        "max_chars",
        lambda: len(corpora("load_en_ko_pairs")(("emoji",), max_chars=0)),
    ),
    (
        "corpora",
        "sample_en_ko_pairs split None",
        "split",
        lambda: len(corpora("sample_en_ko_pairs")(["emoji"], None, 5)),
    ),
    (
        "corpora",
        "sample_en_ko_pairs('emoji')",
        "sources",
        lambda: len(corpora("sample_en_ko_pairs")("emoji", "test", 5)),
    ),
    (
        "corpora",
        "sample_en_ko_pairs seed -1",
        "seed",
        lambda: len(corpora("sample_en_ko_pairs")(["emoji"], "test", 5, seed=-1)),
    ),
    (
        "corpora",
        "gsm_distill_sets seed '0'",
        "seed",
        lambda: len(corpora("gsm_distill_sets")(seed="0")[0]),
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
    ("assets", "cache entry lost tokenizer_config.json", cache_rebuilds_vanished_file, True),
    ("assets", "cache entry file cut short", cache_rebuilds_cut_file, 1000),
    ("assets", "join_gguf corrupt part keeps good output", gguf_keeps_good_output, True),
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
