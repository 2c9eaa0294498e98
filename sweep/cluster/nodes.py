"""`sweep cluster head|join|status`: Ray nodes that declare their cards, with token auth.

`head` and `join` wrap `ray start`: they add the node's card model and memory as labels
(sweep/cluster/cards.py), turn on Ray's token authentication (`RAY_AUTH_MODE=token`; the head creates the
token, every other node and client reads the same file), and keep the dashboard on 127.0.0.1
unless told otherwise: whoever reaches a Ray dashboard can run code on the cluster
(CVE-2023-48022, docs/platform.md). `--dry-run` prints the exact command instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import ray
import ray.util
from ray._raylet import Config

from .. import defaults
from ..errors import UserError
from .cards import Card, NodeCards, cluster_cards, detect_cards, node_labels, parse_card

TOKEN_ENV, TOKEN_PATH_ENV, MODE_ENV = "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"


def token_path() -> Path:
    """Where Ray reads the cluster token: $RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token."""
    return Path(os.environ.get(TOKEN_PATH_ENV) or Path.home() / ".ray" / "auth_token")


def token_available() -> bool:
    return bool(os.environ.get(TOKEN_ENV)) or token_path().is_file()


def use_cluster_token() -> None:
    """Clients of a token-auth cluster must say so themselves (Ray turns token mode on by itself
    only for `address="auto"`): turn it on when a token is at hand; an explicit RAY_AUTH_MODE wins."""
    if token_available():
        use_token_mode()


def use_token_mode() -> None:
    """Token authentication for the Rays this process starts or joins; an explicit RAY_AUTH_MODE
    wins. A new local Ray has it on by default (Ray creates the token when there is none) but
    warns at every start where the mode was not chosen (docs/platform.md)."""
    if MODE_ENV not in os.environ:
        os.environ[MODE_ENV] = "token"
        # Ray reads the mode once per process; refresh it, as Ray's own CLI does on finding a token
        Config.initialize("")


def ensure_token(path: Path) -> bool:
    """Create the cluster token at `path` (readable by its owner only) unless one exists; True
    when it was created."""
    if path.is_file():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32))
    return True


def ray_executable() -> str:
    """The `ray` script of this environment (next to its Python), else the one on PATH."""
    beside = Path(sys.executable).parent / "ray"
    return str(beside) if beside.exists() else "ray"


def node_cards(args: argparse.Namespace) -> list[Card]:
    """The cards this node declares: --card flags (repeated --num-gpus times when one is given),
    else the ones the driver sees."""
    try:
        cards = [parse_card(text) for text in args.card] if args.card else detect_cards()
    except ValueError as err:
        raise UserError([str(err)]) from None
    if args.num_gpus is not None:
        if args.num_gpus < 0:
            raise UserError([f"--num-gpus {args.num_gpus}: must be >= 0"])
        if len(cards) == 1 and args.num_gpus > 1:
            cards = cards * args.num_gpus  # `--card 'RTX 2080 Ti:11' --num-gpus 2`: two alike
        elif cards and args.num_gpus != len(cards):
            raise UserError([f"--num-gpus {args.num_gpus}: {len(cards)} --card flags given; give one per card or one in all"])
    return cards


def start_command(args: argparse.Namespace, head: bool) -> tuple[dict[str, str], list[str]]:
    """The environment additions and the `ray start` command line of this node."""
    cards = node_cards(args)
    num_gpus = args.num_gpus if args.num_gpus is not None else len(cards)
    command = [ray_executable(), "start"]
    if head:
        command += [
            "--head",
            f"--port={args.port}",
            f"--dashboard-host={args.dashboard_host}",
            f"--dashboard-port={args.dashboard_port}",
            # the cluster's Ray settings, which the joining nodes read from the head
            "--system-config=" + json.dumps(defaults.RAY_SYSTEM_CONFIG, separators=(",", ":")),
        ]
    else:
        command += [f"--address={args.head_address}"]
    command += [f"--num-gpus={num_gpus}"]
    if args.num_cpus is not None:
        command += [f"--num-cpus={args.num_cpus}"]
    labels = node_labels(cards)
    if labels:
        command += ["--labels=" + ",".join(f"{key}={value}" for key, value in labels.items())]
    if args.block:
        command += ["--block"]  # stay in the foreground: a container's main process
    env = {MODE_ENV: "token"}
    if args.token_file is not None:
        env[TOKEN_PATH_ENV] = str(args.token_file)
    return env, command


def head(args: argparse.Namespace) -> int:
    return _start_node(args, head=True)


def join(args: argparse.Namespace) -> int:
    return _start_node(args, head=False)


def _start_node(args: argparse.Namespace, head: bool) -> int:
    """Run (or with --dry-run print) this node's `ray start`. The head creates the cluster token
    if there is none; a joining node needs the head's."""
    env, command = start_command(args, head)
    if args.dry_run:
        print(shlex.join([f"{key}={value}" for key, value in env.items()] + command))
        return 0
    path = Path(env.get(TOKEN_PATH_ENV) or token_path())
    if not os.environ.get(TOKEN_ENV):
        if head and ensure_token(path):
            print(
                f"created the cluster token {path}: copy it to each node that joins (same path) and to each machine that runs `sweep run`"
            )
        elif not head and not path.is_file():
            raise UserError([f"token: no cluster token at {path}; copy the head's token file there or pass --token-file"])
    return subprocess.run(command, env={**os.environ, **env}, check=False).returncode


def status(args: argparse.Namespace) -> int:
    use_cluster_token()
    address = args.address or os.environ.get("RAY_ADDRESS") or "auto"
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError) as err:
        raise UserError([f"--address {address}: {str(err).splitlines()[0]}"]) from None
    try:
        print(render_status(cluster_cards(), gpus_in_use()))
    finally:
        ray.shutdown()
    return 0


def gpus_in_use() -> dict[str, list[float]]:
    """Node id -> GPU fractions held by placement groups (trials) there now."""
    held: dict[str, list[float]] = {}
    for group in ray.util.placement_group_table().values():
        if group.get("state") != "CREATED":
            continue
        for index, bundle in group["bundles"].items():
            node = group["bundles_to_node_id"].get(index)
            if node and bundle.get("GPU"):
                held.setdefault(node, []).append(bundle["GPU"])
    return held


def render_status(nodes: list[NodeCards], held: dict[str, list[float]]) -> str:
    rows = [("node", "address", "card", "memory", "GPUs", "in use")]
    for node in sorted(nodes, key=lambda n: (n.address, n.node_id)):
        fractions = held.get(node.node_id, [])
        in_use = f"{sum(fractions):.3g}" + (f" ({' + '.join(f'{f:g}' for f in sorted(fractions))})" if fractions else "")
        memory = f"{node.memory_gb:g} GB" if node.memory_gb else "-"
        card = node.card or (f"{node.ray_card} (Ray)" if node.ray_card else "-")  # placement reads node.card only
        rows.append((node.node_id[:8], node.address, card, memory, f"{node.gpus:g}", in_use))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
