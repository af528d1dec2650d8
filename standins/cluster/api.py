"""A small Kubernetes REST client over HTTPS with a bearer token (standard library only).

The cluster commands, the local stack's set-up and the tests all speak to the API server
through this one class; a kubeconfig written by `start` is all it needs. The components
get kubeconfigs of their own, with client certificates (`component_kubeconfig`).
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import yaml

Obj = dict[str, Any]
"""A Kubernetes object or list as decoded JSON."""

MERGE_PATCH: Final = "application/merge-patch+json"
STRATEGIC_PATCH: Final = "application/strategic-merge-patch+json"
DEFAULT_TIMEOUT: Final = 60.0


class ApiError(Exception):
    """A failed request: HTTP status (0 when the server was not reached) and its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == http.client.NOT_FOUND

    @property
    def conflict(self) -> bool:
        return self.status == http.client.CONFLICT


def now() -> str:
    """A Kubernetes `Time`: RFC 3339 in UTC with second precision."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """A Kubernetes `MicroTime`, as Leases need."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Credentials:
    """What a kubeconfig holds for one cluster: where it is, its CA, and a bearer token."""

    server: str
    ca_pem: bytes
    token: str


def kubeconfig_text(creds: Credentials, name: str = "localcluster") -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": creds.server,
                    "certificate-authority-data": base64.b64encode(creds.ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": f"{name}-admin", "user": {"token": creds.token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def component_kubeconfig(server: str, ca: Path, cert: Path, key: Path) -> str:
    """A kubeconfig that names certificate files: what each component logs in with."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [
            {"name": "local", "user": {"client-certificate": str(cert), "client-key": str(key)}}
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "local"}}],
        "current-context": "local",
    }
    return yaml.safe_dump(config, sort_keys=False)


def read_kubeconfig(path: Path) -> Credentials:
    """The current context's server, CA and token; only what `kubeconfig_text` writes."""
    config = yaml.safe_load(path.read_text())
    current = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == current)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    return Credentials(
        server=str(cluster["server"]),
        ca_pem=base64.b64decode(cluster["certificate-authority-data"]),
        token=str(user["token"]),
    )


class Client:
    """JSON over HTTPS; one connection per request, so threads can share a client."""

    def __init__(self, creds: Credentials, timeout: float = DEFAULT_TIMEOUT) -> None:
        parsed = urllib.parse.urlsplit(creds.server)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 443
        self._token = creds.token
        self._timeout = timeout
        self._context = ssl.create_default_context(cadata=creds.ca_pem.decode())

    @classmethod
    def from_kubeconfig(cls, path: Path, timeout: float = DEFAULT_TIMEOUT) -> Client:
        return cls(read_kubeconfig(path), timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        """The decoded response; ApiError for any failure, including an unreachable server."""
        data = self.request_raw(method, path, body, query=query, content_type=content_type)
        try:
            decoded: Obj = json.loads(data) if data else {}
        except ValueError as exc:
            raise ApiError(0, f"{method} {path}: not JSON: {data[:200]!r}") from exc
        return decoded

    def request_raw(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> bytes:
        target = path + ("?" + urllib.parse.urlencode(query) if query else "")
        conn = http.client.HTTPSConnection(
            self._host, self._port, timeout=self._timeout, context=self._context
        )
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            conn.request(method, target, body=payload, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ApiError(0, f"{method} {path}: {exc}") from exc
        finally:
            conn.close()
        if response.status >= 300:
            raise ApiError(response.status, f"{method} {path}: {_message(data)}")
        return data

    def get(self, path: str, query: Mapping[str, str] | None = None) -> Obj:
        return self.request("GET", path, query=query)

    def get_or_none(self, path: str) -> Obj | None:
        try:
            return self.get(path)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def post(self, path: str, body: Obj) -> Obj:
        return self.request("POST", path, body)

    def put(self, path: str, body: Obj) -> Obj:
        return self.request("PUT", path, body)

    def patch(self, path: str, body: Obj, content_type: str = STRATEGIC_PATCH) -> Obj:
        return self.request("PATCH", path, body, content_type=content_type)

    def delete(self, path: str, body: Obj | None = None) -> Obj:
        return self.request("DELETE", path, body)

    def create_if_missing(self, collection: str, obj: Obj) -> bool:
        """POST `obj` unless an object of its name exists; whether it was created. (Asked
        first: for some kinds the server checks other things, such as a Service's address,
        before the name.)"""
        if self.get_or_none(f"{collection}/{obj['metadata']['name']}") is not None:
            return False
        try:
            self.post(collection, obj)
        except ApiError as exc:
            if exc.conflict:
                return False
            raise
        return True

    def log(self, namespace: str, pod: str, container: str | None = None) -> str:
        """What a container printed, as the kubelet keeps it: GET .../pods/<pod>/log."""
        query = {"container": container} if container else None
        data = self.request_raw(
            "GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log", query=query
        )
        return data.decode("utf-8", errors="replace")

    def healthy(self, check: str = "/readyz") -> bool:
        try:
            self.request_raw("GET", check)
        except ApiError:
            return False
        return True


def _message(data: bytes) -> str:
    """The Status message of an error response, else its text."""
    try:
        status = json.loads(data)
    except ValueError:
        return data.decode(errors="replace").strip()[:500]
    if isinstance(status, dict) and "message" in status:
        return str(status["message"])
    return data.decode(errors="replace").strip()[:500]
