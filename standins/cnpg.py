"""CloudNativePG on the local node: the operator and its Barman Cloud plugin, installed as a
platform team installs them before a stack that sets `cnpgInstallOperator: false` (as prod
does) deploys its Cluster.

The manifests are the ones the modules ship (`releases/cnpg-<version>.yaml`, the plugin's
`manifest.yaml`), kept beside the binaries by `scripts/install-engine.sh operator`, applied
server-side as `kubectl apply --server-side` would, with what this machine needs changed:

- the images are the local builds (standins/images/operator.py), never pulled;
- the plugin's mutual TLS comes from two Secrets made here with openssl, as its cert-manager
  Certificates would make them (a self-signed leaf each), since cert-manager is not installed;
- the operator's CPU limit is raised from 100m to 1: on a loaded two-core machine a throttled
  admission webhook times out, which a production node with spare cores does not see.
"""

from __future__ import annotations

import base64
import copy
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import yaml

from standins.cluster.api import Client, Obj
from standins.images import operator as images
from standins.images.catalog import installed

NAMESPACE: Final = "cnpg-system"
FIELD_MANAGER: Final = "tradestream-local-setup"
READY_TIMEOUT: Final = 600.0
PLUGIN_SERVICE: Final = "barman-cloud"
PLUGIN_SECRETS: Final = {"server": "barman-cloud-server-tls", "client": "barman-cloud-client-tls"}
CLUSTER_SCOPED: Final = frozenset(
    {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
)


def _say(message: str) -> None:
    print(f"cloudnative-pg: {message}", flush=True)


def object_path(obj: Obj) -> str:
    """The API path of one manifest object (every kind the two manifests hold)."""
    group, _, version = obj["apiVersion"].rpartition("/")
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    plural = obj["kind"].lower() + "s"
    name = obj["metadata"]["name"]
    if obj["kind"] in CLUSTER_SCOPED:
        return f"{prefix}/{plural}/{name}"
    return f"{prefix}/namespaces/{obj['metadata']['namespace']}/{plural}/{name}"


def _documents(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _containers(obj: Obj) -> list[dict[str, Any]]:
    if obj["kind"] != "Deployment":
        return []
    containers: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return containers


def operator_manifest(source: Path) -> list[Obj]:
    """The operator's release manifest, on the local image."""
    docs = _documents(source)
    for doc in docs:
        for container in _containers(doc):
            container["image"] = images.OPERATOR_IMAGE
            container["imagePullPolicy"] = "IfNotPresent"
            container["resources"]["limits"]["cpu"] = "1"
            for variable in container.get("env", []):
                if variable["name"] == "OPERATOR_IMAGE_NAME":
                    variable["value"] = images.OPERATOR_IMAGE
    return docs


def plugin_manifest(source: Path) -> list[Obj]:
    """The plugin's manifest without cert-manager's objects, on the local images."""
    docs = [
        doc for doc in _documents(source) if not doc["apiVersion"].startswith("cert-manager.io/")
    ]
    sidecar = base64.b64encode(images.SIDECAR_IMAGE.encode()).decode()
    for doc in docs:
        if doc["kind"] == "Secret" and "SIDECAR_IMAGE" in doc.get("data", {}):
            doc["data"]["SIDECAR_IMAGE"] = sidecar
        for container in _containers(doc):
            container["image"] = images.PLUGIN_IMAGE
            container["imagePullPolicy"] = "IfNotPresent"
    return docs


def plugin_certificates() -> list[Obj]:
    """The plugin's server and client TLS Secrets: what its cert-manager Certificates hold
    (self-signed leaves; the operator trusts the server's, the plugin the client's)."""
    service = PLUGIN_SERVICE
    names = f"DNS:{service},DNS:{service}.{NAMESPACE},DNS:{service}.{NAMESPACE}.svc"
    wanted = {
        "server": (service, "serverAuth", names),
        "client": (f"{service}-client", "clientAuth", ""),
    }
    secrets = []
    with tempfile.TemporaryDirectory() as tmp:
        for role, (common_name, usage, alt_names) in wanted.items():
            key, cert = Path(tmp, f"{role}.key"), Path(tmp, f"{role}.crt")
            extensions = [
                "basicConstraints=critical,CA:FALSE",
                "keyUsage=critical,digitalSignature,keyEncipherment",
                f"extendedKeyUsage={usage}",
            ]
            if alt_names:
                extensions.append(f"subjectAltName={alt_names}")
            command = [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
                "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={common_name}",
            ]  # fmt: skip
            for extension in extensions:
                command += ["-addext", extension]
            subprocess.run(command, check=True, capture_output=True)
            pem = cert.read_bytes()
            data = {"tls.crt": pem, "tls.key": key.read_bytes(), "ca.crt": pem}
            secrets.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "kubernetes.io/tls",
                    "metadata": {"name": PLUGIN_SECRETS[role], "namespace": NAMESPACE},
                    "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
                }
            )
    return secrets


def apply(api: Client, obj: Obj) -> None:
    """Server-side apply, forced: the set-up owns these objects."""
    api.request(
        "PATCH",
        object_path(obj),
        copy.deepcopy(obj),
        query={"fieldManager": FIELD_MANAGER, "force": "true"},
        content_type="application/apply-patch+yaml",
    )


def _wait(what: str, ready: Callable[[], bool], timeout: float = READY_TIMEOUT) -> None:
    started = time.monotonic()
    pause = threading.Event()
    while not ready():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")
        pause.wait(1.0)
    _say(f"{what} ({time.monotonic() - started:.1f} s)")


def _available(api: Client, name: str) -> Callable[[], bool]:
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}"

    def check() -> bool:
        deployment = api.get_or_none(path) or {}
        status = deployment.get("status", {})
        generation = deployment.get("metadata", {}).get("generation")
        return status.get("observedGeneration") == generation and any(
            c.get("type") == "Available" and c.get("status") == "True"
            for c in status.get("conditions", [])
        )

    return check


def _webhooks_trusted(api: Client) -> bool:
    """The operator has put its CA into both webhook configurations."""
    for kind in ("mutating", "validating"):
        path = (
            f"/apis/admissionregistration.k8s.io/v1/{kind}webhookconfigurations/"
            f"cnpg-{kind}-webhook-configuration"
        )
        hooks = (api.get_or_none(path) or {}).get("webhooks", [])
        if not hooks or not all(h["clientConfig"].get("caBundle") for h in hooks):
            return False
    return True


def install(api: Client) -> None:
    """Install (or bring up to date) the operator and the plugin; return once both serve."""
    started = time.monotonic()
    for obj in operator_manifest(installed("cnpg") / f"cnpg-{images.CNPG_VERSION}.yaml"):
        apply(api, obj)
    _wait("operator available", _available(api, "cnpg-controller-manager"))
    _wait("operator's webhooks trusted", lambda: _webhooks_trusted(api))
    for secret in plugin_certificates():
        api.create_if_missing(f"/api/v1/namespaces/{NAMESPACE}/secrets", secret)
    for obj in plugin_manifest(installed("barman-plugin") / "manifest.yaml"):
        apply(api, obj)
    _wait("Barman Cloud plugin available", _available(api, PLUGIN_SERVICE))
    _say(
        f"operator {images.CNPG_VERSION} and Barman Cloud plugin "
        f"{images.BARMAN_PLUGIN_VERSION} ready in {time.monotonic() - started:.1f} s"
    )
