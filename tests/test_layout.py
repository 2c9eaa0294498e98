"""The layout holds: dependency directions, file sizes, and every path the code and docs name.

docs/architecture.md says what may import what; these tests make it fail loudly when a change
breaks it, instead of a newcomer finding out from a worker that imports the whole CLI.
"""

import ast
import functools
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP_FOLDERS = ("sweep", "trainers", "tests", "benchmarks", "docs", "docker", "search_spaces", ".ci")
NOT_IN_REPO = {  # named on purpose, made elsewhere
    "report.md",  # written by `sweep report` into reports/NAME/
    "docker/.env",  # the user's copy of docker/.env.example
}
MAX_LINES = 300


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file, wherever it stands (functions too)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_trainers_import_nothing_of_sweep_ray_mlflow_or_optuna():
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & {"sweep", "ray", "mlflow", "optuna"})
        for path in python_files("trainers")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def loaded_by(module: str) -> set[str]:
    """The modules a fresh interpreter loads to import `module` (or several, comma-separated),
    not those it marks absent."""
    probe = (
        f"import sys; before = set(sys.modules); import {module}; "
        "print(' '.join(sorted(name for name, m in sys.modules.items() if m is not None and name not in before)))"
    )
    return set(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT).stdout.split())


def test_a_worker_importing_the_trainable_loads_neither_the_cli_nor_the_report():
    loaded = loaded_by("sweep.tuning.trainable, trainers.train")
    assert "sweep.tuning.trainable" in loaded  # the probe itself worked
    assert not [m for m in loaded if m.startswith(("sweep.cli", "sweep.report", "mlflow", "optuna", "sklearn"))], loaded


def test_the_report_s_figure_process_starts_before_mlflow_is_imported_and_never_needs_it():
    # write.py starts the figure process first so that the two processes' imports overlap
    # (sweep/report/figures.py): its handle costs nothing to import, the process imports no MLflow
    handle = loaded_by("sweep.report.figures")
    assert "sweep.report.figures" in handle
    assert {m for m in handle if m.split(".")[0] not in sys.stdlib_module_names and m.split(".")[0] != "sweep"} == set()
    drawing = loaded_by("sweep.report.draw")
    assert "matplotlib" in drawing and not {
        m for m in drawing if m.split(".")[0] in ("mlflow", "ray", "torch", "sklearn", "pandas")
    }
    assert "scipy.stats" not in drawing  # what the numbers are computed with, not the figures
    assert "sweep.report.draw" not in loaded_by("sweep.report.write") and "mlflow" not in loaded_by("sweep.report.write")


def test_the_report_needs_no_ray():
    roots = set().union(*(imported_roots(path) for path in python_files("sweep/report")))
    assert "ray" not in roots


def test_no_file_of_the_packages_is_longer_than_300_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in python_files("sweep", "trainers")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def _documents() -> list[Path]:
    files = [ROOT / "README.md", *python_files(*TOP_FOLDERS), *(ROOT / "docs").glob("*.md"), ROOT / "benchmarks" / "RESULTS.md"]
    files += [
        *(ROOT / "search_spaces").glob("*.yaml"),
        *(ROOT / "docker").iterdir(),
        ROOT / ".ci" / "run",
        ROOT / "pyproject.toml",
    ]
    return [path for path in files if path.is_file()]


FOLDERS = "|".join(re.escape(folder) for folder in TOP_FOLDERS)
PATH = re.compile(rf"(?<![\w./$-])((?:{FOLDERS})/[\w./-]*[\w/])")
DOC_NAME = re.compile(r"(?<![\w./-])([A-Za-z_][\w-]*\.(?:md|py))\b")
LINK = re.compile(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)")  # Markdown links to local files


def prose(path: Path) -> str:
    """What a person reads in a file: a Python file's comments and docstrings, any other file whole."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return text
    comments = [tok.string for tok in tokenize.generate_tokens(io.StringIO(text).readline) if tok.type == tokenize.COMMENT]
    nodes = [
        node
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    return "\n".join(comments + [doc for node in nodes if (doc := ast.get_docstring(node))])


@functools.cache
def _known_names() -> frozenset[str]:
    """Names of the repository's Markdown and Python files (not those of a virtual environment
    inside the checkout, which hold thousands and would make a misspelt name look known)."""
    files = [*ROOT.glob("*.md"), *ROOT.glob("*.py")]
    files += [p for folder in TOP_FOLDERS for pattern in ("*.md", "*.py") for p in (ROOT / folder).rglob(pattern)]
    return frozenset(p.name for p in files)


@pytest.mark.parametrize("path", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_file_names_exists(path):
    text = prose(path)
    known = _known_names()
    missing = [ref for ref in PATH.findall(text) if not (ROOT / ref).exists() and ref not in NOT_IN_REPO]
    missing += [name for name in DOC_NAME.findall(text) if name not in known | NOT_IN_REPO]
    if path.suffix == ".md":
        missing += [link for link in LINK.findall(text) if not (path.parent / link).exists()]
    assert missing == []


def test_no_comment_points_at_a_tracker_number():
    # a checkout cannot open a tracker's numbered threads: comments keep the reason instead
    files = [*python_files(*TOP_FOLDERS), ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    cited = [
        str(p.relative_to(ROOT)) for p in files if re.search(r"\bissues? #?\d+", p.read_text(encoding="utf-8"), re.IGNORECASE)
    ]
    assert cited == []
