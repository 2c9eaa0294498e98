"""Optuna's own views of each arm's study, beside the report's figures: the optimisation history
(each trial's value and the best so far) and, where it means something, the importance of each
searched parameter (optuna.visualization.matplotlib).

The studies are read from the sweep's Optuna storage. Best effort: a storage that cannot be
opened (the parent run's copy of the spec has its password redacted, so `sweep report` reads the
saved spec where there is one) gives no plots and a line saying why, never a failed report.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import optuna
from optuna.importance import PedAnovaImportanceEvaluator
from optuna.trial import TrialState

from ..redact import redact
from ..spec import SweepSpec

HISTORY, IMPORTANCE = "optuna_history_{arm}.png", "optuna_importance_{arm}.png"  # arm: MODEL_RULE
# Optuna's default evaluator, named so that it stays the one used: it needs no scikit-learn, which
# the figure process does not load (sweep/report/draw.py)
IMPORTANCE_BY = PedAnovaImportanceEvaluator
SEED_PARAM = "seed"  # a grid's seeds dimension (sweep/search/space.py): not a setting whose importance counts


def file_name(pattern: str, arm: str) -> str:
    return pattern.format(arm=arm.replace("/", "_"))


def study_plots(spec: SweepSpec, storage_url: str, out: Path) -> tuple[list[str], list[str]]:
    """Write each arm's plots to `out`: the names of the files written, and notes on what was
    left out and why. An arm gets an importance plot with two or more completed trials and two or
    more searched parameters (with one, its importance is 1 by definition)."""
    if storage_url.startswith("sqlite:///") and not Path(storage_url.removeprefix("sqlite:///")).exists():
        return [], [f"no Optuna plots: no studies at {storage_url}"]  # opening it would create an empty one
    try:
        storage = optuna.storages.RDBStorage(storage_url)
    except Exception as err:  # noqa: BLE001 (best effort, see the module's docstring)
        return [], [f"no Optuna plots: cannot open {redact(storage_url)} ({type(err).__name__})"]
    written, notes = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for arm in spec.arms():
            try:
                study = optuna.load_study(study_name=arm.study_name(spec.name), storage=storage)
            except KeyError:
                notes.append(f"{arm.key}: no Optuna study")
                continue
            complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if not complete:
                notes.append(f"{arm.key}: no completed study trial")
                continue
            written.append(_save(optuna.visualization.matplotlib.plot_optimization_history(study), out, HISTORY, arm.key))
            params = sorted({name for trial in complete for name in trial.params if name != SEED_PARAM})
            if len(complete) >= 2 and len(params) >= 2:
                axes = optuna.visualization.matplotlib.plot_param_importances(study, evaluator=IMPORTANCE_BY(), params=params)
                written.append(_save(axes, out, IMPORTANCE, arm.key))
            else:
                notes.append(f"{arm.key}: no parameter importances ({len(complete)} completed trials, {len(params)} searched)")
    return written, notes


def _save(axes, out: Path, pattern: str, arm: str) -> str:
    name = file_name(pattern, arm)
    figure = axes.get_figure()
    figure.tight_layout()
    figure.savefig(out / name, dpi=110)
    plt.close(figure)
    return name
