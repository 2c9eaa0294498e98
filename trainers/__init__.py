"""Pure-PyTorch training code shared by every trial: configs, update rules, models, data, the loop.

Nothing in this package imports ray, mlflow or optuna (docs/architecture.md): the trainer knows only
a reporter callback, so it runs the same under Ray Tune, from `sweep train`, or in a notebook.
"""
