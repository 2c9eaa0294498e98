"""Orchestration: the only package that imports ray, optuna and mlflow (ARCHITECTURE.md)."""
