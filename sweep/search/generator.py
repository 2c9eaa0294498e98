"""ArmSearch: Ray Tune's SearchGenerator over the ArmSearcher, whose budget follows the sweep's
saved spec when Tune restores it, so `sweep resume NAME --set search.trials_per_arm=N` (or
`confirm_seeds=N`) continues a finished or stopped sweep in the same Tune run and studies.

Tune wraps a plain Searcher in a SearchGenerator whose sample count and finished flag it saves
with the run and restores on `Tuner.restore`, with no way to raise them (Ray 2.60,
ray/tune/search/search_generator.py); the searcher itself is restored from the pickled Tuner with
the spec it started with. This generator is the sweep's own: handed to Tune as `search_alg` (Tune
does not wrap it again), it takes the budget of `sweep_spec.yaml` in the sweep's folder after
every restore, which `sweep resume --set` rewrites first (sweep/tuning/driver.py), and lets the
searcher say FINISHED again. docs/platform.md, Ray Tune.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune.experiment.config_parser import _make_parser
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.search_generator import SearchGenerator

from ..defaults import SPEC_FILE
from ..spec import SweepSpec, load_spec
from ..spec.budget import planned_trials
from .searcher import ArmSearcher


class ArmSearch(SearchGenerator):
    def __init__(self, spec: SweepSpec, queued: int = 0):
        """`queued` trials are suggested beyond `max_concurrent`, to wait as pending trials (the
        driver asks for one where the cluster's resources already hold the running trials to
        `max_concurrent`: sweep/tuning/driver.py, `_queued`)."""
        searcher = ArmSearcher(spec)
        # max_concurrent here, not in TuneConfig: Tune limits only a Searcher it wraps itself
        limit = spec.max_concurrent + queued
        super().__init__(ConcurrencyLimiter(searcher, max_concurrent=limit) if spec.max_concurrent else searcher)
        self._spec_file = str(spec.folder / SPEC_FILE)

    @property
    def arms(self) -> ArmSearcher:
        """The ArmSearcher inside Tune's wrappers."""
        searcher = self.searcher
        while not isinstance(searcher, ArmSearcher):
            searcher = searcher.searcher
        return searcher

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles the Tuner; an argparse parser does not pickle
        return {**self.__dict__, "_parser": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _parser=_make_parser())

    def restore_from_dir(self, dirpath: str) -> None:
        super().restore_from_dir(dirpath)
        spec = load_spec(Path(self._spec_file))
        self.arms.follow(spec)
        self._total_samples = max(self._counter, sum(planned_trials(spec).values()))
        # The searcher returns FINISHED again once its budget (maybe larger now) is spent.
        self._finished = False
