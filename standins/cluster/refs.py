"""What a pod's env and volumes reference: ConfigMaps, Secrets, its own fields, tokens.

Volume and env resolution read objects through `ObjectSource`, so they stay pure and can be
tested without a cluster; `ApiObjects` is the real source.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Final, Protocol

from standins.cluster.api import ApiError, Client, Obj

_LABEL_FIELD: Final = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


class PodSetupError(Exception):
    """The pod cannot start; the message goes to the pod's status as it is."""


class MissingObjectError(PodSetupError):
    """A referenced object or key does not exist (yet): worth retrying for a while."""


class ObjectSource(Protocol):
    def config_map(self, namespace: str, name: str) -> Obj | None: ...

    def secret(self, namespace: str, name: str) -> Obj | None: ...

    def persistent_volume_claim(self, namespace: str, name: str) -> Obj | None: ...

    def persistent_volume(self, name: str) -> Obj | None: ...

    def service_account_token(self, pod: Obj, audience: str | None, expiration: int) -> str: ...


def config_map_data(config_map: Obj) -> dict[str, bytes]:
    data: dict[str, bytes] = {k: str(v).encode() for k, v in (config_map.get("data") or {}).items()}
    for key, value in (config_map.get("binaryData") or {}).items():
        data[key] = base64.b64decode(value)
    return data


def secret_data(secret: Obj) -> dict[str, bytes]:
    data: dict[str, bytes] = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    for key, value in (secret.get("stringData") or {}).items():
        data[key] = str(value).encode()
    return data


def referenced_data(
    objects: ObjectSource, kind: str, namespace: str, name: str, optional: bool
) -> dict[str, bytes] | None:
    """A ConfigMap's or Secret's data; None when it is missing and optional."""
    found = (
        objects.config_map(namespace, name)
        if kind == "ConfigMap"
        else objects.secret(namespace, name)
    )
    if found is None:
        if optional:
            return None
        raise MissingObjectError(f'{kind} "{name}" not found in namespace "{namespace}"')
    return config_map_data(found) if kind == "ConfigMap" else secret_data(found)


def field_value(pod: Obj, field_path: str) -> str:
    """The downward API: the pod fields a kubelet exposes through fieldRef."""
    meta: dict[str, Any] = pod.get("metadata", {})
    spec: dict[str, Any] = pod.get("spec", {})
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": "127.0.0.1",
        "status.podIP": "127.0.0.1",
    }
    if field_path in simple:
        return str(simple[field_path] or "")
    if field_path in ("metadata.labels", "metadata.annotations"):
        values: dict[str, str] = meta.get(field_path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    match = _LABEL_FIELD.match(field_path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise PodSetupError(f"fieldRef {field_path!r} is not supported by the local node")


class ApiObjects:
    """ObjectSource over the API server."""

    def __init__(self, api: Client) -> None:
        self._api = api

    def config_map(self, namespace: str, name: str) -> Obj | None:
        return self._api.get_or_none(f"/api/v1/namespaces/{namespace}/configmaps/{name}")

    def secret(self, namespace: str, name: str) -> Obj | None:
        return self._api.get_or_none(f"/api/v1/namespaces/{namespace}/secrets/{name}")

    def persistent_volume_claim(self, namespace: str, name: str) -> Obj | None:
        return self._api.get_or_none(
            f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}"
        )

    def persistent_volume(self, name: str) -> Obj | None:
        return self._api.get_or_none(f"/api/v1/persistentvolumes/{name}")

    def service_account_token(self, pod: Obj, audience: str | None, expiration: int) -> str:
        meta = pod["metadata"]
        account = pod["spec"].get("serviceAccountName") or "default"
        spec: Obj = {
            "expirationSeconds": expiration,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "uid": meta["uid"],
            },
        }
        if audience:
            spec["audiences"] = [audience]
        path = f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token"
        try:
            review = self._api.post(
                path,
                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
            )
        except ApiError as exc:
            if exc.not_found:
                raise MissingObjectError(f'ServiceAccount "{account}" not found') from exc
            raise
        return str(review["status"]["token"])
