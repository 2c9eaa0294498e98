"""What a sweep is: the SweepSpec schema, its YAML loading and `--set` overrides, and the Arm.

Imports trainers (TrainConfig and the registries, to check every arm's trials) and pydantic,
never ray, optuna or mlflow: a spec is checked before anything starts.
"""
