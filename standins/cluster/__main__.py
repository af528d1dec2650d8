"""python -m standins.cluster start|stop|status|kubeconfig|logs (as root).

    python -m standins.cluster start                 bring the cluster up (or confirm it is up;
                                                     restart it when it was partly killed)
    python -m standins.cluster status                what runs; exit 1 unless all of it
    python -m standins.cluster logs NS POD [CONTAINER]
    python -m standins.cluster logs --job NS JOB     the newest pod of a Job, every container
    python -m standins.cluster kubeconfig            the kubeconfig path: KUBECONFIG=$(...)
    python -m standins.cluster stop [--keep-state]   stop everything and remove the state

The state lives in ${TRADESTREAM_CACHE:-~/.cache/tradestream-database}/local-cluster
unless --state or $LOCALCLUSTER_STATE names another directory. `holder`, `forward` and
`provisioner` are the cluster's own processes, started by `start`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from standins.cluster import config, forward, isolation, lifecycle, provisioner
from standins.cluster.api import ApiError, Client, Credentials
from standins.cluster.layout import Layout, default_state_dir
from standins.cluster.podlogs import job_logs, pod_logs


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
        description="A local Kubernetes cluster: a control plane and a real node.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", parents=[common], help="start the cluster (idempotent)")
    start.add_argument(
        "--timeout",
        type=float,
        default=lifecycle.DEFAULT_TIMEOUT,
        help="seconds each part may take to become ready (default: %(default)s)",
    )
    stop = sub.add_parser("stop", parents=[common], help="stop the cluster, remove its state")
    stop.add_argument("--keep-state", action="store_true", help="keep the state directory")
    sub.add_parser("status", parents=[common], help="which components run; exit 1 if not all")
    logs = sub.add_parser("logs", parents=[common], help="what a pod's containers printed")
    logs.add_argument("--job", action="store_true", help="NAME is a Job: its newest pod's logs")
    logs.add_argument("namespace")
    logs.add_argument("name", help="the pod (or with --job, the Job)")
    logs.add_argument("container", nargs="?", help="one container (default: all)")
    sub.add_parser("kubeconfig", parents=[common], help="print the kubeconfig path")
    sub.add_parser("holder", parents=[common], help=argparse.SUPPRESS)
    relay = sub.add_parser("forward", parents=[common], help=argparse.SUPPRESS)
    relay.add_argument("--fd", type=int, required=True)
    relay.add_argument("--to", required=True)
    sub.add_parser("provisioner", parents=[common], help=argparse.SUPPRESS)
    return parser


def _logs(layout: Layout, args: argparse.Namespace) -> int:
    api = Client.from_kubeconfig(layout.kubeconfig)
    try:
        if args.job:
            pod, text = job_logs(api, args.namespace, args.name, args.container)
            print(f"==> pod {args.namespace}/{pod} <==", file=sys.stderr)
        else:
            text = pod_logs(api, args.namespace, args.name, args.container)
    except (ApiError, LookupError) as error:
        print(f"localcluster: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


def _internal_client(layout: Layout) -> Client:
    """The admin's client from inside the node's network (the provisioner's)."""
    keys = config.pki(layout)
    creds = Credentials(config.INTERNAL_API, keys.ca_cert.read_bytes(), keys.admin_token())
    return Client(creds, timeout=30)


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911 (one return per command)
    args = _parser().parse_args(argv)
    layout = Layout((args.state or default_state_dir()).absolute())
    try:
        match args.command:
            case "start":
                lifecycle.start(layout, args.timeout)
            case "stop":
                lifecycle.stop(layout, keep_state=args.keep_state)
            case "status":
                return 0 if lifecycle.status(layout) else 1
            case "logs":
                return _logs(layout, args)
            case "kubeconfig":
                print(layout.kubeconfig)
            case "holder":
                return isolation.hold(layout)
            case "forward":
                return forward.serve(args.fd, args.to)
            case _:
                return provisioner.serve(layout, _internal_client(layout))
    except (lifecycle.ClusterError, isolation.IsolationError) as error:
        print(f"localcluster: ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
