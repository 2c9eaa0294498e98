"""Orchestration: the only package that imports ray, optuna and mlflow (docs/architecture.md).

The Python API, for notebooks (README.md, "Python API"; sweep/api.py):

    import sweep
    outcome = sweep.run("search_spaces/quickstart.yaml", overrides=["search.trials_per_arm=2"])
    sweep.report(outcome.name).to_frame()    # a pandas DataFrame, one row per run

`run`, `resume`, `validate` and `report` are looked up on first use: the console script imports
this package, and `sweep --help` loads none of torch, Ray, MLflow or Optuna.

Subpackages, each owning one concern (its docstring says what it may import):
cli/ (the `sweep` command), spec/ (what a sweep is), search/ (Optuna, one study per arm),
tuning/ (the Ray Tune driver and the trainable), cluster/ (nodes, cards, placement, stores),
tracking/ (MLflow and the journal), report/ (the comparison, from MLflow alone).
errors.py, defaults.py and redact.py are shared by all and import none of them.
"""

import importlib

__all__ = ["report", "resume", "run", "validate"]


def __getattr__(name: str):
    if name in ("run", "resume", "validate"):
        return getattr(importlib.import_module(".api", __name__), name)
    if name == "report":  # the subpackage, which is callable: sweep.report(name) (sweep/report/__init__.py)
        return importlib.import_module(".report", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
