"""Bad inputs at the public boundaries of every module, as tables: each case gives the exception
type and a phrase of its message that names the argument (the module tables also name the issue's
category: silent, cryptic, crash or data loss). Valid edge inputs that used to give wrong results
give the right ones. Then, for every writer, a save that fails midway (a failing writer in this
process, a file-size limit in a child process, or a SIGKILL before, between or after the renames)
leaves the old or the new file or checkpoint loadable and equal."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, models, pre_tokenizers

import lingua_nb.align as align_mod
import lingua_nb.calm as calm_mod
from lingua_nb.calm import CALMBlock, CALMConfig, CALMModel, fit
from lingua_nb.contrastive import agreement_rate, info_nce
from lingua_nb.core import seed_everything, tiny_llama
from lingua_nb.experiment import (check_param, claim_row, declare_params, library_versions,
                                  load_results, render_prose, result_value, results_markdown,
                                  start_run)
from lingua_nb.langbridge import LabelledCollator, LangBridgeConfig, LangBridgeModel, train_bridge
from lingua_nb.align import (Alignment, TokenBatch, align, align_batch, dp_align, dp_align_batch,
                             offset_align_batch)
from lingua_nb.align_engine import edit_distance, myers, pair_cost
from lingua_nb.assets import (cached_build, join_gguf, load_causal_lm, load_encoder,
                              load_tokenizer)
from lingua_nb.calm import encode_across, generate_across
from lingua_nb.contrastive import ContrastiveModel, layer_cosines, retrieval_at_1, train_contrastive
from lingua_nb.core import (atomic_path, batched, check_ids, check_strings, check_tensor, get_dtype,
                            load_tensors, masked_mean)
from lingua_nb.evaluate import (bootstrap_ci, greedy_generate, per_token_nll, reference_nll,
                                separation, token_nll)
from lingua_nb.langbridge import bridge_generate, bridge_pooled_states, bridge_reference_nll
from lingua_nb.tasks import encode_pairs, kv_tasks, render, subs_rows, task_tokenizer, vocab_keys
from lingua_nb.train import lr_factor, train_loop

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


# ---------------------------------------------------------------- tiny models, as in the notebooks
def tiny_tokenizer(n=100):
    t = Tokenizer(
        models.WordLevel(
            {"[PAD]": 0, "[UNK]": 1, **{f"w{i}": i for i in range(2, n)}}, unk_token="[UNK]"
        )
    )
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=t, pad_token="[PAD]", unk_token="[UNK]"
    )


def tiny_bridge_models(seed=0):
    torch.manual_seed(seed)
    enc = transformers.BertModel(
        transformers.BertConfig(
            vocab_size=100,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        ),
        add_pooling_layer=False,
    ).eval()
    lm = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(
            vocab_size=120,
            hidden_size=48,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=64,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=0,
            max_position_embeddings=128,
        )
    ).eval()
    return enc, lm


def composed(anchor, aug, layer_maps, seed):
    """A CALM composition with random (non-zero) output projections, so that it differs from the
    anchor."""
    m = CALMModel(
        CALMConfig(anchor.config, [aug.config], layer_maps=layer_maps), anchor, [aug]
    ).eval()
    torch.manual_seed(seed)
    for blk in m.blocks: torch.nn.init.normal_(blk.o.weight, std=0.5)
    return m


@lru_cache(maxsize=1)
def bridge():
    enc, lm = tiny_bridge_models()
    return LangBridgeModel(LangBridgeConfig(), encoder=enc, lm=lm)


@lru_cache(maxsize=1)
def calm():
    anchor, aug = tiny_llama(2, 32, seed=0), tiny_llama(4, 24, seed=1)
    return composed(anchor, aug, [[(0, 1), (1, 3)]], seed=1)


ENC_IDS = torch.tensor([[5, 6, 7], [8, 9, 0]])
LM_IDS = torch.tensor([[1, 10, 11], [1, 12, 0]])
IDS = torch.tensor([[3, 4, 5, 6], [7, 8, 9, 10]])


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """Saved checkpoints (LangBridge, CALM) and run directories that the cases below spoil in their
    own copies."""
    tmp = tmp_path_factory.mktemp("bad_inputs")
    lb = bridge()
    lb.encoder.save_pretrained(tmp / "enc"); lb.lm.save_pretrained(tmp / "lm")
    lb.config.encoder_name, lb.config.lm_name = str(tmp / "enc"), str(tmp / "lm")
    lb.save_pretrained(tmp / "lb", enc_tokenizer=tiny_tokenizer(), lm_tokenizer=tiny_tokenizer(120))
    calm().save_pretrained(tmp / "calm")
    run = start_run("demo", params={}, out_dir=tmp / "runs" / "demo", device="cpu")
    run.finish({"acc": 0.5})
    (tmp / "a_file").write_text("x")
    return SimpleNamespace(tmp=tmp)


def spoiled_copy(ctx, name, spoil):
    """A copy of the checkpoint `name` under a fresh directory, `spoil(dir)` applied to it; return
    the directory."""
    import shutil
    d = ctx.tmp / f"{name}_{spoil.__name__}"
    if not d.exists():
        shutil.copytree(ctx.tmp / name, d); spoil(d)
    return d


# ---------------------------------------------------------------- ways to spoil a checkpoint
def lb_wrong_shape(d):
    w = d / "model.safetensors"; save_file(load_file(w) | {"bridge.weight": torch.zeros(48, 16)}, w)

def lb_missing_tensor(d):
    w = d / "model.safetensors"; save_file({"eos_embedding": load_file(w)["eos_embedding"]}, w)

def truncated(d):
    w = next(d.glob("*.safetensors")); w.write_bytes(w.read_bytes()[:300])

def broken_config(d):
    (d / "config.json").write_text('{"model_type": "calm", ')

def calm_other_connections(d):
    cfg = json.loads((d / "config.json").read_text()); cfg["layer_maps"] = [[[0, 2], [1, 3]]]
    (d / "config.json").write_text(json.dumps(cfg))

def calm_other_heads(d):
    cfg = json.loads((d / "config.json").read_text()); cfg["num_heads"] = 2
    (d / "config.json").write_text(json.dumps(cfg))

def calm_fewer_connections(d):
    cfg = json.loads((d / "config.json").read_text()); cfg["layer_maps"] = [[[1, 3]]]
    (d / "config.json").write_text(json.dumps(cfg))


def load_lb(ctx, spoil):
    LangBridgeModel.from_pretrained(
        spoiled_copy(ctx, "lb", spoil), encoder=bridge().encoder, lm=bridge().lm
    )

def load_calm(ctx, spoil):
    c = calm()
    CALMModel.from_pretrained(
        spoiled_copy(ctx, "calm", spoil), anchor=c.anchor, augments=list(c.augments)
    )

def bridge_with_tokenizers(ctx):
    lb = bridge()
    return LangBridgeModel(
        lb.config,
        encoder=lb.encoder,
        lm=lb.lm,
        enc_tokenizer=tiny_tokenizer(90),
        lm_tokenizer=tiny_tokenizer(110),
    )

def nan_bridge_training(ctx):
    enc, lm = tiny_bridge_models()
    lb = LangBridgeModel(LangBridgeConfig(), encoder=enc, lm=lm)
    with torch.no_grad(): lb.bridge.weight[0, 0] = float("nan")
    data = [{"input": "w5 w6", "output": "w7 w8"}] * 4
    collator = LabelledCollator(tiny_tokenizer(), tiny_tokenizer(), add_eos=False)
    train_bridge(lb, data, collator, steps=2, batch_size=2, progress=False)

def nan_calm_training(ctx):
    c = calm(); m = composed(c.anchor, c.augments[0], [[(0, 1), (1, 3)]], seed=3)
    with torch.no_grad(): m.blocks[0].o.weight[0, 0] = float("nan")
    fit(m, IDS, IDS, steps=2, batch_size=2, progress=False)

def broken_results(ctx):
    d = ctx.tmp / "runs_broken"
    (d / "e1").mkdir(parents=True, exist_ok=True)
    (d / "e1" / "results.json").write_text('{"a": ')
    load_results(d)


# ---------------------------------------------------------------- the table: (case, call,
# exception, message part)
CASES = [
    # experiment: parameter checks and the runs directory
    (
        "check_param min as text",
        lambda c: check_param("steps", 3, "int", min="1"),
        TypeError,
        "min must be a number",
    ),
    (
        "check_param max as list",
        lambda c: check_param("steps", 3, "int", max=[9]),
        TypeError,
        "max must be a number",
    ),
    (
        "check_param min > max",
        lambda c: check_param("steps", 3, "int", min=5, max=1),
        ValueError,
        "min must be <= max",
    ),
    (
        "check_param choices as text",
        lambda c: check_param("d", "cp", "str", choices="cpu"),
        TypeError,
        "choices must be",
    ),
    (
        "check_param value below min",
        lambda c: check_param("steps", 0, "int", min=1),
        ValueError,
        "'steps' must be >= 1",
    ),
    (
        "check_param NaN",
        lambda c: check_param("lr", float("nan"), "float"),
        ValueError,
        "'lr' must be finite",
    ),
    (
        "check_param not in a set",
        lambda c: check_param("d", "gpu", "str", choices={"cpu"}),
        ValueError,
        "'d' must be one of",
    ),
    (
        "load_results missing dir",
        lambda c: load_results(c.tmp / "runz"),
        FileNotFoundError,
        "runs_dir",
    ),
    (
        "load_results on a file",
        lambda c: load_results(c.tmp / "a_file"),
        NotADirectoryError,
        "runs_dir",
    ),
    (
        "load_results on a run dir",
        lambda c: load_results(c.tmp / "runs" / "demo"),
        ValueError,
        "runs_dir",
    ),
    ("load_results invalid JSON", broken_results, ValueError, "e1/results.json is not valid JSON"),
    (
        "finish metrics not a dict",
        lambda c: start_run("x", {}, out_dir=c.tmp / "r1", device="cpu").finish([1]),
        TypeError,
        "metrics must be a dict",
    ),
    (
        "finish reserved key",
        lambda c: start_run("x", {}, out_dir=c.tmp / "r2", device="cpu").finish({"non_finite": 1}),
        ValueError,
        "reserved",
    ),
    # langbridge: ids beyond a vocabulary, labels without a target, shapes, checkpoints
    (
        "lb enc ids beyond vocab",
        lambda c: bridge()(ENC_IDS + 95),
        ValueError,
        "enc_input_ids holds the id 100, outside the encoder's vocabulary: the encoder has 100",
    ),
    (
        "lb lm ids beyond vocab",
        lambda c: bridge()(ENC_IDS, None, LM_IDS + 110),
        ValueError,
        "input_ids holds the id 120, outside the LM's vocabulary: the LM has 120",
    ),
    (
        "lb enc ids, tokenizer size named",
        lambda c: bridge_with_tokenizers(c)(ENC_IDS + 95),
        ValueError,
        "the encoder has 100 embeddings; its tokenizer has 90 tokens",
    ),
    (
        "lb lm ids, tokenizer size named",
        lambda c: bridge_with_tokenizers(c)(ENC_IDS, None, LM_IDS + 110),
        ValueError,
        "the LM has 120 embeddings; its tokenizer has 110 tokens",
    ),
    (
        "lb negative label",
        lambda c: bridge()(ENC_IDS, None, LM_IDS, labels=LM_IDS - 2),
        ValueError,
        "labels holds the id -1",
    ),
    (
        "lb labels select nothing",
        lambda c: bridge()(ENC_IDS, None, LM_IDS, labels=torch.full_like(LM_IDS, -100)),
        ValueError,
        "labels select no target",
    ),
    (
        "lb labels all padding",
        lambda c: bridge()(ENC_IDS, None, LM_IDS, torch.zeros_like(LM_IDS), labels=LM_IDS),
        ValueError,
        "labels select no target",
    ),
    (
        "lb float ids",
        lambda c: bridge()(ENC_IDS.float()),
        TypeError,
        "enc_input_ids must hold integer",
    ),
    ("lb 1-D ids", lambda c: bridge()(ENC_IDS[0]), ValueError, "enc_input_ids must be 2-D"),
    (
        "lb generate ids beyond vocab",
        lambda c: bridge().generate(ENC_IDS + 95, max_new_tokens=2),
        ValueError,
        "enc_input_ids holds the id 100",
    ),
    (
        "lb ckpt tensor shape",
        lambda c: load_lb(c, lb_wrong_shape),
        ValueError,
        "model.safetensors: tensor shapes do not match the config: bridge.weight (48, 16)",
    ),
    (
        "lb ckpt missing tensor",
        lambda c: load_lb(c, lb_missing_tensor),
        ValueError,
        (
            "model.safetensors: lacks tensors that its config says were trained: ['bridge.bias',"
            " 'bridge.weight']"
        ),
    ),
    (
        "lb ckpt truncated",
        lambda c: load_lb(c, truncated),
        ValueError,
        "lb_truncated/model.safetensors: cannot read",
    ),
    (
        "lb training on a NaN loss",
        nan_bridge_training,
        FloatingPointError,
        "step 0: the loss is nan",
    ),
    (
        "lb ckpt config.json broken",
        lambda c: load_lb(c, broken_config),
        OSError,
        "lb_broken_config/config.json",
    ),
    (
        "lb save onto a file",
        lambda c: bridge().save_pretrained(
            c.tmp / "a_file", enc_tokenizer=tiny_tokenizer(), lm_tokenizer=tiny_tokenizer(120)
        ),
        NotADirectoryError,
        "save_directory",
    ),
    # calm: heads, ids beyond a vocabulary, labels without a target, 1-D prompts, checkpoints
    (
        "calm block num_heads=0",
        lambda c: CALMBlock(32, 16, num_heads=0),
        ValueError,
        "num_heads must be a positive int",
    ),
    (
        "calm config num_heads=0",
        lambda c: CALMConfig(num_heads=0),
        ValueError,
        "num_heads must be a positive int",
    ),
    (
        "calm ids beyond vocab",
        lambda c: calm()(torch.tensor([[3, 50]])),
        ValueError,
        "input_ids holds the id 50, outside the anchor model's vocabulary: the anchor model has 50",
    ),
    (
        "calm negative id",
        lambda c: calm()(torch.tensor([[3, -1]])),
        ValueError,
        "input_ids holds the id -1",
    ),
    (
        "calm label beyond vocab",
        lambda c: calm()(IDS, labels=IDS + 50),
        ValueError,
        "labels holds the id",
    ),
    (
        "calm labels select nothing",
        lambda c: calm()(IDS, labels=torch.full_like(IDS, -100)),
        ValueError,
        "labels select no target",
    ),
    (
        "calm only the first label",
        lambda c: calm()(IDS, labels=torch.tensor([[5, -100, -100, -100]] * 2)),
        ValueError,
        "labels select no target",
    ),
    (
        "calm labels shape",
        lambda c: calm()(IDS, labels=IDS[:, :2]),
        ValueError,
        "labels must have the shape",
    ),
    (
        "calm generate ids beyond vocab",
        lambda c: calm().generate(IDS + 47, max_new_tokens=2),
        ValueError,
        "outside the anchor model's vocabulary",
    ),
    (
        "calm generate 1-D",
        lambda c: calm().generate(IDS[0], max_new_tokens=2),
        ValueError,
        "input_ids must be a (batch, seq) tensor (one prompt: input_ids[None])",
    ),
    (
        "calm generate empty prompt",
        lambda c: calm().generate(IDS[:, :0], max_new_tokens=2),
        ValueError,
        "input_ids must hold at least one token",
    ),
    (
        "calm training on a NaN loss",
        nan_calm_training,
        FloatingPointError,
        "step 0: the loss is nan",
    ),
    (
        "calm ckpt other connections",
        lambda c: load_calm(c, calm_other_connections),
        ValueError,
        (
            "calm_composition.safetensors: the weights were saved for another composition than its"
            " config.json builds: connections"
        ),
    ),
    (
        "calm ckpt other heads",
        lambda c: load_calm(c, calm_other_heads),
        ValueError,
        "num_heads 4 in the weights, 2 from config.json",
    ),
    (
        "calm ckpt fewer connections",
        lambda c: load_calm(c, calm_fewer_connections),
        ValueError,
        "calm_composition.safetensors: tensors the model of its config does not have",
    ),
    (
        "calm ckpt config.json broken",
        lambda c: load_calm(c, broken_config),
        OSError,
        "calm_broken_config/config.json",
    ),
    (
        "calm ckpt truncated",
        lambda c: load_calm(c, truncated),
        ValueError,
        "calm_truncated/calm_composition.safetensors: cannot read",
    ),
    # contrastive: agreement and InfoNCE
    (
        "agreement n_boot=0",
        lambda c: agreement_rate({"a": 1}, {"a": 1}, n_boot=0),
        ValueError,
        "n_boot must be",
    ),
    (
        "agreement n_boot float",
        lambda c: agreement_rate({"a": 1}, {"a": 1}, n_boot=10.5),
        ValueError,
        "n_boot must be",
    ),
    (
        "agreement ci as text",
        lambda c: agreement_rate({"a": 1}, {"a": 1}, ci="0.9"),
        ValueError,
        "ci must be",
    ),
    (
        "agreement ci out of range",
        lambda c: agreement_rate({"a": 1}, {"a": 1}, ci=1.5),
        ValueError,
        "ci must lie",
    ),
    (
        "agreement repeated pair ids",
        lambda c: agreement_rate([("a", 1), ("a", 2)], {"a": 1}),
        ValueError,
        "pred_a repeats the item ids ['a']",
    ),
    (
        "agreement repeated Series ids",
        lambda c: agreement_rate({"a": 1}, pd.Series([1, 2], index=["a", "a"])),
        ValueError,
        "pred_b repeats the item ids ['a']",
    ),
    (
        "agreement repeated n_choices",
        lambda c: agreement_rate({"a": 1}, {"a": 1}, n_choices=[("a", 4), ("a", 2)]),
        ValueError,
        "n_choices repeats",
    ),
    (
        "agreement DataFrame",
        lambda c: agreement_rate(pd.DataFrame({"p": [1]}), {"a": 1}),
        TypeError,
        "pred_a must map item ids",
    ),
    (
        "info_nce NaN",
        lambda c: info_nce(torch.full((3, 4), float("nan")), torch.ones(3, 4)),
        ValueError,
        "a holds NaN or infinite values",
    ),
    (
        "info_nce inf",
        lambda c: info_nce(torch.ones(3, 4), torch.full((3, 4), float("inf"))),
        ValueError,
        "b holds NaN or infinite values",
    ),
    (
        "info_nce temperature=0",
        lambda c: info_nce(torch.ones(3, 4), torch.ones(3, 4), 0),
        ValueError,
        "temperature",
    ),
    # experiment: runs stay inside their roots; one string is not a list; smoke overrides validated
    (
        "start_run name as a path",
        lambda c: start_run("../x", {}, device="cpu"),
        ValueError,
        "name must be a plain",
    ),
    (
        "start_run name absolute",
        lambda c: start_run("/tmp/x", {}, device="cpu"),
        ValueError,
        "name must be a plain",
    ),
    (
        "start_run precision number",
        lambda c: start_run("x", {}, out_dir=c.tmp / "p", precision=16),
        TypeError,
        "precision must be",
    ),
    (
        "Run.path leaving the run",
        lambda c: a_run(c).path("../escape.json"),
        ValueError,
        "filename must name a file",
    ),
    (
        "Run.save_json absolute",
        lambda c: a_run(c).save_json({}, "/tmp/escape.json"),
        ValueError,
        "filename must name a file",
    ),
    (
        "Run.save_figure leaving",
        lambda c: a_run(c).save_figure(plt.figure(), "../../f"),
        ValueError,
        "name must name a file",
    ),
    (
        "library_versions one string",
        lambda c: library_versions("torch"),
        TypeError,
        "packages must be a list",
    ),
    (
        "declare_params bad smoke",
        lambda c: declare_params(STEPS_NS, smoke={"steps": 0}),
        ValueError,
        "smoke['steps']",
    ),
    (
        "declare_params smoke type",
        lambda c: declare_params(STEPS_NS, smoke={"steps": "2"}),
        ValueError,
        "smoke['steps']",
    ),
    ("result_value missing key", lambda c: result_value({"a": {"b": 1}}, "a.c"), KeyError, "'a.c'"),
    ("render_prose not a dict", lambda c: render_prose([1], "{a}"), TypeError, "results must be"),
]
STEPS_NS = {"__annotations__": {"steps": int, "smoke": bool}, "steps": 3, "smoke": True}


def a_run(ctx):
    return start_run("demo", params={}, out_dir=ctx.tmp / "runs" / "demo", device="cpu")


@pytest.mark.parametrize("call,exc,contains", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(ctx, call, exc, contains):
    with pytest.raises(exc) as info: call(ctx)
    assert (
        type(info.value) is exc
    ), f"expected {exc.__name__}, got {type(info.value).__name__}: {info.value}"
    assert contains in str(info.value), f"{contains!r} not in {str(info.value)!r}"


@pytest.mark.parametrize("results", [
    {"name": "e5_contrastive", "targets": {}, "checkpoints": {}},
    {"name": "e3_langbridge", "target": {}, "gap_closed": 0.1},
    {"name": "e2_distill", "targets": {}, "arms": {}},
    {"name": "e0_zoo", "lms": {}, "encoder": {"retrieval_at_1_en_ko": 1.0, "chance": 0.0}},
    {"name": "e4_calm_kv"},
], ids=["e5 no targets", "e3 no targets", "e2 no arms", "e0 no LMs", "e4 nothing"])
def test_an_empty_result_meets_no_target(tmp_path, results):
    assert claim_row(results)["met"] is not True
    run = start_run(results["name"], params={}, out_dir=tmp_path / results["name"], device="cpu")
    run.finish({k: v for k, v in results.items() if k != "name"})
    row = results_markdown(tmp_path).splitlines()[-1]
    assert "| yes |" not in row, row


def test_missing_runs_dir_warns_and_says_so(tmp_path):
    with pytest.warns(UserWarning, match="runs_dir .* does not exist"):
        md = results_markdown(tmp_path / "runz")
    assert "does not exist" in md and "No results yet" not in md
    assert results_markdown(tmp_path).startswith("*No results yet")  # an existing, empty directory


def test_non_finite_metrics_are_null_with_a_note(tmp_path):
    import numpy as np
    run = start_run("demo", params={"steps": 3}, out_dir=tmp_path, device="cpu")
    res = run.finish({"loss": float("nan"), "ppl": np.float32("inf"), "ok": {"acc": 0.5}})
    text = (tmp_path / "results.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in results.json"))
    assert res["loss"] is None and res["ppl"] is None and res["ok"] == {"acc": 0.5}
    assert res["non_finite"] == {"loss": "nan", "ppl": "inf"}


def test_calm_weights_without_the_composition_record_still_load(tmp_path):
    "Weights written before the record existed are checked by names and shapes only."
    c = calm(); ckpt = tmp_path / "calm"; c.save_pretrained(ckpt)
    w = ckpt / "calm_composition.safetensors"; save_file(load_file(w), w)  # no metadata
    back = CALMModel.from_pretrained(ckpt, anchor=c.anchor, augments=list(c.augments))
    with torch.no_grad(): assert torch.equal(back(IDS).logits, c(IDS).logits)


def test_save_keeps_other_files_and_refuses_the_working_directory(tmp_path, monkeypatch):
    c = calm(); ckpt = tmp_path / "calm"; (ckpt / "notes").mkdir(parents=True)
    (ckpt / "notes" / "a.txt").write_text("kept"); (ckpt / "config.json").write_text("{}")
    c.save_pretrained(ckpt)
    assert (ckpt / "notes" / "a.txt").read_text() == "kept"
    assert json.loads((ckpt / "config.json").read_text())["model_type"] == "calm"
    monkeypatch.chdir(ckpt / "notes")
    with pytest.raises(ValueError, match="holds the current directory"): c.save_pretrained(ckpt)


# ---------------------------------------------------------------- writers fail midway: the old
# content survives
def no_temporary_left(parent: Path):
    left = [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]
    assert not left, f"temporary entries left behind: {left}"


def test_langbridge_save_failing_midway_keeps_old_checkpoint(tmp_path):
    enc, lm = tiny_bridge_models()
    enc.save_pretrained(tmp_path / "enc"); lm.save_pretrained(tmp_path / "lm")
    lb = LangBridgeModel(
        LangBridgeConfig(encoder_name=str(tmp_path / "enc"), lm_name=str(tmp_path / "lm")),
        encoder=enc,
        lm=lm,
    )
    ckpt = tmp_path / "ckpt"
    lb.save_pretrained(ckpt, enc_tokenizer=tiny_tokenizer(), lm_tokenizer=tiny_tokenizer(120))
    with torch.no_grad(): old = lb(ENC_IDS, None, LM_IDS).logits
    files = {p.relative_to(ckpt): p.read_bytes() for p in ckpt.rglob("*") if p.is_file()}

    def fails_midway(save_directory, **kwargs):
        Path(save_directory).mkdir(parents=True, exist_ok=True)
        (Path(save_directory) / "tokenizer.json").write_text('{"version": "1.0", "trunc')
        raise OSError(28, "No space left on device")

    with torch.no_grad(): lb.bridge.weight.add_(0.5)
    broken = tiny_tokenizer(120); broken.save_pretrained = fails_midway
    with pytest.raises(OSError, match="No space left"):
        lb.save_pretrained(ckpt, enc_tokenizer=tiny_tokenizer(), lm_tokenizer=broken)
    assert {p.relative_to(ckpt): p.read_bytes() for p in ckpt.rglob("*") if p.is_file()} == files
    back = LangBridgeModel.from_pretrained(ckpt, encoder=enc, lm=lm)
    with torch.no_grad(): assert torch.equal(back(ENC_IDS, None, LM_IDS).logits, old)
    no_temporary_left(tmp_path)


def test_calm_save_failing_midway_keeps_old_checkpoint(tmp_path, monkeypatch):
    c = calm(); anchor, aug = c.anchor, c.augments[0]
    new = composed(anchor, aug, [[(0, 2), (1, 3)]], seed=2)  # same tensor shapes, another model
    ckpt = tmp_path / "calm"; c.save_pretrained(ckpt)
    real_save_file = calm_mod.save_file

    def half_then_fail(tensors, filename, metadata=None):
        real_save_file(tensors, filename, metadata=metadata)
        Path(filename).write_bytes(Path(filename).read_bytes()[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(calm_mod, "save_file", half_then_fail)
    with pytest.raises(OSError, match="No space left"): new.save_pretrained(ckpt)
    monkeypatch.undo()
    back = CALMModel.from_pretrained(ckpt, anchor=anchor, augments=[aug])
    assert back.config.layer_maps == [[[0, 1], [1, 3]]]
    with torch.no_grad(): assert torch.equal(back(IDS).logits, c(IDS).logits)
    no_temporary_left(tmp_path)


CHILD_CALM = """
import resource, sys, torch
sys.path.insert(0, {tests!r})
from test_bad_inputs import calm, composed
c = calm()
new = composed(c.anchor, c.augments[0], [[(0, 2), (1, 3)]], seed=2)
resource.setrlimit(resource.RLIMIT_FSIZE, (8000, 8000))  # config.json fits, the weights do not
new.save_pretrained({ckpt!r})
"""


def test_calm_save_killed_by_file_size_limit_keeps_old_checkpoint(tmp_path):
    """A child process is killed (SIGXFSZ) while writing the weights: before, config.json was
    already rewritten."""
    c = calm(); ckpt = tmp_path / "calm"; c.save_pretrained(ckpt)
    old = {p.name: p.read_bytes() for p in ckpt.iterdir()}
    code = CHILD_CALM.format(tests=str(ROOT / "tests"), ckpt=str(ckpt))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env=os.environ | {"HF_HUB_OFFLINE": "1"})
    assert r.returncode != 0, "the child should have been stopped by the file-size limit"
    assert {p.name: p.read_bytes() for p in ckpt.iterdir()} == old
    back = CALMModel.from_pretrained(ckpt, anchor=c.anchor, augments=list(c.augments))
    with torch.no_grad(): assert torch.equal(back(IDS).logits, c(IDS).logits)


CHILD_RESULTS = """
import resource, signal
from lingua_nb.experiment import start_run
run = start_run("demo", params={{"steps": 3}}, out_dir={out!r}, device="cpu")
# writing past the limit now fails with EFBIG instead of killing
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
try: run.finish({{"acc": 0.75, "long": "x" * 1000}})
except OSError as e: print("failed as expected:", e)
"""


def test_results_json_write_failing_keeps_old_file(tmp_path):
    run = start_run("demo", params={"steps": 3}, out_dir=tmp_path, device="cpu")
    run.finish({"acc": 0.5})
    old = (tmp_path / "results.json").read_text()
    r = subprocess.run(
        [sys.executable, "-c", CHILD_RESULTS.format(out=str(tmp_path))],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"MPLBACKEND": "Agg"},
    )
    assert "failed as expected" in r.stdout, r.stdout + r.stderr
    assert (tmp_path / "results.json").read_text() == old
    assert sorted(os.listdir(tmp_path)) == ["results.json"]


def test_save_json_and_figure_failing_keep_old_files(tmp_path, monkeypatch):
    run = start_run("demo", params={}, out_dir=tmp_path, device="cpu")
    run.save_json({"a": 1}, "items.json")
    fig, ax = plt.subplots(); ax.plot([0, 1]); run.save_figure(fig, "curve")
    old_json, old_png = (tmp_path / "items.json").read_bytes(), (
        tmp_path / "curve.png"
    ).read_bytes()

    def half_then_fail(self, data, *args, **kwargs):
        with open(self, "w") as f: f.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError): run.save_json({"a": 2, "b": [1] * 100}, "items.json")
    monkeypatch.undo()
    fig, ax = plt.subplots(); ax.plot([1, 0])
    real_savefig = fig.savefig

    def savefig_half(fname, **kwargs):
        real_savefig(fname, **kwargs); Path(fname).write_bytes(Path(fname).read_bytes()[:50])
        raise OSError(28, "No space left on device")

    fig.savefig = savefig_half
    with pytest.raises(OSError): run.save_figure(fig, "curve")
    plt.close(fig)
    assert (tmp_path / "items.json").read_bytes() == old_json and (
        tmp_path / "curve.png"
    ).read_bytes() == old_png
    no_temporary_left(tmp_path)


# ======================================================= every module's public boundary, one table
# (core, train, tasks, evaluate, align, align_engine; more cases of langbridge, calm, contrastive)


@lru_cache(maxsize=1)
def gpt2_xlmr():
    return load_tokenizer("gpt2"), load_tokenizer("xlm-r")


@lru_cache(maxsize=1)
def tasks():
    return kv_tasks(n_keys=20, n_train=20, n_comp=10, n_test=5, seed=0)


@lru_cache(maxsize=1)
def contrastive_model():
    return ContrastiveModel.from_lm(tiny_llama(layers=2, hidden=16, vocab=100), layers=[1, 2])


def lm_loss(m, b):
    return m(input_ids=b, labels=b).loss


def train(**kwargs):
    "One step of `train_loop` on a tiny Llama with `kwargs` (the bad one among them)."
    return train_loop(tiny_llama(), [IDS], lm_loss, **{"steps": 1, "progress": False} | kwargs)


def token_batch(ids=None, starts=None, offsets=None):
    g, _ = gpt2_xlmr()
    tb = align_mod.tokenize_batch(["hello world"], g, as_arrays=True)
    return TokenBatch(
        tb.ids if ids is None else ids,
        tb.starts if starts is None else starts,
        tb.offsets if offsets is None else offsets,
        g,
    )


def side_b():
    return align_mod.tokenize_batch(["hello world"], gpt2_xlmr()[1], as_arrays=True)


def lb_on_calm_config(ctx):
    "A LangBridge checkpoint whose config.json is a CALM one."

    def calm_config(d):
        shutil.copy(ctx.tmp / "calm" / "config.json", d / "config.json")

    load_lb(ctx, calm_config)


SEVENTY = np.r_[np.zeros(70), np.ones(70)].astype(np.int64)
V = 7
LABELS = torch.tensor([[-100, 3, 4, -100], [-100, -100, 5, 6]])

# each case: (name, category of the issue it comes from, call, exception, message part naming the
# argument)
MODULE_CASES = [
    # core
    (
        "core seed -1",
        "cryptic",
        lambda c: seed_everything(-1),
        ValueError,
        "seed must be a non-negative",
    ),
    (
        "core batched size 0",
        "silent",
        lambda c: list(batched([1, 2], 0)),
        ValueError,
        "size must be a positive",
    ),
    ("core dtype fp8", "cryptic", lambda c: get_dtype("fp8"), ValueError, "dtype must be"),
    (
        "core atomic_path file on dir",
        "data loss",
        lambda c: atomic_path(c.tmp / "calm").__enter__(),
        ValueError,
        "is_dir=False",
    ),
    (
        "core load_tensors truncated",
        "cryptic",
        lambda c: load_tensors(c.tmp / "a_file"),
        ValueError,
        "a_file: cannot read the safetensors file",
    ),
    (
        "core check_ids floats",
        "silent",
        lambda c: check_ids("ids", [0.5], 5, "LM"),
        TypeError,
        "ids must hold integer token ids",
    ),
    (
        "core check_strings one string",
        "silent",
        lambda c: check_strings("texts", "abc"),
        TypeError,
        "texts must be a list of strings",
    ),
    (
        "core check_tensor NaN",
        "silent",
        lambda c: check_tensor("x", torch.tensor([float("nan")])),
        ValueError,
        "x holds NaN",
    ),
    (
        "core masked_mean mask shape",
        "cryptic",
        lambda c: masked_mean(torch.ones(2, 3), torch.ones(3, 2)),
        ValueError,
        "mask shape",
    ),
    # train
    (
        "train max_grad_norm=-1",
        "silent",
        lambda c: train(max_grad_norm=-1),
        ValueError,
        "max_grad_norm must be a positive number or None",
    ),
    (
        "train max_grad_norm=0",
        "silent",
        lambda c: train(max_grad_norm=0),
        ValueError,
        "max_grad_norm must be",
    ),
    (
        "train lr=inf",
        "silent",
        lambda c: train(lr=float("inf")),
        ValueError,
        "lr must be a positive number",
    ),
    (
        "train lr=nan",
        "silent",
        lambda c: train(lr=float("nan")),
        ValueError,
        "lr must be a positive number",
    ),
    (
        "train warmup=-1",
        "silent",
        lambda c: train(warmup=-1),
        ValueError,
        "warmup must be an integer >= 0",
    ),
    (
        "train warmup=1.5",
        "silent",
        lambda c: train(warmup=1.5),
        TypeError,
        "warmup must be an integer",
    ),
    (
        "train min_ratio=2",
        "silent",
        lambda c: train(min_ratio=2),
        ValueError,
        "min_ratio must be a finite number in",
    ),
    (
        "train weight_decay=-1",
        "silent",
        lambda c: train(weight_decay=-1),
        ValueError,
        "weight_decay must be a finite number >= 0",
    ),
    (
        "train group lr=-1",
        "silent",
        lambda c: train(param_groups=[{"params": [torch.nn.Parameter(torch.ones(1))], "lr": -1.0}]),
        ValueError,
        "param_groups[0]['lr'] must be a positive number",
    ),
    (
        "train group without params",
        "cryptic",
        lambda c: train(param_groups=[{"lr": 1.0}]),
        ValueError,
        "param_groups[0] is a dict without 'params'",
    ),
    (
        "train loss_fn not callable",
        "cryptic",
        lambda c: train_loop(tiny_llama(), [IDS], "mse"),
        TypeError,
        "loss_fn must be callable",
    ),
    (
        "train model not a module",
        "cryptic",
        lambda c: train_loop("lm", [IDS], lm_loss),
        TypeError,
        "model must be a torch nn.Module",
    ),
    (
        "train eval_fn not callable",
        "cryptic",
        lambda c: train(eval_fn=3),
        TypeError,
        "eval_fn must be callable",
    ),
    (
        "train mixed_precision fp8",
        "cryptic",
        lambda c: train(mixed_precision="fp8"),
        ValueError,
        "mixed_precision must be",
    ),
    (
        "train schedule unknown",
        "cryptic",
        lambda c: train(schedule="step"),
        ValueError,
        "schedule must be one of",
    ),
    (
        "lr_factor negative step",
        "silent",
        lambda c: lr_factor(-1, 10),
        ValueError,
        "step must be an integer >= 0",
    ),
    (
        "lr_factor min_ratio=2",
        "silent",
        lambda c: lr_factor(3, 10, min_ratio=2),
        ValueError,
        "min_ratio must be",
    ),
    (
        "lr_factor steps=0",
        "cryptic",
        lambda c: lr_factor(0, 0),
        ValueError,
        "steps must be a positive integer",
    ),
    # tasks
    (
        "tasks render one string",
        "silent",
        lambda c: render("ab", ["+"]),
        TypeError,
        "operands must be a list",
    ),
    ("tasks n_keys=0", "cryptic", lambda c: kv_tasks(n_keys=0), ValueError, "n_keys"),
    (
        "tasks vocab_keys min > max",
        "silent",
        lambda c: vocab_keys(None, min_len=5, max_len=2),
        ValueError,
        "min_len (5) must be <= max_len (2)",
    ),
    (
        "tasks subs_rows one string",
        "silent",
        lambda c: subs_rows(tasks(), "abc"),
        TypeError,
        "keys must be a list of strings",
    ),
    (
        "tasks subs_rows split",
        "cryptic",
        lambda c: subs_rows(tasks(), tasks().keys, split="train"),
        ValueError,
        "split must be one of",
    ),
    (
        "tasks extra one string",
        "silent",
        lambda c: task_tokenizer(tasks(), extra="xy"),
        TypeError,
        "extra must be a list of strings",
    ),
    (
        "tasks pairs one string",
        "cryptic",
        lambda c: encode_pairs(task_tokenizer(tasks()), "a = 1"),
        TypeError,
        "pairs must be a list of (prompt, target) pairs",
    ),
    (
        "tasks pair not strings",
        "cryptic",
        lambda c: encode_pairs(task_tokenizer(tasks()), [("a", 1)]),
        TypeError,
        "pairs[0] must be a (prompt, target) pair of strings",
    ),
    # evaluate
    (
        "evaluate label -5",
        "silent",
        lambda c: token_nll(torch.zeros(2, 4, V), LABELS.masked_fill(LABELS == 3, -5)),
        ValueError,
        "labels holds the id -5",
    ),
    (
        "evaluate label beyond V",
        "cryptic",
        lambda c: token_nll(torch.zeros(2, 4, V), LABELS + V),
        ValueError,
        "labels holds the id",
    ),
    (
        "evaluate NaN logits",
        "silent",
        lambda c: token_nll(torch.full((2, 4, V), float("nan")), LABELS),
        ValueError,
        "logits holds NaN",
    ),
    (
        "evaluate level=95",
        "silent",
        lambda c: bootstrap_ci([1.0, 2.0], level=95),
        ValueError,
        "level must be",
    ),
    (
        "evaluate per_token_nll shape",
        "cryptic",
        lambda c: per_token_nll(np.zeros(3)),
        ValueError,
        "item_nll must",
    ),
    (
        "evaluate separation dims",
        "cryptic",
        lambda c: separation(torch.ones(3, 4), torch.ones(3, 5)),
        ValueError,
        "b must have shape (?, d) with d=4",
    ),
    (
        "evaluate reference_nll one string",
        "silent",
        lambda c: reference_nll(tiny_llama(vocab=100), tiny_tokenizer(), "w3", "w4"),
        TypeError,
        "prompts must be a list of strings",
    ),
    (
        "evaluate greedy one string",
        "silent",
        lambda c: greedy_generate(tiny_llama(vocab=100), tiny_tokenizer(), "w3"),
        TypeError,
        "prompts must be a list of strings",
    ),
    (
        "evaluate suffix id beyond vocab",
        "cryptic",
        lambda c: reference_nll(
            tiny_llama(vocab=100), tiny_tokenizer(), ["w3"], ["w4"], suffix_ids=[100]
        ),
        ValueError,
        "suffix_ids holds the id 100",
    ),
    # align
    (
        "align no tokenizer",
        "cryptic",
        lambda c: align("hello", None, gpt2_xlmr()[1]),
        TypeError,
        "tok_a must be a tokenizer or a list of Tokenized",
    ),
    (
        "align text not a str",
        "cryptic",
        lambda c: align(["hello"], *gpt2_xlmr()),
        TypeError,
        "text must be a str",
    ),
    (
        "align_batch one string",
        "silent",
        lambda c: align_batch("hello", *gpt2_xlmr()),
        TypeError,
        "texts must be a sequence of strings",
    ),
    (
        "align_batch text not a str",
        "cryptic",
        lambda c: align_batch(["a", 3], *gpt2_xlmr()),
        TypeError,
        "texts[1] must be a str",
    ),
    (
        "align_batch Tokenized count",
        "cryptic",
        lambda c: align_batch(
            ["a", "b"], [align_mod.tokenize("a", gpt2_xlmr()[0])], gpt2_xlmr()[1]
        ),
        ValueError,
        "a must hold one Tokenized per text (2), got 1",
    ),
    (
        "align method",
        "cryptic",
        lambda c: align("a", *gpt2_xlmr(), method="fast"),
        ValueError,
        "method must be",
    ),
    (
        "align band -1",
        "cryptic",
        lambda c: dp_align(["a"], ["a"], band=-1),
        ValueError,
        "band must be",
    ),
    (
        "align TokenBatch float ids",
        "silent",
        lambda c: dp_align_batch(token_batch(ids=token_batch().ids.astype(float)), side_b()),
        TypeError,
        "src_batch.ids must be an integer numpy array",
    ),
    (
        "align TokenBatch list ids",
        "cryptic",
        lambda c: dp_align_batch(token_batch(ids=[1, 2]), side_b()),
        TypeError,
        "src_batch.ids must be an integer numpy array",
    ),
    (
        "align TokenBatch negative ids",
        "crash",
        lambda c: dp_align_batch(token_batch(ids=token_batch().ids - 10**6), side_b()),
        ValueError,
        "src_batch: token ids must be non-negative",
    ),
    (
        "align TokenBatch ids beyond vocab",
        "crash",
        lambda c: dp_align_batch(token_batch(ids=token_batch().ids + 10**6), side_b()),
        ValueError,
        "src_batch: token ids outside the tokenizer's vocabulary",
    ),
    (
        "align ids beyond vocab (lists)",
        "crash",
        lambda c: dp_align_batch([[10**9, 3]], [[1, 2]], *gpt2_xlmr()),
        ValueError,
        "src_batch: token ids outside",
    ),
    (
        "align TokenBatch starts",
        "crash",
        lambda c: dp_align_batch(token_batch(starts=np.array([0, 50])), side_b()),
        ValueError,
        "src_batch.starts must run from 0 to len(ids)",
    ),
    (
        "align offsets beyond text",
        "crash",
        lambda c: offset_align_batch(
            ["hello world"], token_batch(offsets=token_batch().offsets + 100), side_b()
        ),
        ValueError,
        "offsets must lie within the text",
    ),
    (
        "align texts count",
        "crash",
        lambda c: offset_align_batch(["a", "b"], token_batch(), side_b()),
        ValueError,
        "texts, a and b must have the same length",
    ),
    (
        "align ranges side",
        "cryptic",
        lambda c: Alignment([[0, 0]], 1, 1).ranges("x"),
        ValueError,
        "side must be 'src' or 'tgt'",
    ),
    # align_engine: kernels refuse spans and ids outside their arrays instead of reading past them
    (
        "engine myers span",
        "crash",
        lambda c: myers(SEVENTY, 100, 70, 0, 5),
        IndexError,
        "outside codes",
    ),
    (
        "engine edit_distance span",
        "crash",
        lambda c: edit_distance(SEVENTY, 0, 5, -1, 5),
        IndexError,
        "outside codes",
    ),
    (
        "engine pair_cost id",
        "crash",
        lambda c: pair_cost(10**6, 0, SEVENTY, np.array([0, 70, 140]), np.array([1, 1], np.uint64)),
        IndexError,
        "outside the vocabulary",
    ),
    # langbridge
    (
        "lb ckpt with a CALM config.json",
        "silent",
        lb_on_calm_config,
        ValueError,
        "model_type is 'calm'",
    ),
    (
        "lb train lr=inf",
        "silent",
        lambda c: train_bridge(bridge(), [{}], None, lr=float("inf")),
        ValueError,
        "lr must be a positive number",
    ),
    (
        "lb train encoder_weight_decay",
        "silent",
        lambda c: train_bridge(bridge(), [{}], None, encoder_weight_decay=-1),
        ValueError,
        "encoder_weight_decay must be",
    ),
    (
        "lb generate one string",
        "silent",
        lambda c: bridge_generate(bridge(), tiny_tokenizer(), tiny_tokenizer(), "w5"),
        TypeError,
        "inputs must be a list of strings",
    ),
    (
        "lb pooled one string",
        "silent",
        lambda c: bridge_pooled_states(bridge(), tiny_tokenizer(), "w5"),
        TypeError,
        "inputs must be a list of strings",
    ),
    (
        "lb reference_nll references",
        "silent",
        lambda c: bridge_reference_nll(bridge(), tiny_tokenizer(), tiny_tokenizer(), ["w5"], [5]),
        TypeError,
        "references[0] must be a string",
    ),
    # calm
    (
        "calm generate_across one string",
        "silent",
        lambda c: generate_across(calm(), tiny_tokenizer(50), [tiny_tokenizer(50)], "w3 w4"),
        TypeError,
        "prompts must be a list of strings",
    ),
    (
        "calm generate_across one tokenizer",
        "cryptic",
        lambda c: generate_across(calm(), tiny_tokenizer(50), tiny_tokenizer(50), ["w3 w4"]),
        TypeError,
        "augment_tokenizers must be a list",
    ),
    (
        "calm encode_across targets string",
        "silent",
        lambda c: encode_across(tiny_tokenizer(50), [], ["w3"], targets="w4"),
        TypeError,
        "targets must be a list of strings",
    ),
    (
        "calm fit labels select nothing",
        "silent",
        lambda c: fit(calm(), IDS, torch.full_like(IDS, -100), steps=1, progress=False),
        ValueError,
        "labels selects no target",
    ),
    (
        "calm fit 1-D rows",
        "cryptic",
        lambda c: fit(calm(), IDS[0], IDS[0], steps=1, progress=False),
        ValueError,
        "input_ids must have shape (n, t)",
    ),
    # contrastive
    (
        "contrastive info_nce one pair",
        "silent",
        lambda c: info_nce(torch.ones(1, 4), torch.ones(1, 4)),
        ValueError,
        "at least two pairs",
    ),
    (
        "contrastive info_nce NaN temperature",
        "silent",
        lambda c: info_nce(torch.ones(3, 4), torch.ones(3, 4), float("nan")),
        ValueError,
        "temperature must be",
    ),
    (
        "contrastive batch_size=1",
        "silent",
        lambda c: train_contrastive(
            contrastive_model(), tiny_tokenizer(), [[("w3", "w4")] * 2], batch_size=1
        ),
        ValueError,
        "batch_size must be an integer >= 2",
    ),
    (
        "contrastive gen_weight NaN",
        "silent",
        lambda c: contrastive_model()(
            IDS, torch.ones_like(IDS), IDS, torch.ones_like(IDS), gen_weight=float("nan")
        ),
        ValueError,
        "gen_weight must be a finite number >= 0",
    ),
    (
        "contrastive train gen_weight NaN",
        "silent",
        lambda c: train_contrastive(
            contrastive_model(),
            tiny_tokenizer(),
            [[("w3", "w4")] * 2],
            batch_size=2,
            gen_weight=float("nan"),
        ),
        ValueError,
        "gen_weight must be",
    ),
    (
        "contrastive cosines NaN",
        "silent",
        lambda c: layer_cosines(torch.full((3, 4), float("nan")), torch.ones(3, 4)),
        ValueError,
        "ko holds NaN",
    ),
    (
        "contrastive retrieval one pair",
        "silent",
        lambda c: retrieval_at_1(torch.ones(1, 4), torch.ones(1, 4)),
        ValueError,
        "at least 2 pairs",
    ),
]


@pytest.mark.parametrize(
    "call,exc,contains", [c[2:] for c in MODULE_CASES], ids=[c[0] for c in MODULE_CASES]
)
def test_module_bad_input(ctx, call, exc, contains):
    with pytest.raises(exc) as info:
        call(ctx)
    assert type(info.value) is exc, (
        f"expected {exc.__name__}, got {type(info.value).__name__}: {info.value}"
    )
    assert contains in str(info.value), f"{contains!r} not in {str(info.value)!r}"


def test_every_category_is_covered():
    cats = {c[1] for c in MODULE_CASES}
    assert cats == {"silent", "cryptic", "crash", "data loss"}, cats
    modules = {c[0].split()[0] for c in MODULE_CASES}
    assert {
        "core",
        "train",
        "tasks",
        "evaluate",
        "align",
        "engine",
        "lb",
        "calm",
        "contrastive",
    } <= modules


# -------------------------------------------- valid inputs that used to give wrong results
def test_valid_edge_inputs_give_right_results():
    "Silent cases of the issue, now right: NaN in padding, a schedule past its end, 70 chars, ''."
    x = torch.tensor([[[1.0], [3.0], [float("nan")]]])
    assert torch.equal(masked_mean(x, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0]]))
    for schedule in ("cosine", "linear"):
        assert [lr_factor(s, 10, schedule=schedule, min_ratio=0.1) for s in (10, 11, 20)] == [
            0.1
        ] * 3
    assert myers(SEVENTY, 0, 70, 70, 70) == 70 and edit_distance(SEVENTY, 0, 70, 70, 70) == 70
    for method in ("auto", "offsets", "dp"):
        al = align("", *gpt2_xlmr(), method=method)
        assert (al.n_src, al.n_tgt, len(al.links), al.spans) == (0, 0, 0, [])
    assert [a.n_src > 0 for a in align_batch(["", "hi there"], *gpt2_xlmr())] == [False, True]


# -------------------------------------------- every checkpoint writer killed at every stage
KILL_EXPECTED = {
    "exchange-before": "old",
    "exchange-after": "new",
    "rename-1": "old",
    "rename-2": "old",
    "remove-old": "new",
    "replace-before": "old",
    "replace-after": "new",
}


def kill_writer(writer: str, tmp_path):
    "Run tests/kill_writers.py for `writer`: the process, its stage records, what it left."
    r = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "kill_writers.py"), writer, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    return r, lines[:-1], lines[-1]["left"]


@pytest.mark.parametrize("writer", ["json", "calm", "langbridge", "contrastive"])
def test_writer_killed_at_each_stage_leaves_old_or_new(tmp_path, writer):
    "SIGKILL before, between or after the renames of a save: the loader gets the old or new one."
    r, stages, left = kill_writer(writer, tmp_path)
    assert len(stages) == (2 if writer == "json" else 5), r.stdout
    for s in stages:
        assert s["signal"] == 9, f"the writer was not killed at {s['stage']}: {s}"
        assert s["loaded"] == KILL_EXPECTED[s["stage"]], s
    assert left == [], f"leftovers after the next save: {left}"


# -------------------------------------------- assets, teacher, distill, corpora
def ok_build(p):
    (p / "weights.bin").write_text("full")


def tokenizer_dir_cut_short(ctx):
    d = ctx.tmp / "tok_cut"
    if not d.exists():
        tiny_tokenizer().save_pretrained(d)
        w = d / "tokenizer.json"
        w.write_bytes(w.read_bytes()[:200])
    return d


def tiny_gguf_spec():
    from lingua_nb.assets import GGUFParts
    return GGUFParts("t.gguf", "1", (("a", "p0", "0" * 64),), "0" * 64, 1)


ASSETS_CASES = [
    (
        "assets cached_build outside the cache",
        "data loss",
        lambda c: cached_build("../x", ok_build),
        ValueError,
        "key must be one directory name",
    ),
    (
        "assets cached_build key not a string",
        "cryptic",
        lambda c: cached_build(3, ok_build),
        TypeError,
        "key must be a string",
    ),
    (
        "assets cached_build build not callable",
        "cryptic",
        lambda c: cached_build("x", "build"),
        TypeError,
        "build must be callable",
    ),
    (
        "assets join_gguf one path",
        "cryptic",
        lambda c: join_gguf(tiny_gguf_spec(), c.tmp / "t.gguf", str(c.tmp / "a_file")),
        TypeError,
        "paths must be a list",
    ),
    (
        "assets join_gguf chunk 0",
        "silent",
        lambda c: join_gguf(tiny_gguf_spec(), c.tmp / "t.gguf", [c.tmp / "a_file"], chunk=0),
        ValueError,
        "chunk must be a positive",
    ),
    (
        "assets join_gguf spec",
        "cryptic",
        lambda c: join_gguf("t.gguf", c.tmp / "t.gguf"),
        TypeError,
        "spec must be a GGUFParts",
    ),
    (
        "assets causal LM from an encoder",
        "silent",
        lambda c: load_causal_lm(c.tmp / "enc"),
        ValueError,
        "not a causal LM",
    ),
    (
        "assets encoder safetensors cut short",
        "cryptic",
        lambda c: load_encoder(spoiled_copy(c, "enc", truncated)),
        ValueError,
        "model.safetensors is not a whole safetensors file",
    ),
    (
        "assets tokenizer.json cut short",
        "cryptic",
        lambda c: load_tokenizer(tokenizer_dir_cut_short(c)),
        ValueError,
        "tokenizer.json",
    ),
]
NEW_MODULE_CASES = ASSETS_CASES


def test_cache_entry_failing_its_manifest_is_rebuilt(tmp_path, monkeypatch):
    "A vanished tokenizer_config.json, a file cut short, an entry from before manifests: rebuilt."
    monkeypatch.setenv("LINGUA_NB_CACHE", str(tmp_path))
    builds = []

    def build(p):
        builds.append(1)
        tiny_tokenizer().save_pretrained(p)

    entry = cached_build("tok", build)
    eos_before = transformers.AutoTokenizer.from_pretrained(entry).pad_token
    (entry / "tokenizer_config.json").unlink()
    assert cached_build("tok", build) == entry and len(builds) == 2
    assert transformers.AutoTokenizer.from_pretrained(entry).pad_token == eos_before == "[PAD]"
    w = entry / "tokenizer.json"
    w.write_bytes(w.read_bytes()[:100])
    cached_build("tok", build)
    assert len(builds) == 3 and json.loads(w.read_text())
    (entry / "manifest.json").unlink()  # written before manifests existed: rebuilt once
    cached_build("tok", build)
    cached_build("tok", build)
    assert len(builds) == 4 and (entry / "manifest.json").exists()
    assert sorted(os.listdir(tmp_path)) == ["tok"]


def test_join_gguf_keeps_a_good_output_when_a_part_is_corrupt(tmp_path):
    import hashlib
    from lingua_nb.assets import GGUFParts
    parts = [tmp_path / f"p{i}" for i in range(3)]
    for i, p in enumerate(parts):
        p.write_bytes(bytes([i]) * 1000)
    sums = [hashlib.sha256(p.read_bytes()).hexdigest() for p in parts]
    whole = b"".join(p.read_bytes() for p in parts)
    spec = GGUFParts("t.gguf", "1", tuple((f"k{i}", p.name, s) for i, (p, s) in
                                          enumerate(zip(parts, sums))),
                     hashlib.sha256(whole).hexdigest(), len(whole))
    out = join_gguf(spec, tmp_path / "t.gguf", parts)
    parts[2].write_bytes(b"\x09" * 1000)
    with pytest.raises(ValueError, match="has sha256"):
        join_gguf(spec, out, parts)
    assert out.read_bytes() == whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p0", "p1", "p2", "t.gguf"]


KILL_EXPECTED_NEW = {
    "gguf": {"replace-before": "old", "replace-after": "new"},
    "cache": {"exchange-before": "rebuilt", "exchange-after": "new", "rename-1": "rebuilt",
              "rename-2": "rebuilt", "remove-old": "new", "build": "rebuilt"},
}


@pytest.mark.parametrize("writer", ["gguf", "cache"])
def test_asset_writer_killed_at_each_stage_leaves_old_new_or_rebuilt(tmp_path, writer):
    "SIGKILL at each stage of join_gguf or of a cache build: never a spoiled file or entry."
    r, stages, left = kill_writer(writer, tmp_path)
    assert [s["stage"] for s in stages] == list(KILL_EXPECTED_NEW[writer]), r.stdout
    for s in stages:
        assert s["signal"] == 9, f"the writer was not killed at {s['stage']}: {s}"
        assert s["loaded"] == KILL_EXPECTED_NEW[writer][s["stage"]], s
    assert left == [], f"leftovers after the next save: {left}"


# teacher
def rec3():
    from lingua_nb.teacher import TeacherRecord, TeacherStep
    return [TeacherRecord([TeacherStep("a", -0.1, (("a", -0.1), ("b", -2.5)))]) for _ in range(3)]


def records_cut_at_a_line(ctx):
    from lingua_nb.teacher import read_teacher_records, write_teacher_records
    p = write_teacher_records(rec3(), ctx.tmp / "records.jsonl")
    p.write_text("".join(p.read_text().splitlines(keepends=True)[:3]))
    return read_teacher_records(p)


def sample(**kw):
    from lingua_nb.teacher import sample_teacher_topk
    return sample_teacher_topk(tiny_llama(vocab=100), tiny_tokenizer(), ["w3 w4"], progress=False,
                               **{"max_new_tokens": 2} | kw)


def teacher_fn(name):
    import lingua_nb.teacher as teacher_mod
    return getattr(teacher_mod, name)


TEACHER_CASES = [
    ("teacher records cut at a line", "data loss", records_cut_at_a_line, ValueError,
     "holds 2 records, its first line says 3"),
    ("teacher write one record", "cryptic",
     lambda c: teacher_fn("write_teacher_records")(rec3()[0], c.tmp / "r.jsonl"), TypeError,
     "records must be a list"),
    ("teacher read path not a path", "cryptic", lambda c: teacher_fn("read_teacher_records")(3),
     TypeError, "path must be a file path"),
    ("teacher openai path list", "cryptic",
     lambda c: teacher_fn("read_openai_logprobs")([c.tmp / "a.json"]), TypeError,
     "path must be a .json or .jsonl"),
    ("teacher openai scheme", "cryptic",
     lambda c: teacher_fn("read_openai_logprobs")(c.tmp / "a_file", scheme="bpe"), ValueError,
     "scheme must be one of"),
    ("teacher response scheme", "silent",
     lambda c: teacher_fn("records_from_response")({"choices": []}, scheme=3), ValueError,
     "scheme must be one of"),
    ("teacher sample temperature NaN", "silent", lambda c: sample(temperature=float("nan")),
     ValueError, "temperature must be"),
    ("teacher sample batch_size 0", "cryptic", lambda c: sample(batch_size=0), ValueError,
     "batch_size must be"),
    ("teacher sample seed 1.5", "cryptic", lambda c: sample(seed=1.5), TypeError, "seed must be"),
    ("teacher sample one prompt", "silent",
     lambda c: teacher_fn("sample_teacher_topk")(tiny_llama(vocab=100), tiny_tokenizer(), "w3 w4"),
     TypeError, "prompts must be a non-empty list"),
    ("teacher sparse_sample probabilities", "silent",
     lambda c: teacher_fn("sparse_sample")(torch.tensor([0.5, 0.5]), 2), ValueError,
     "logp must hold log-probabilities"),
    ("teacher sparse_sample NaN", "silent",
     lambda c: teacher_fn("sparse_sample")(torch.tensor([-0.5, float("nan")]), 2), ValueError,
     "logp must hold log-probabilities"),
    ("teacher topk seed", "cryptic",
     lambda c: teacher_fn("teacher_topk")(tiny_llama(vocab=100), tiny_tokenizer(), ["w3"],
                                          prompts=["w4"], seed="0", progress=False),
     TypeError, "seed must be"),
]
NEW_MODULE_CASES += TEACHER_CASES


# distill (project_topk lives in align, chat_prompts in evaluate)
def projection(student_ids, vocab=None):
    from lingua_nb.align import project_topk
    al = dp_align(["a", "b"], ["a", "b"], "plain", "plain")
    return project_topk(al, [["a", "x"], ["b", "a"]], [[0.6, 0.4], [0.9, 0.1]], student_ids,
                        vocab or {"a": 0, "b": 1}, teacher_scheme="plain", student_scheme="plain")


def topk_loss(logits=None, ids=None, probs=None, **kw):
    from lingua_nb.distill import topk_distill_loss
    logits = torch.zeros(1, 2, 5) if logits is None else logits
    ids = torch.tensor([[[0, 1], [2, -1]]]) if ids is None else ids
    probs = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]]) if probs is None else probs
    return topk_distill_loss(logits, ids, probs, torch.ones(1, 2), **kw)


def subvocab():
    from lingua_nb.distill import SubVocab
    tok = tiny_tokenizer()
    tok.eos_token = "w2"
    return SubVocab(tok, [3, 4, 5])


def distill_fn(name):
    import lingua_nb.distill as distill_mod
    return getattr(distill_mod, name)


def student_run(**kw):
    import datasets
    from lingua_nb.distill import CausalCollator
    ds = datasets.Dataset.from_list([{"format": "zs_cot", "input_ids": [3, 4]}])
    kw = {"objective": "sm", "steps": 1, "device": "cpu", "progress": False} | kw
    return distill_fn("train_student")(tiny_llama(vocab=100), ds, CausalCollator(), **kw)


DISTILL_CASES = [
    ("distill project_topk student id -5", "silent", lambda c: projection([0, -5]), ValueError,
     "student_ids holds the id -5"),
    ("distill project_topk student id 1e9", "crash", lambda c: projection([0, 10**9]), ValueError,
     "student_ids holds the id 1000000000"),
    ("distill project_topk student ids string", "cryptic", lambda c: projection("ab"), TypeError,
     "student_ids must be a list"),
    ("distill SubVocab.encode one string", "silent", lambda c: subvocab().encode("w3 w4"),
     TypeError, "texts must be a list of strings"),
    ("distill SubVocab.from_texts one string", "silent",
     lambda c: distill_fn("SubVocab").from_texts(tiny_tokenizer(), "w3 w4"), TypeError,
     "texts must be a list of strings"),
    ("distill chat_prompts one string", "silent",
     lambda c: distill_fn("chat_prompts")(load_tokenizer("smollm2-135m-instruct"), "What is 2?"),
     TypeError, "questions must be a list of strings"),
    ("distill loss NaN logits", "silent",
     lambda c: topk_loss(logits=torch.full((1, 2, 5), float("nan"))), ValueError,
     "student_logits has NaN"),
    ("distill loss inf probs", "silent",
     lambda c: topk_loss(probs=torch.tensor([[[float("inf"), 0.0], [1.0, 0.0]]])), ValueError,
     "target_probs"),
    ("distill loss top-k shape", "cryptic", lambda c: topk_loss(ids=torch.zeros(1, 3, 2).long()),
     ValueError, "target_ids must be a (b, t, k)"),
    ("distill loss eps 0", "silent", lambda c: topk_loss(eps=0.0), ValueError, "eps must be"),
    ("distill sample matching NaN logits", "silent",
     lambda c: distill_fn("sample_matching_loss")(torch.full((1, 2, 5), float("nan")),
                                                  torch.tensor([[1, 2]])),
     ValueError, "student_logits has NaN"),
    ("distill dense loss inf logits", "silent",
     lambda c: distill_fn("dense_distill_loss")(torch.full((1, 2, 5), float("inf")),
                                                torch.tensor([[[0], [1]]]),
                                                torch.tensor([[[1.0], [1.0]]]), torch.ones(1, 2)),
     ValueError, "student_logits has NaN"),
    ("distill train lr NaN", "silent", lambda c: student_run(lr=float("nan")), ValueError,
     "lr must be"),
    ("distill train warmup -1", "silent", lambda c: student_run(warmup=-1), ValueError,
     "warmup must be"),
    ("distill train objective", "cryptic", lambda c: student_run(objective="kl"), ValueError,
     "objective must be one of"),
    ("distill train max_grad_norm 0", "silent", lambda c: student_run(max_grad_norm=0),
     ValueError, "max_grad_norm must be"),
    ("distill train dataset list", "cryptic",
     lambda c: distill_fn("train_student")(tiny_llama(vocab=100), [{"format": "a"}], print),
     TypeError, "dataset must be a datasets.Dataset"),
    ("distill t5 dropout 2", "silent", lambda c: distill_fn("t5_student")(10, dropout=2.0),
     ValueError, "dropout must be"),
    ("distill evaluate batch_size 0", "cryptic",
     lambda c: distill_fn("evaluate_nll")(None, [1], None, batch_size=0), ValueError,
     "batch_size must be"),
    ("distill student_targets k 0", "cryptic",
     lambda c: distill_fn("student_targets")(rec3(), tiny_tokenizer(), k=0), ValueError,
     "k must be"),
]
NEW_MODULE_CASES += DISTILL_CASES


# corpora
def corpora_fn(name):
    import lingua_nb.corpora as corpora_mod
    return getattr(corpora_mod, name)


CORPORA_CASES = [
    ("corpora arc split", "cryptic", lambda c: corpora_fn("load_arc_challenge")("train"),
     ValueError, "split must be one of"),
    ("corpora gsm8k split", "cryptic", lambda c: corpora_fn("load_gsm8k")("dev"), ValueError,
     "split must be one of"),
    ("corpora arc en-ko seed -1", "cryptic", lambda c: corpora_fn("load_arc_en_ko")(5, seed=-1),
     ValueError, "seed must be"),
    ("corpora gsm_symbolic seed", "cryptic", lambda c: corpora_fn("gsm_symbolic")(5, seed=1.5),
     TypeError, "seed must be"),
    ("corpora template split frac NaN", "silent",
     lambda c: corpora_fn("gsm_template_split")(3, float("nan")), ValueError,
     "heldout_frac must be"),
    ("corpora template id string", "cryptic", lambda c: corpora_fn("gsm_template_split")("3"),
     TypeError, "template_id must be"),
    ("corpora parallel langs string", "cryptic",
     lambda c: corpora_fn("load_gsm_symbolic_parallel")("eng"), TypeError,
     "langs must be a tuple"),
    ("corpora parallel heldout NaN", "silent",
     lambda c: corpora_fn("load_gsm_symbolic_parallel")(heldout_frac=float("nan")), ValueError,
     "heldout_frac must be"),
    ("corpora pairs one source string", "silent",
     lambda c: corpora_fn("load_en_ko_pairs")("emoji"), TypeError,
     "sources must be a list of strings"),
    ("corpora pairs valid_frac NaN", "silent",
     lambda c: corpora_fn("load_en_ko_pairs")(("emoji",), valid_frac=float("nan")), ValueError,
     "valid_frac must be"),
    ("corpora pairs max_chars 0", "silent",
     lambda c: corpora_fn("load_en_ko_pairs")(("emoji",), max_chars=0), ValueError,
     "max_chars must be"),
    ("corpora sample split None", "cryptic",
     lambda c: corpora_fn("sample_en_ko_pairs")(["emoji"], None, 5), ValueError,
     "split must be one of"),
    ("corpora sample one source string", "cryptic",
     lambda c: corpora_fn("sample_en_ko_pairs")("emoji", "test", 5), TypeError,
     "sources must be a list of strings"),
    ("corpora sample seed -1", "cryptic",
     lambda c: corpora_fn("sample_en_ko_pairs")(["emoji"], "test", 5, seed=-1), ValueError,
     "seed must be"),
    ("corpora distill sets seed", "cryptic",
     lambda c: corpora_fn("gsm_distill_sets")(seed="0"), TypeError, "seed must be"),
]
NEW_MODULE_CASES += CORPORA_CASES


@pytest.mark.parametrize(
    "call,exc,contains",
    [c[2:] for c in NEW_MODULE_CASES],
    ids=[c[0] for c in NEW_MODULE_CASES],
)
def test_new_module_bad_input(ctx, call, exc, contains):
    with pytest.raises(exc) as info:
        call(ctx)
    assert type(info.value) is exc, (
        f"expected {exc.__name__}, got {type(info.value).__name__}: {info.value}"
    )
    assert contains in str(info.value), f"{contains!r} not in {str(info.value)!r}"


def test_new_module_tables_cover_each_module():
    modules = {c[0].split()[0] for c in NEW_MODULE_CASES}
    assert {"assets", "teacher", "distill", "corpora"} <= modules, modules
    assert {c[1] for c in NEW_MODULE_CASES} == {"silent", "cryptic", "crash", "data loss"}
