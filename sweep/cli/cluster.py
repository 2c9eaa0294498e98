"""`sweep cluster head|join|status`: the flags; what each does is in sweep/cluster/nodes.py,
named here as "module:function" and imported when the action runs (it imports Ray)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import defaults

EXAMPLES = {
    "head": "sweep cluster head --port 6380          # Ray's default port 6379 is often Redis's",
    "join": "sweep cluster join 192.168.1.10:6380 --card 'RTX 2080 Ti:11'",
    "status": "sweep cluster status --address 192.168.1.10:6380",
}


def _action(actions, name: str, help_text: str) -> argparse.ArgumentParser:
    parser = actions.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"example:\n  {EXAMPLES[name]}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=f"..cluster.nodes:{name}")
    return parser


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

    head_parser = _action(actions, "head", "start the head node (Ray, token auth, cards as labels)")
    head_parser.add_argument("--port", type=int, default=defaults.RAY_PORT, help=f"Ray's port (default: {defaults.RAY_PORT})")
    head_parser.add_argument(
        "--dashboard-host",
        default=defaults.DASHBOARD_HOST,
        help=f"address the dashboard listens on (default: {defaults.DASHBOARD_HOST})",
    )
    head_parser.add_argument(
        "--dashboard-port", type=int, default=defaults.DASHBOARD_PORT, help=f"dashboard port (default: {defaults.DASHBOARD_PORT})"
    )
    _node_arguments(head_parser)

    join_parser = _action(actions, "join", "start a worker node that joins the head")
    join_parser.add_argument("head_address", metavar="HEAD_ADDRESS", help="the head's host:port, e.g. 192.168.1.10:6379")
    _node_arguments(join_parser)

    status_parser = _action(actions, "status", "nodes, their cards and the GPU fractions in use")
    status_parser.add_argument("--address", help="the head's host:port (default: $RAY_ADDRESS, else this machine's cluster)")
