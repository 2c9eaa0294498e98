"""TPE on a window of a long study (sweep/search/space.py): the most recent trials and the best
ones, so a suggestion's cost stops growing with the study, while TPE's "good" group stays the
whole study's (docs/statistics.md)."""

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.samplers._tpe.sampler import _split_trials, default_gamma
from optuna.trial import TrialState, create_trial

from sweep.search import space


@pytest.fixture(scope="module")
def study():
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    dist = {"lr": FloatDistribution(0.01, 1.0, log=True)}
    values = [(i * 7919) % 600 / 6.0 for i in range(600)]  # every value once, in a scrambled order
    study.add_trials(
        [create_trial(state=TrialState.COMPLETE, value=v, params={"lr": 0.01 + v / 101}, distributions=dist) for v in values]
    )
    return study


def test_the_window_holds_the_recent_trials_and_the_best_ones(study):
    seen = space._Recent(study, window=100, best=25)._get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    numbers = {t.number for t in seen}
    assert len(seen) == 125 and set(range(500, 600)) <= numbers
    best = sorted(study.trials[:500], key=lambda t: t.value, reverse=True)[:25]
    assert {t.number for t in best} <= numbers


def test_tpe_s_good_group_is_the_whole_study_s(study):
    everything = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    # a window of 300 (as the sweep's 500): TPE's good group is then min(10%, 25) = 25 trials, as for the whole study
    windowed = space._Recent(study, window=300, best=space.BEST)._get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    full_below, _ = _split_trials(study, everything, default_gamma(len(everything)))
    window_below, window_above = _split_trials(study, windowed, default_gamma(len(windowed)))
    assert [t.number for t in window_below] == [t.number for t in full_below]
    assert len(window_above) == 300  # the "bad" group: the recent trials that are not among the best


def test_a_short_study_is_modelled_whole_and_the_window_tpe_suggests_in_range(study):
    short = space._Recent(study, window=1000, best=25)
    assert len(short._get_trials(deepcopy=False)) == 600
    sampler = space.WindowTPE(seed=1, n_startup_trials=5, multivariate=True, constant_liar=True, window=50)
    windowed = optuna.create_study(direction="maximize", sampler=sampler)
    windowed.add_trials(study.trials)
    trial = windowed.ask({"lr": FloatDistribution(0.01, 1.0, log=True)})
    assert 0.01 <= trial.params["lr"] <= 1.0
