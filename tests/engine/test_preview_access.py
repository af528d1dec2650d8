"""The pull-request preview's credential on a real API server: it may dry-run what the
program deploys, and every real write of it is refused (deploy/cluster/preview-access.yaml,
applied as the platform would apply it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.engine import ROOT
from standins.cluster.api import ApiError, Client, Credentials, read_kubeconfig

pytestmark = pytest.mark.engine

MANIFEST = ROOT / "deploy" / "cluster" / "preview-access.yaml"
PATHS = {
    "Namespace": "/api/v1/namespaces",
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "ValidatingAdmissionPolicy": (
        "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"
    ),
    "ValidatingAdmissionPolicyBinding": (
        "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"
    ),
}
STACK_NAMESPACE = "tradestream-dev"


def apply(kube: Client, document: dict[str, Any]) -> None:
    path = PATHS[document["kind"]].format(ns=document["metadata"].get("namespace", ""))
    try:
        kube.post(path, document)
    except ApiError as error:
        if error.status != 409:
            raise


@pytest.fixture(scope="module")
def preview(kube: Client, kubeconfig: Path) -> Client:
    """A client holding the preview ServiceAccount's token, with the manifest applied."""
    apply(kube, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": STACK_NAMESPACE}})
    for document in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")):
        apply(kube, document)
    token = kube.post(
        "/api/v1/namespaces/tradestream-ci/serviceaccounts/tradestream-preview/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )["status"]["token"]
    admin = read_kubeconfig(kubeconfig)
    return Client(Credentials(admin.server, admin.ca_pem, token))


def config_map(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}}


def test_the_preview_credential_may_dry_run_but_never_write(preview: Client, kube: Client) -> None:
    path = f"/api/v1/namespaces/{STACK_NAMESPACE}/configmaps"
    # A new policy is enforced once the API server has loaded it: until then a write may pass.
    # Wait for that event (the refusal), undoing what passed; the deadline only stops a hang.
    deadline = time.monotonic() + 120
    refusal: ApiError | None = None
    while refusal is None:
        try:
            preview.request("POST", path, config_map("real-write"))
        except ApiError as error:
            refusal = error
            continue
        kube.delete(f"{path}/real-write")
        assert time.monotonic() < deadline, "the admission policy never took effect"
        time.sleep(0.2)
    assert refusal.status in (403, 422), refusal
    assert "the preview credential may only dry-run" in str(refusal)
    dry = preview.request("POST", path, config_map("dry-run"), query={"dryRun": "All"})
    assert dry["metadata"]["name"] == "dry-run"
    assert "dry-run" not in {item["metadata"]["name"] for item in kube.get(path).get("items", [])}
    with pytest.raises(ApiError):
        preview.request("DELETE", f"/api/v1/namespaces/{STACK_NAMESPACE}")
    assert preview.get(path) is not None  # reading is allowed
