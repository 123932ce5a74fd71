"""Lines of at most 100 characters in the package, scripts, benchmarks, tests and the notebooks'
code cells, so that pages and diffs read without scrolling."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_CHARS = 100
# Notebooks exempted from the rule for now (each named with why); none at present.
PENDING: set[str] = set()


def long_lines(name: str, text: str) -> list[str]:
    "`name:line: N characters` for every line of `text` longer than MAX_CHARS."
    return [f"{name}:{i}: {len(line)} characters" for i, line in enumerate(text.splitlines(), 1)
            if len(line) > MAX_CHARS]


def without_generated(text: str) -> str:
    "An exported module without what nbdev writes: the summary docstring and the `__all__` block."
    lines = text.splitlines()
    if lines and lines[0].startswith('"""'):
        lines[0] = ""
    start = next((i for i, line in enumerate(lines) if line.startswith("__all__ = [")), None)
    if start is not None:
        end = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith("]"))
        lines[start:end + 1] = [""] * (end + 1 - start)
    return "\n".join(lines)


def python_long_lines() -> list[str]:
    "Long lines of the exported package (but `_modidx.py`) and of scripts, benchmarks and tests."
    hits = []
    for p in sorted((ROOT / "lingua_nb").glob("*.py")):
        if p.name != "_modidx.py":
            text = without_generated(p.read_text(encoding="utf-8"))
            hits += long_lines(str(p.relative_to(ROOT)), text)
    for p in sorted(p for d in ("scripts", "benchmarks", "tests") for p in (ROOT / d).glob("*.py")):
        hits += long_lines(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8"))
    return hits


def parameter_line_runs_over(line: str) -> bool:
    "papermill reads a parameter's help from its own line: a long value may leave it no room."
    return len(line.split("  #", 1)[0]) > MAX_CHARS - 20


def notebook_long_lines(nb: Path) -> list[str]:
    "Long lines of the code cells, named `notebook cell K:line`."
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    name = nb.relative_to(ROOT)
    hits = []
    for k, c in enumerate(cells):
        if c["cell_type"] != "code":
            continue
        lines = "".join(c["source"]).splitlines()
        if "parameters" in c.get("metadata", {}).get("tags", []):
            lines = ["" if parameter_line_runs_over(line) else line for line in lines]
        hits += long_lines(f"{name} cell {k}", "\n".join(lines))
    return hits


def test_long_lines_are_found():
    text = "short\n" + "x" * (MAX_CHARS + 1) + "\n" + "y" * MAX_CHARS
    assert long_lines("f.py", text) == [f"f.py:2: {MAX_CHARS + 1} characters"]
    doc = '"""' + "d" * 120 + '"""\n'
    exported = doc + "import x\n__all__ = ['a',\n           'b', '" + "z" * 120 + "']\n" + "w" * 101
    assert long_lines("m.py", without_generated(exported)) == ["m.py:5: 101 characters"]
    assert parameter_line_runs_over('pairs: list = ["' + "p" * 80 + '"]  # help')
    assert not parameter_line_runs_over("n: int = 3  # " + "h" * 100)


def test_python_lines_fit():
    found = python_long_lines()
    assert not found, f"{len(found)} lines over {MAX_CHARS} characters:\n" + "\n".join(found)


def test_notebook_code_lines_fit():
    assert all((ROOT / p).exists() for p in PENDING), "a notebook in PENDING is gone: drop it"
    nbs = sorted(p for p in (ROOT / "nbs").rglob("*.ipynb")
                 if ".ipynb_checkpoints" not in p.parts and str(p.relative_to(ROOT)) not in PENDING)
    found = [hit for nb in nbs for hit in notebook_long_lines(nb)]
    assert not found, f"{len(found)} code lines over {MAX_CHARS} characters:\n" + "\n".join(found)
