"""What the sweep records and where: the tracking schema (every MLflow tag, outcome, phase and
journal event kind), the journal that keeps each event on disk before MLflow sees it, the
idempotent MLflow writer and the Ray Tune callback that feeds the journal.

schema.py imports nothing of the project, so the report and the trainable can read it alone.
The rest imports spec/ and mlflow; callback.py alone imports Ray Tune.
"""
