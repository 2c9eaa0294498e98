"""The comparison report: its numbers from MLflow alone, rendered as text, CSV and plots.

Imports tracking/schema.py, spec/arm.py, mlflow, scipy and matplotlib; never ray or optuna, so
`sweep report` works wherever the tracking store can be reached.
"""
