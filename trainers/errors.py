"""The trainers' input errors. The `sweep` command line translates them into its own (exit 2)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config that validated field by field but cannot be run (a model option's value, a data
    set too small for its validation split): bad input, reported like a validation error."""


class DataNotFoundError(FileNotFoundError):
    """A data set's files are not where the config says."""
