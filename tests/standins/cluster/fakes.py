"""An in-memory ObjectSource, so volume and env resolution are tested without a cluster."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


def pod(name: str = "p", namespace: str = "ns", **spec: Any) -> Obj:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": "uid-1", "labels": {"a": "b"}},
        "spec": {"containers": [], **spec},
    }


def config_map(name: str, data: dict[str, str], binary: dict[str, bytes] | None = None) -> Obj:
    obj: Obj = {"metadata": {"name": name}, "data": data}
    if binary:
        obj["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
    return obj


def secret(name: str, data: dict[str, str]) -> Obj:
    return {
        "metadata": {"name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


@dataclass
class FakeObjects:
    config_maps: dict[str, Obj] = field(default_factory=dict)
    secrets: dict[str, Obj] = field(default_factory=dict)
    tokens: list[tuple[str | None, int]] = field(default_factory=list)
    claims: dict[str, Obj] = field(default_factory=dict)
    volumes: dict[str, Obj] = field(default_factory=dict)

    def config_map(self, namespace: str, name: str) -> Obj | None:
        return self.config_maps.get(f"{namespace}/{name}")

    def secret(self, namespace: str, name: str) -> Obj | None:
        return self.secrets.get(f"{namespace}/{name}")

    def persistent_volume_claim(self, namespace: str, name: str) -> Obj | None:
        return self.claims.get(f"{namespace}/{name}")

    def persistent_volume(self, name: str) -> Obj | None:
        return self.volumes.get(name)

    def service_account_token(self, pod: Obj, audience: str | None, expiration: int) -> str:
        self.tokens.append((audience, expiration))
        return f"token-for-{pod['metadata']['name']}"
