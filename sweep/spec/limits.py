"""How large a spec may be, in one place: the file, its YAML, and the counts it asks for.

Every limit is far beyond what a real sweep asks (the paper's tables run 200 epochs, a handful of
seeds, tens of trials per arm), so it only refuses a typo or a document built to exhaust the
machine: ten thousand trials per arm would already be months of GPU time, and a count like 10**12
would otherwise be accepted here and fail, or hang, only once the sweep had started.
"""

from __future__ import annotations

# the file: a spec is a page of YAML, read whole and parsed into Python objects
MAX_SPEC_BYTES = 1_000_000  # refused before parsing
MAX_DEPTH = 50  # nesting of mappings and lists; a real spec nests four deep (search.overrides.asam.rho)
# keys and values in all: a real spec has a few hundred; a megabyte of `0,` would be half a
# million, some ten seconds of parsing (PyYAML is pure Python) for a spec refused anyway
MAX_NODES = 20_000

# the counts a sweep asks for
MAX_EPOCHS = 10_000  # train.epochs
MAX_TRIALS_PER_ARM = 10_000  # search.trials_per_arm
MAX_GRID_POINTS = 10_000  # a grid's trials per arm: its choices multiplied, times the seeds
MAX_SEEDS = 1_000  # entries of `seeds`
MAX_CONFIRM_SEEDS = 1_000  # confirm_seeds
MAX_RETRIES = 100  # retries of one failed trial
