"""The committed results in results/<name>/ stay true to their notebooks: each is the notebook's
default run (its parameters equal the defaults the `parameters` cell declares, not a smoke run),
holds every key the notebook's "what this run shows" prose reads, and carries its figures, its
provenance and a notebook within the size limit. Publishing refuses anything else and writes nothing
then."""

import json
import sys
from pathlib import Path

import pytest

from lingua_nb.experiment import notebook_prose_keys, result_value

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import publish_results  # noqa: E402

COMMITTED = sorted(p.parent for p in (ROOT / "results").glob("*/results.json"))


def missing_prose_keys(results: dict, nb: Path) -> list[str]:
    "The keys the notebook's prose reads that `results` lacks."
    out = []
    for key in notebook_prose_keys(nb):
        try:
            result_value(results, key)
        except KeyError:
            out.append(key)
    return out


def test_some_results_are_committed():
    assert {d.name for d in COMMITTED} >= {"e0_zoo", "e1_alignment"}


@pytest.mark.parametrize("run_dir", COMMITTED, ids=[d.name for d in COMMITTED])
def test_committed_result_is_the_default_run(run_dir):
    nb = publish_results.notebook_path(run_dir.name)
    res = json.loads((run_dir / "results.json").read_text())
    assert publish_results.publish_problems(res, nb) == [], (
        f"{run_dir.name}: results/ no longer match the notebook's defaults; rerun and publish it"
    )
    assert missing_prose_keys(res, nb) == [], (
        f"{run_dir.name}: the prose reads keys the results lack"
    )


@pytest.mark.parametrize("run_dir", COMMITTED, ids=[d.name for d in COMMITTED])
def test_committed_result_has_figures_provenance_and_a_small_notebook(run_dir):
    res = json.loads((run_dir / "results.json").read_text())
    assert res["figures"] and all((run_dir / f).is_file() for f in res["figures"])
    assert len(res["versions"]["git_commit"]) == 40 and res["versions"]["git_dirty"] is False
    assert res["machine"]["cpu"] and res["machine"]["torch_threads"] >= 1 and res["finished"]
    executed = run_dir / f"{run_dir.name}.ipynb"
    if executed.exists():
        assert executed.stat().st_size <= publish_results.NOTEBOOK_LIMIT
        text = executed.read_text()
        assert str(ROOT) not in text, "the committed notebook holds this checkout's path"
        papermill = json.loads(text)["metadata"]["papermill"]
        for key in ("input_path", "output_path"):
            assert not Path(papermill[key]).is_absolute(), f"{key} is absolute: {papermill[key]}"


# ------------------------------------------------------------------ the checks can fail
def a_default_run(tmp_path: Path, name: str = "e1_alignment", **changes) -> Path:
    "A finished run of `name` in tmp_path/runs at the notebook's defaults (with `changes`)."
    nb = publish_results.notebook_path(name)
    params = {
        k: v for k, v in publish_results.notebook_defaults(nb).items() if k != "out_dir"
    } | changes
    run_dir = tmp_path / "runs" / name
    run_dir.mkdir(parents=True)
    (run_dir / "fig.png").write_bytes(b"png")
    res = {
        "name": name,
        "acc": 0.5,
        "params": params,
        "figures": ["fig.png"],
        "versions": {"git_commit": "0" * 40, "git_dirty": False},
    }
    (run_dir / "results.json").write_text(json.dumps(res))
    return run_dir


def test_publish_copies_a_default_run(tmp_path):
    a_default_run(tmp_path)
    line = publish_results.publish("e1_alignment", tmp_path / "runs", tmp_path / "results")
    assert "published 2 files" in line
    assert sorted(p.name for p in (tmp_path / "results" / "e1_alignment").iterdir()) == [
        "fig.png",
        "results.json",
    ]


@pytest.mark.parametrize(
    "changes,says",
    [
        ({"smoke": True}, "smoke run"),
        ({"seed": 1}, "seed is 1, the notebook's default is 0"),
        ({"pairs": ["gpt2__xlm-r"]}, "pairs is ['gpt2__xlm-r']"),
        ({"stpes": 3}, "'stpes' is not a parameter"),
    ],
)
def test_publish_refuses_other_runs_and_writes_nothing(tmp_path, changes, says):
    a_default_run(tmp_path, **changes)
    with pytest.raises(publish_results.Refused) as e:
        publish_results.publish("e1_alignment", tmp_path / "runs", tmp_path / "results")
    assert says in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "results").exists()


def test_publish_refuses_a_dirty_tree_and_a_missing_figure(tmp_path):
    run_dir = a_default_run(tmp_path)
    res = json.loads((run_dir / "results.json").read_text())
    (run_dir / "results.json").write_text(json.dumps(res | {"versions": {"git_dirty": True}}))
    with pytest.raises(publish_results.Refused, match="uncommitted changes"):
        publish_results.publish("e1_alignment", tmp_path / "runs", tmp_path / "results")
    (run_dir / "results.json").write_text(json.dumps(res))
    (run_dir / "fig.png").unlink()
    with pytest.raises(publish_results.Refused, match=r"missing: \['fig.png'\]"):
        publish_results.publish("e1_alignment", tmp_path / "runs", tmp_path / "results")


def test_publish_removes_files_of_an_earlier_publish(tmp_path):
    a_default_run(tmp_path)
    old = tmp_path / "results" / "e1_alignment"
    old.mkdir(parents=True)
    (old / "gone.png").write_bytes(b"x")
    publish_results.publish("e1_alignment", tmp_path / "runs", tmp_path / "results")
    assert not (old / "gone.png").exists() and (old / "fig.png").exists()


@pytest.mark.skipif(not COMMITTED, reason="no committed results")
def test_stale_results_are_caught():
    "A committed result whose parameter or prose key no longer matches its notebook fails a check."
    run_dir = COMMITTED[0]
    nb = publish_results.notebook_path(run_dir.name)
    res = json.loads((run_dir / "results.json").read_text())
    first = next(k for k in res["params"] if k not in publish_results.IGNORED)
    changed = res | {"params": res["params"] | {first: "something else"}}
    assert any(first in p for p in publish_results.publish_problems(changed, nb))
    key = notebook_prose_keys(nb)[0]
    top = key.split(".")[0]
    assert key in missing_prose_keys({k: v for k, v in res.items() if k != top}, nb)
