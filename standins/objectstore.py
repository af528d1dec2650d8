"""The local node's S3-compatible object store: where the CloudNativePG local stack's Barman
Cloud plugin archives WAL and base backups, as a bucket in a cloud account would hold them.

moto's S3 server (from PyPI), started by the cluster in the node's network as one of its
components, so pods reach it at `ENDPOINT` and `make down` stops it with the rest. It keeps
what it holds in memory: a cluster restarted from its state starts with an empty store (the
plugin then starts a new archive; backups taken before are gone, as they would be with a lost
bucket). It accepts any access key.

    python -m standins.objectstore --port 9000 --state STATE_DIR
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Final

from standins.cluster.layout import NODE_IP

PORT: Final = 9000
ENDPOINT: Final = f"http://{NODE_IP}:{PORT}"
"""Where pods reach it: the node's address on the pod network."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m standins.objectstore", description=__doc__)
    parser.add_argument("--port", type=int, default=PORT)
    # Unused but named: the node's processes are those whose command line names its state.
    parser.add_argument("--state", help="the state directory of the cluster it serves")
    args = parser.parse_args(argv)
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 (a test-only dependency)

    server = ThreadedMotoServer(ip_address="0.0.0.0", port=args.port)  # noqa: S104 (node only)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    print(f"objectstore: S3 at {ENDPOINT} (moto)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
