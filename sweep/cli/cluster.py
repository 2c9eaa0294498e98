"""`sweep cluster head|join|status`: the flags; what each does is in sweep/cluster/nodes.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cluster import nodes


def _node_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--card",
        action="append",
        default=[],
        metavar="MODEL:GB",
        help="declare a card, e.g. 'RTX 2080 Ti:11' (repeatable; default: the cards torch.cuda or nvidia-ml-py finds)",
    )
    parser.add_argument("--num-gpus", type=int, help="GPUs Ray schedules here (default: one per card)")
    parser.add_argument("--num-cpus", type=int, help="CPU cores Ray schedules here (default: Ray's count)")
    parser.add_argument(
        "--token-file", type=Path, help="the cluster token (default: $RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token)"
    )
    parser.add_argument("--block", action="store_true", help="stay in the foreground (for containers)")
    parser.add_argument("--dry-run", action="store_true", help="print the ray start command instead of running it")


def add_arguments(cluster: argparse.ArgumentParser) -> None:
    """The actions of `sweep cluster`, each with its own handler."""
    actions = cluster.add_subparsers(dest="action", required=True)

    head_parser = actions.add_parser("head", help="start the head node (Ray, token auth, cards as labels)")
    head_parser.add_argument("--port", type=int, default=nodes.DEFAULT_PORT, help=f"Ray's port (default: {nodes.DEFAULT_PORT})")
    head_parser.add_argument(
        "--dashboard-host",
        default=nodes.DASHBOARD_HOST,
        help=f"address the dashboard listens on (default: {nodes.DASHBOARD_HOST})",
    )
    head_parser.add_argument(
        "--dashboard-port", type=int, default=nodes.DASHBOARD_PORT, help=f"dashboard port (default: {nodes.DASHBOARD_PORT})"
    )
    _node_arguments(head_parser)
    head_parser.set_defaults(handler=nodes.head)

    join_parser = actions.add_parser("join", help="start a worker node that joins the head")
    join_parser.add_argument("head_address", metavar="HEAD_ADDRESS", help="the head's host:port, e.g. 192.168.1.10:6379")
    _node_arguments(join_parser)
    join_parser.set_defaults(handler=nodes.join)

    status_parser = actions.add_parser("status", help="nodes, their cards and the GPU fractions in use")
    status_parser.add_argument("--address", help="the head's host:port (default: $RAY_ADDRESS, else this machine's cluster)")
    status_parser.set_defaults(handler=nodes.status)
