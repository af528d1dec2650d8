"""The scheduled drift check's credential on a real API server (deploy/cluster/drift-access.yaml,
applied as the platform would apply it): it reads the stack's namespace, Secrets included,
creates and deletes the check's own Jobs, and every other write of it is refused."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.drift import pods
from deploy.engine import ROOT
from deploy.maintenance import PURPOSE_LABEL
from standins.cluster.api import ApiError, Client, Credentials, read_kubeconfig
from tests.engine.test_preview_access import apply

pytestmark = pytest.mark.engine

MANIFEST = ROOT / "deploy" / "cluster" / "drift-access.yaml"
STACK_NAMESPACE = "tradestream-dev"
JOBS = f"/apis/batch/v1/namespaces/{STACK_NAMESPACE}/jobs"


@pytest.fixture(scope="module")
def drift(kube: Client, kubeconfig: Path) -> Client:
    """A client holding the drift ServiceAccount's token, with the manifest applied."""
    apply(kube, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": STACK_NAMESPACE}})
    for document in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")):
        apply(kube, document)
    token = kube.post(
        "/api/v1/namespaces/tradestream-ci/serviceaccounts/tradestream-drift/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )["status"]["token"]
    admin = read_kubeconfig(kubeconfig)
    return Client(Credentials(admin.server, admin.ca_pem, token))


def job(name: str, purpose: str | None) -> dict[str, Any]:
    labels = {PURPOSE_LABEL: purpose} if purpose else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
                }
            },
        },
    }


def _refused(client: Client, method: str, path: str, body: Any = None) -> ApiError:
    with pytest.raises(ApiError) as refused:
        client.request(method, path, body)
    assert refused.value.status in (403, 422), refused.value
    return refused.value


def test_the_drift_credential_runs_its_own_jobs_and_writes_nothing_else(
    drift: Client, kube: Client
) -> None:
    config_maps = f"/api/v1/namespaces/{STACK_NAMESPACE}/configmaps"
    # A new policy is enforced once the API server has loaded it: until then a write may pass.
    # Wait for that event (the refusal), undoing what passed; the deadline only stops a hang.
    deadline = time.monotonic() + 120
    refusal: ApiError | None = None
    while refusal is None:
        try:
            drift.request("POST", JOBS, job("not-the-checks", "repair"))
        except ApiError as error:
            refusal = error
            continue
        kube.delete(f"{JOBS}/not-the-checks")
        assert time.monotonic() < deadline, "the admission policy never took effect"
        time.sleep(0.2)
    assert "the drift credential may only read" in str(refusal)

    for purpose in (pods.HISTORY_PURPOSE, pods.SCHEMA_PURPOSE):
        made = drift.post(JOBS, job(f"check-{purpose}", purpose))
        assert made["metadata"]["labels"][PURPOSE_LABEL] == purpose
        drift.delete(f"{JOBS}/check-{purpose}")

    kube.post(JOBS, job("a-migration", None))
    _refused(drift, "DELETE", f"{JOBS}/a-migration")
    kube.delete(f"{JOBS}/a-migration")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {}}
    kube.post(f"/api/v1/namespaces/{STACK_NAMESPACE}/secrets", secret)
    assert drift.get(f"/api/v1/namespaces/{STACK_NAMESPACE}/secrets/s")["metadata"]["name"] == "s"
    _refused(drift, "DELETE", f"/api/v1/namespaces/{STACK_NAMESPACE}/secrets/s")
    _refused(
        drift,
        "POST",
        config_maps,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
    )
    _refused(drift, "DELETE", f"/api/v1/namespaces/{STACK_NAMESPACE}")
    _refused(drift, "GET", "/api/v1/namespaces/kube-system/secrets")
