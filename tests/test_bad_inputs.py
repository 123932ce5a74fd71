"""Bad inputs at the public boundaries of experiment, langbridge, calm and contrastive, as a table:
each case gives
the exception type and a phrase of its message that names the argument. Then, for every writer, a
save that fails midway (a failing writer in this process, or a file-size limit in a child process)
leaves the old file or
checkpoint loadable and equal."""
import json
import os
import subprocess
import sys
import textwrap
import warnings
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, models, pre_tokenizers

import lingua_nb.calm as calm_mod
from lingua_nb.calm import CALMBlock, CALMConfig, CALMModel, fit
from lingua_nb.contrastive import agreement_rate, info_nce
from lingua_nb.core import seed_everything, tiny_llama
from lingua_nb.experiment import check_param, load_results, results_markdown, start_run
from lingua_nb.langbridge import LabelledCollator, LangBridgeConfig, LangBridgeModel, train_bridge

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
]


@pytest.mark.parametrize("call,exc,contains", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(ctx, call, exc, contains):
    with pytest.raises(exc) as info: call(ctx)
    assert (
        type(info.value) is exc
    ), f"expected {exc.__name__}, got {type(info.value).__name__}: {info.value}"
    assert contains in str(info.value), f"{contains!r} not in {str(info.value)!r}"


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
