"""A container's environment and its `$(VAR)` expansion, as a kubelet computes them (pure).

envFrom comes first, then `env` in order; a literal `value` may reference any variable
defined before it, and command and args may reference the final environment. `$$` is a
literal `$`, and a reference to an undefined variable stays as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from standins.cluster.api import Obj
from standins.cluster.refs import (
    MissingObjectError,
    ObjectSource,
    PodSetupError,
    field_value,
    referenced_data,
)

_ENV_NAME: Final = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' expansion (k8s.io/kubernetes/third_party/forked/golang/expansion)."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            nxt = text[cursor + 1]
            advance = 1
            if nxt == "$":
                out.append("$")
            elif nxt == "(":
                close = text.find(")", cursor + 2)
                if close == -1:
                    out.append("$(")
                else:
                    name = text[cursor + 2 : close]
                    value = lookup(name)
                    out.append(f"$({name})" if value is None else value)
                    advance = close - cursor
            else:
                out.append("$" + nxt)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def expand_all(items: Sequence[str], env: Mapping[str, str]) -> list[str]:
    return [expand(item, env.get) for item in items]


def _decode(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def _env_from(pod: Obj, source: Obj, objects: ObjectSource, env: dict[str, str]) -> None:
    namespace = pod["metadata"]["namespace"]
    prefix = str(source.get("prefix") or "")
    for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
        ref = source.get(key)
        if ref is None:
            continue
        data = referenced_data(objects, kind, namespace, ref["name"], bool(ref.get("optional")))
        for name, value in (data or {}).items():
            if _ENV_NAME.match(prefix + name):  # a kubelet skips invalid names the same way
                env[prefix + name] = _decode(value)


def _value_from(pod: Obj, var: Obj, objects: ObjectSource) -> str | None:
    source: dict[str, Any] = var["valueFrom"]
    namespace = pod["metadata"]["namespace"]
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"]["fieldPath"])
    for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
        ref = source.get(key)
        if ref is None:
            continue
        optional = bool(ref.get("optional"))
        data = referenced_data(objects, kind, namespace, ref["name"], optional)
        if data is None:
            return None
        if ref["key"] not in data:
            if optional:
                return None
            raise MissingObjectError(
                f'env {var["name"]}: key "{ref["key"]}" not found in {kind} "{ref["name"]}"'
            )
        return _decode(data[ref["key"]])
    raise PodSetupError(
        f"env {var['name']}: valueFrom {sorted(source)} is not supported by the local node "
        "(supported: fieldRef, configMapKeyRef, secretKeyRef)"
    )


def container_env(pod: Obj, container: Obj, objects: ObjectSource) -> dict[str, str]:
    """The variables the pod spec gives the container (without the image's own)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        _env_from(pod, source, objects, env)
    for var in container.get("env") or []:
        if "valueFrom" in var:
            value = _value_from(pod, var, objects)
            if value is not None:
                env[var["name"]] = value
        else:
            env[var["name"]] = expand(str(var.get("value") or ""), env.get)
    return env
