"""Kill a checkpoint writer at each stage of its save; the loader must get the old or the new one.

For one writer (`calm`, `langbridge`, `contrastive`, `json`, `gguf` or `cache`), this process saves
the old checkpoint once, then per stage forks a child that starts saving a different (new) model and
is killed with SIGKILL at that stage; this process then loads what is on disk, says whether it
equals the old or the new model, and restores the old one. One JSON line per stage: {"stage",
"signal", "loaded"}. The `cache` writer (an asset cache entry) first spoils the old entry (as a
rebuild would find it), so its loader gets the new entry or a fresh rebuild ("rebuilt"), never the
spoiled one; it is also killed halfway through the build ("build"). Run by test_bad_inputs.py, or
alone:
    .venv/bin/python tests/kill_writers.py calm DIR"""

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import lingua_nb.core as core

torch.set_num_threads(1)

# where a save is killed: before or after the one-call exchange, or (without it) before either
# rename or before the old directory is removed
DIR_STAGES = ["exchange-before", "exchange-after", "rename-1", "rename-2", "remove-old"]
FILE_STAGES = ["replace-before", "replace-after"]
DIE_IN_BUILD = []  # set in the child killed at the "build" stage of the cache writer


def kill_at(stage: str, target: Path):
    "Patch the renames of `atomic_path` so that this process dies at `stage` of writing `target`."
    real_replace, real_rmtree = os.replace, shutil.rmtree
    real_exchange = getattr(core, "_exchange", None)
    renames = []

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def exchange(a, b):
        if not stage.startswith("exchange"):
            return False  # the two-rename path
        if stage == "exchange-before":
            die()
        done = real_exchange(a, b)
        if stage == "exchange-after":
            die()
        return done

    def replace(a, b):
        if Path(b) == target or Path(a) == target:
            renames.append(b)
            if stage in (f"rename-{len(renames)}", "replace-before"):
                die()
            real_replace(a, b)
            if stage == "replace-after":
                die()
            return
        real_replace(a, b)

    def rmtree(p, *args, **kwargs):
        if stage == "remove-old" and ".old-" in Path(p).name:
            die()
        real_rmtree(p, *args, **kwargs)

    core._exchange, core.os.replace, core.shutil.rmtree = exchange, replace, rmtree


def gguf_writer(tmp: Path):
    "join_gguf of two-part files whose content says which (old or new) they are."
    import hashlib

    from lingua_nb.assets import GGUFParts, join_gguf

    specs, parts = {}, {}
    for which in ("old", "new"):
        parts[which] = [tmp / f"{which}-part{i}" for i in range(2)]
        for i, p in enumerate(parts[which]):
            p.write_bytes(f"{which}{i}".encode() * 50000)
        data = [p.read_bytes() for p in parts[which]]
        rows = tuple((f"pkg{i}", p.name, hashlib.sha256(d).hexdigest())
                     for i, (p, d) in enumerate(zip(parts[which], data)))
        whole = b"".join(data)
        specs[which] = GGUFParts(
            "ckpt.gguf", "1", rows, hashlib.sha256(whole).hexdigest(), len(whole)
        )

    def save(which, path):
        join_gguf(specs[which], path, parts[which])

    def load(path):
        return Path(path).read_bytes()[:3].decode()

    return save, load


def cache_writer(tmp: Path):
    "cached_build of an entry whose files say which build wrote it."
    from lingua_nb.assets import cached_build

    os.environ["LINGUA_NB_CACHE"] = str(tmp)

    def build_of(which):
        def build(out):
            (out / "config.json").write_text(json.dumps({"which": which}))
            (out / "weights.bin").write_text(which * 20000)
            if DIE_IN_BUILD:
                os.kill(os.getpid(), signal.SIGKILL)
            (out / "tokenizer_config.json").write_text(json.dumps({"which": which}))

        return build

    def save(which, path):
        weights = Path(path) / "weights.bin"
        if weights.exists():  # spoil the old entry: a file cut short
            with open(weights, "r+b") as f:
                f.truncate(10)
        cached_build(Path(path).name, build_of(which))

    def load(path):
        entry = cached_build(Path(path).name, build_of("rebuilt"))
        which = json.loads((entry / "tokenizer_config.json").read_text())["which"]
        return which if (entry / "weights.bin").read_text() == which * 20000 else "other"

    return save, load


def writer(name: str, tmp: Path):
    "(save(which, path), load(path) -> 'old' | 'new' | 'other') for the writer `name`."
    if name == "gguf":
        return gguf_writer(tmp)
    if name == "cache":
        return cache_writer(tmp)
    if name == "json":

        def save(which, path):
            core.dump_json({"which": which, "pad": [1] * 1000}, path)

        def load(path):
            return json.loads(Path(path).read_text())["which"]

        return save, load
    if name == "calm":
        from test_bad_inputs import IDS, calm, composed
        from lingua_nb.calm import CALMModel

        old = calm()
        models = {
            "old": old,
            "new": composed(old.anchor, old.augments[0], [[(0, 1), (1, 3)]], seed=2),
        }

        def run(m):
            return m(IDS).logits

        def load_model(path):
            return CALMModel.from_pretrained(path, anchor=old.anchor, augments=list(old.augments))
    elif name == "langbridge":
        from test_bad_inputs import ENC_IDS, LM_IDS, tiny_bridge_models, tiny_tokenizer
        from lingua_nb.langbridge import LangBridgeConfig, LangBridgeModel

        enc, lm = tiny_bridge_models()
        enc.save_pretrained(tmp / "enc")
        lm.save_pretrained(tmp / "lm")
        cfg = LangBridgeConfig(encoder_name=str(tmp / "enc"), lm_name=str(tmp / "lm"))
        toks = dict(enc_tokenizer=tiny_tokenizer(), lm_tokenizer=tiny_tokenizer(120))
        models = {k: LangBridgeModel(cfg, encoder=enc, lm=lm, **toks) for k in ("old", "new")}
        with torch.no_grad():
            models["new"].bridge.weight.add_(0.5)

        def run(m):
            return m(ENC_IDS, None, LM_IDS).logits

        def load_model(path):
            return LangBridgeModel.from_pretrained(path, encoder=enc, lm=lm)
    elif name == "contrastive":
        from lingua_nb.contrastive import ContrastiveModel

        models = {
            k: ContrastiveModel.from_lm(
                core.tiny_llama(layers=2, hidden=16, vocab=50), layers=[1, 2]
            )
            for k in ("old", "new")
        }
        with torch.no_grad():
            models["new"].pooling.logits.add_(torch.tensor([1.0, -1.0]))
        ids = torch.tensor([[3, 4, 5], [6, 7, 8]])

        def run(m):
            return m.encode(ids, torch.ones_like(ids))

        def load_model(path):
            return ContrastiveModel.from_pretrained(path)
    else:
        raise ValueError(
            f"writer must be calm, langbridge, contrastive, json, gguf or cache, got {name!r}"
        )
    with torch.no_grad():
        want = {k: run(m) for k, m in models.items()}

    def save(which, path):
        models[which].save_pretrained(path)

    def load(path):
        with torch.no_grad():
            got = run(load_model(path))
        return next((k for k, w in want.items() if torch.equal(got, w)), "other")

    return save, load


def main(name: str, tmp: Path):
    tmp.mkdir(parents=True, exist_ok=True)
    save, load = writer(name, tmp)
    target = tmp / {"json": "ckpt.json", "gguf": "ckpt.gguf"}.get(name, "ckpt")
    save("old", target)
    stages = FILE_STAGES if name in ("json", "gguf") else DIR_STAGES
    for stage in stages + (["build"] if name == "cache" else []):
        pid = os.fork()
        if pid == 0:  # the writer, killed at `stage`
            if stage == "build":
                DIE_IN_BUILD.append(True)
            else:
                kill_at(stage, target)
            save("new", target)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        try:
            loaded = load(target)
        except Exception as e:
            loaded = f"error: {type(e).__name__}: {e}"
        print(
            json.dumps(
                {
                    "stage": stage,
                    "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                    "loaded": loaded,
                }
            ),
            flush=True,
        )
        save("old", target)  # the next stage starts from the old checkpoint again
    left = sorted(p.name for p in tmp.iterdir() if ".partial-" in p.name or ".old-" in p.name)
    print(json.dumps({"left": left}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
