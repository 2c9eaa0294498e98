"""Test helpers, in one place: real servers on loopback ports, sweeps written straight into MLflow,
the failure tests' figures, the kernel's table of listening sockets and the processes of a process group. Imported as `helpers` by the
tests (pytest puts tests/ on the path) and as `tests.helpers` by the benchmarks."""
