"""The search: a spec's dimensions as Optuna distributions and samplers, and ArmSearcher, the Ray
Tune searcher that gives every arm its own study and the same budget.

Imports spec/, tracking/schema.py and optuna; Ray Tune's Searcher base class only.
"""
