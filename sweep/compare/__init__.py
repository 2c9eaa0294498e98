"""How arms are compared: the one choice of an arm's setting (choice.py) and the statistics and verdicts of the report
(stats.py). Pure Python and scipy: imported by the searcher, the driver and the report alike; imports nothing of ray,
mlflow or optuna."""
