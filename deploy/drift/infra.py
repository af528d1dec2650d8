"""Infrastructure drift: what a refresh would change, read from the engine's events (pure).

`pulumi refresh --preview-only` reads every resource from the cluster and compares it with
the stack's state without writing anything. Each step event carries both sides; this turns
the ones that differ into lines a person reads: the resource, the field, the value the state
recorded and the value live in the cluster. Bookkeeping the API server changes on every
write (resourceVersion, managedFields) is left out; anything the state marks secret, and
every value of a Secret's data, shows as [secret].
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pulumi import automation as auto

SECRET_SIG: Final = "4dabf18193072939515e22adb298388d"  # noqa: S105 (Pulumi's marker)
SECRET_VALUE: Final = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105
MASK: Final = "[secret]"
ABSENT: Final = "(absent)"
IGNORED_TYPES: Final = ("pulumi:pulumi:Stack", "pulumi:providers:")
BOOKKEEPING: Final = frozenset(
    {
        "metadata.managedFields",
        "metadata.resourceVersion",
        "metadata.generation",
        "metadata.creationTimestamp",
        "metadata.selfLink",
    }
)
"""Fields the API server changes on any write, even one that changes nothing else."""
LAST_APPLIED: Final = 'metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]'
SECRET_FIELDS: Final = ("data", "stringData", LAST_APPLIED)
"""A Secret's fields whose values are never shown, whatever the state marks secret."""
VALUE_WIDTH: Final = 120
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Masked:
    """A value the state marks secret: never shown, never compared."""

    def __repr__(self) -> str:
        return MASK


MASKED: Final = _Masked()


@dataclass(frozen=True)
class FieldChange:
    path: str
    recorded: str
    live: str

    def line(self) -> str:
        return f"{self.path}: {self.recorded} -> {self.live}"


@dataclass(frozen=True)
class ResourceDrift:
    """One resource whose live object differs from the state's record of it."""

    type: str
    name: str
    """The resource's name in the program (the URN's last part)."""
    identity: str
    """What a person finds it by in the cluster: `Kind namespace/name`."""
    deleted: bool
    changes: tuple[FieldChange, ...]

    def lines(self) -> list[str]:
        head = f"{self.identity} ({self.type} {self.name})"
        if self.deleted:
            return [f"{head}: deleted from the cluster"]
        return [head, *(f"  {change.line()}" for change in self.changes)]


def _is_secret(value: object) -> bool:
    return isinstance(value, Mapping) and value.get(SECRET_SIG) == SECRET_VALUE


def _segment(key: str) -> str:
    return f".{key}" if _IDENTIFIER.fullmatch(key) else f"[{json.dumps(key)}]"


def flatten(value: object, path: str = "") -> dict[str, object]:
    """Leaf values by path, in the engine's notation (`metadata.labels["a.b/c"]`, `x[0]`);
    a secret stops the descent and stands for its whole subtree."""
    if _is_secret(value) or value == MASK:
        return {path: MASKED}
    if isinstance(value, Mapping) and value:
        found: dict[str, object] = {}
        for key, item in value.items():
            found.update(flatten(item, f"{path}{_segment(str(key))}".lstrip(".")))
        return found
    if isinstance(value, list) and value:
        found = {}
        for index, item in enumerate(value):
            found.update(flatten(item, f"{path}[{index}]"))
        return found
    return {path: value}


def _ignored(path: str) -> bool:
    top = path.split(".", 1)[0].split("[", 1)[0]
    return top.startswith("__") or any(
        path == field or path.startswith((f"{field}.", f"{field}[")) for field in BOOKKEEPING
    )


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((f"{prefix}.", f"{prefix}["))


def show(value: object) -> str:
    """A value as one readable line, long ones shortened."""
    if value is MASKED:
        return MASK
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if len(text) > VALUE_WIDTH:
        return f"{text[: VALUE_WIDTH - 1]}… ({len(text)} characters)"
    return text


def _kind(outputs: Mapping[str, Any] | None) -> str:
    return str((outputs or {}).get("kind") or "")


def field_changes(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    detailed: Mapping[str, auto.PropertyDiff] | None = None,
) -> tuple[FieldChange, ...]:
    """Every field that differs between the recorded and the live outputs, in path order.
    Where one side is secret the engine's own detailed diff says which keys changed."""
    before = {p: v for p, v in flatten(old).items() if not _ignored(p)}
    after = {p: v for p, v in flatten(new).items() if not _ignored(p)}
    secret_kind = _kind(old) == "Secret" or _kind(new) == "Secret"
    changes: dict[str, FieldChange] = {}
    for path in sorted(before.keys() | after.keys()):
        recorded, live = before.get(path, ABSENT), after.get(path, ABSENT)
        if MASKED in (recorded, live):
            for key, diff in (detailed or {}).items():
                if _under(key, path):
                    changes[key] = _masked_change(key, diff)
            continue
        if recorded == live:
            continue
        if secret_kind and any(_under(path, field) for field in SECRET_FIELDS):
            changes[path] = FieldChange(
                path,
                ABSENT if recorded == ABSENT else MASK,
                ABSENT if live == ABSENT else f"{MASK} (changed)" if recorded != ABSENT else MASK,
            )
            continue
        changes[path] = FieldChange(
            path,
            ABSENT if recorded == ABSENT else show(recorded),
            ABSENT if live == ABSENT else show(live),
        )
    return tuple(changes[key] for key in sorted(changes))


def _masked_change(path: str, diff: auto.PropertyDiff) -> FieldChange:
    kind = diff.diff_kind
    if kind in (auto.DiffKind.ADD, auto.DiffKind.ADD_REPLACE):
        return FieldChange(path, ABSENT, MASK)
    if kind in (auto.DiffKind.DELETE, auto.DiffKind.DELETE_REPLACE):
        return FieldChange(path, MASK, ABSENT)
    return FieldChange(path, MASK, f"{MASK} (changed)")


def identity(urn: str, outputs: Mapping[str, Any] | None, type_: str) -> str:
    """`Kind namespace/name` of a Kubernetes object; the resource type for anything else."""
    metadata = (outputs or {}).get("metadata")
    kind = _kind(outputs)
    if isinstance(metadata, Mapping) and kind:
        name = str(metadata.get("name") or "")
        namespace = metadata.get("namespace")
        return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
    return type_ or urn


def collect(events: Iterable[auto.EngineEvent]) -> list[ResourceDrift]:
    """The resources a refresh would change, from a refresh preview's events."""
    found: list[ResourceDrift] = []
    for event in events:
        done = event.res_outputs_event
        if done is None:
            continue
        step = done.metadata
        if step.op in (auto.OpType.SAME, auto.OpType.REFRESH) or step.type.startswith(
            IGNORED_TYPES
        ):
            continue
        old = dict((step.old.outputs if step.old else None) or {})
        new = None if step.new is None else dict(step.new.outputs or {})
        name = step.urn.rsplit("::", 1)[-1]
        who = identity(step.urn, old or new, step.type)
        if new is None or step.op is auto.OpType.DELETE:
            found.append(ResourceDrift(step.type, name, who, deleted=True, changes=()))
            continue
        changes = field_changes(old, new, step.detailed_diff)
        if changes:
            found.append(ResourceDrift(step.type, name, who, deleted=False, changes=changes))
    return sorted(found, key=lambda drift: drift.identity)


CONTENT: Final = ("data", "binaryData", "stringData")
"""What a pod reads of a ConfigMap or Secret: a label changed by hand changes nothing for it."""


def touches(drifts: Iterable[ResourceDrift], objects: Iterable[tuple[str, str]]) -> list[str]:
    """The drifted objects among `objects` ((kind, name) in the stack's namespace) whose
    content a pod reads: deleted, or their data changed."""
    wanted = {f"{kind} {name}" for kind, name in objects}
    hit = []
    for drift in drifts:
        kind, _, where = drift.identity.partition(" ")
        content = drift.deleted or any(
            _under(change.path, field) for change in drift.changes for field in CONTENT
        )
        if content and f"{kind} {where.rsplit('/', 1)[-1]}" in wanted:
            hit.append(drift.identity)
    return hit


def clears(drifts: Sequence[ResourceDrift], stack: str) -> list[str]:
    """What clears each kind of infrastructure drift found, in the README's commands."""
    refresh = f"`make up STACK={stack} REFRESH=1`"
    lines = []
    if any(not drift.deleted for drift in drifts):
        lines.append(
            "changed: set each field back by hand to its recorded value (`kubectl edit`, "
            f"`kubectl label`), or {refresh}: it reads the cluster first, then puts back what "
            "the stack declares, taking back fields another manager took (a label or key the "
            "stack does not declare is recorded as it is)"
        )
    if any(drift.deleted for drift in drifts):
        lines.append(
            f"deleted: {refresh} makes it again (a migration ConfigMap under a new name, which "
            "runs the migration Job again with nothing to apply)"
        )
    return lines
