"""An arm: one (model, update rule) pair of a sweep, with its own study and the same budget."""

from __future__ import annotations

from typing import Any, NamedTuple

from trainers.catalogue import get_rule


class Arm(NamedTuple):
    """A tuple, so `model, rule = arm` reads as it did when arms were pairs."""

    model: str  # model registry key
    rule: str  # update rule registry key

    @property
    def key(self) -> str:
        """`MODEL/RULE`: the arm in a trial's config, its MLflow tag and the report's text."""
        return f"{self.model}/{self.rule}"

    @classmethod
    def parse(cls, key: str) -> Arm:
        model, sep, rule = key.partition("/")
        if not sep or not model or not rule or "/" in rule:
            raise ValueError(f"{key!r} is not an arm's MODEL/RULE")
        return cls(model, rule)

    def study_name(self, sweep: str) -> str:
        """The arm's Optuna study: `SWEEP/MODEL/RULE`."""
        return f"{sweep}/{self.key}"

    def __str__(self) -> str:
        return self.key


def searched(train: dict[str, Any]) -> dict[str, Any]:
    """The settings that tell one trial of an arm from another: lr, and rho/eta where the
    trial's rule reads them (the rest is fixed by the spec or is the seed)."""
    return {key: train[key] for key in ("lr", *get_rule(train["optimizer"]).uses)}
