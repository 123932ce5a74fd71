"""Every library notebook runs under nbdev's own test runner (cells flagged `slow`/`notest`
skipped), one test each;
every experiment notebook runs end to end through papermill in smoke mode."""
from pathlib import Path

import papermill as pm
import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_nb  # renamed so pytest does not collect it

ROOT = Path(__file__).resolve().parents[1]
LIBRARY_NBS = sorted((ROOT / "nbs").glob("[0-9]*.ipynb"))
EXPERIMENT_NBS = sorted((ROOT / "nbs" / "experiments").glob("*.ipynb"))


def test_notebooks_found():
    assert LIBRARY_NBS and EXPERIMENT_NBS


@pytest.mark.parametrize("nb", LIBRARY_NBS, ids=[p.stem for p in LIBRARY_NBS])
def test_library_notebook(nb):
    ok, secs = run_nb(nb, skip_flags=get_config().tst_flags.split(), basepath=ROOT)
    assert ok, f"{nb.name} failed (see the traceback above)"


@pytest.mark.parametrize("nb", EXPERIMENT_NBS, ids=[p.stem for p in EXPERIMENT_NBS])
def test_experiment_smoke(nb, tmp_path):
    out_dir = tmp_path / nb.stem
    pm.execute_notebook(
        str(nb),
        str(tmp_path / nb.name),
        parameters={"smoke": True, "out_dir": str(out_dir)},
        cwd=str(ROOT),
        kernel_name="python3",
        progress_bar=False,
    )
    assert (out_dir / "results.json").exists(), "an experiment must write results.json"
