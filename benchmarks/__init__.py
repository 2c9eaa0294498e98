"""Measured speed figures: `python -m benchmarks.NAME`, each printing a table.

Timings are ratios measured side by side in one run: the contenders alternate, each figure is a
median of several repeats, and the thread count is fixed. Benchmarks are not tests.
"""
