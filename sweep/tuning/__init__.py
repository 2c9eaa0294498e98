"""The Ray Tune run: the driver (Ray session, Tuner built, run and resumed by name, the end of a
sweep) and the trainable every worker imports.

The driver may import spec/, search/, cluster/ and tracking/. The trainable imports trainers,
tracking/schema.py and cluster/ helpers only, never cli/ or report/: a worker loads no more
than a trial needs (tests/test_layout.py checks it).
"""
