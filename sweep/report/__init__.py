"""The comparison report: its numbers from MLflow alone, rendered as text, CSV and plots, and
Optuna's plots of each arm's study beside them.

Imports tracking/schema.py, spec/arm.py, mlflow, optuna (studies.py), scipy and matplotlib;
never ray, so `sweep report` works wherever the tracking store can be reached.
"""
