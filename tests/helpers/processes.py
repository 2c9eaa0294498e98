"""The processes of given process groups, from /proc (Linux): what a command left running, and
whose sockets are whose."""

import os


def processes_in(groups: list[int]) -> list[int]:
    """The pids of the live processes whose process group is one of `groups`."""
    found = []
    for pid in (int(name) for name in os.listdir("/proc") if name.isdigit()):
        try:
            if os.getpgid(pid) in groups:
                found.append(pid)
        except ProcessLookupError:
            pass  # ended while the table was read
    return found
