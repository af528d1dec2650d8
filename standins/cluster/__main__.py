"""python -m standins.cluster start|stop|status|logs|kubeconfig (and `agent`, run by start).

    python -m standins.cluster start                 bring the cluster up (or confirm it is up)
    python -m standins.cluster status                what runs; exit 1 unless all of it
    python -m standins.cluster logs NS POD [CONTAINER]
    python -m standins.cluster logs --job NS JOB     logs of the newest pod of a Job
    python -m standins.cluster kubeconfig            the kubeconfig path: KUBECONFIG=$(...)
    python -m standins.cluster stop [--keep-state]   stop everything and remove the state

The state lives in ${TRADESTREAM_CACHE:-~/.cache/tradestream-database}/local-cluster
unless --state or $LOCALCLUSTER_STATE names another directory.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from standins.cluster import agent, controlplane, podlogs
from standins.cluster.layout import Layout, default_state_dir


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state",
        type=Path,
        default=None,
        help="state directory (default: $LOCALCLUSTER_STATE, else <cache>/local-cluster)",
    )
    parser = argparse.ArgumentParser(
        prog="python -m standins.cluster",
        description="A local Kubernetes control plane whose node runs pods as host processes.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", parents=[common], help="start the cluster (idempotent)")
    start.add_argument(
        "--timeout",
        type=float,
        default=controlplane.DEFAULT_TIMEOUT,
        help="seconds each component may take to become ready (default: %(default)s)",
    )
    stop = sub.add_parser("stop", parents=[common], help="stop the cluster, remove its state")
    stop.add_argument("--keep-state", action="store_true", help="keep the state directory")
    sub.add_parser("status", parents=[common], help="which components run; exit 1 if not all")
    logs = sub.add_parser("logs", parents=[common], help="print kept container logs")
    logs.add_argument("--job", action="store_true", help="NAME is a Job: its newest pod's logs")
    logs.add_argument("namespace")
    logs.add_argument("name", help="the pod (or with --job, the Job)")
    logs.add_argument("container", nargs="?", help="one container (default: all)")
    sub.add_parser("kubeconfig", parents=[common], help="print the kubeconfig path")
    sub.add_parser("agent", parents=[common], help="run the node agent (started by start)")
    return parser


def _logs(layout: Layout, args: argparse.Namespace) -> int:
    try:
        if args.job:
            pod, text = podlogs.job_logs(layout, args.namespace, args.name, args.container)
            print(f"==> pod {args.namespace}/{pod} <==", file=sys.stderr)
        else:
            text = podlogs.pod_logs(layout, args.namespace, args.name, args.container)
    except podlogs.LogsNotFoundError as exc:
        print(f"localcluster: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    layout = Layout((args.state or default_state_dir()).absolute())
    try:
        match args.command:
            case "start":
                controlplane.start(layout, args.timeout)
            case "stop":
                controlplane.stop(layout, keep_state=args.keep_state)
            case "status":
                return 0 if controlplane.status(layout) else 1
            case "logs":
                return _logs(layout, args)
            case "kubeconfig":
                print(layout.kubeconfig)
            case _:
                return agent.main(layout.state)
    except controlplane.ClusterError as exc:
        print(f"localcluster: ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
