"""Orchestration: the only package that imports ray, optuna and mlflow (docs/architecture.md).

Subpackages, each owning one concern (its docstring says what it may import):
cli/ (the `sweep` command), spec/ (what a sweep is), search/ (Optuna, one study per arm),
tuning/ (the Ray Tune driver and the trainable), cluster/ (nodes, cards, placement, stores),
tracking/ (MLflow and the journal), report/ (the comparison, from MLflow alone).
errors.py, defaults.py and redact.py are shared by all and import none of them.
"""
