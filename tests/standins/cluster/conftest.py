"""The local cluster, started once for the tests that need it and stopped at the end.

A missing control-plane binary fails those tests with the command that installs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from standins.cluster.api import Client
from standins.cluster.layout import Layout
from tests.standins.cluster.cluster import Cluster, cli

NAMESPACE = "localcluster-test"


@pytest.fixture(scope="session")
def cluster_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A started cluster's state directory; `stop` must succeed and remove it afterwards."""
    state = tmp_path_factory.mktemp("localcluster") / "state"
    started = cli(state, "start")
    if started.returncode != 0:
        cli(state, "stop")
        pytest.fail(f"`python -m standins.cluster start` failed:\n{started.stdout}{started.stderr}")
    yield state
    stopped = cli(state, "stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not state.exists(), "stop left the state directory behind"


@pytest.fixture(scope="session")
def cluster(cluster_state: Path) -> Cluster:
    layout = Layout(cluster_state)
    api = Client.from_kubeconfig(layout.kubeconfig)
    api.post("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    c = Cluster(layout, api, NAMESPACE)
    c.wait(
        "the namespace's default ServiceAccount",
        lambda: api.get_or_none(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default"),
    )
    return c
