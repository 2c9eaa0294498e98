"""Which addresses a port listens on, from the kernel's socket table: the exposure tests."""

import os
import socket
from pathlib import Path

from .processes import processes_in


def listening_addresses(port: int, groups: list[int] | None = None) -> set[str]:
    """Addresses with a socket listening on `port`, read from the kernel's table (Linux); with
    `groups`, only the sockets of processes in those process groups (another test's process may
    listen on the same port number at another address)."""
    owned = _sockets_of(groups) if groups is not None else None
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            address, _, hex_port = local.partition(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            if owned is not None and inode not in owned:
                continue
            raw = bytes.fromhex(address)
            if len(raw) == 4:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:
                found.add(socket.inet_ntop(socket.AF_INET6, b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))))
    return found


def _sockets_of(groups: list[int]) -> set[str]:
    """Socket inodes held open by the processes of these process groups."""
    inodes = set()
    for pid in processes_in(groups):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
        except (FileNotFoundError, PermissionError):
            continue  # a process that ended while it was read
    return inodes
