"""What is generated from the declarations: Pulumi.yaml's `config:` schema and the README's
configuration reference (`python -m components.settings`)."""

from __future__ import annotations

import enum
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from components.settings.declarations import FLYWAY_VERSION
from components.settings.parsing import declared_keys, describe, show_default


def config_schema() -> dict[str, dict[str, Any]]:
    """`Pulumi.yaml`'s `config:` section, derived from the declarations above."""
    schema: dict[str, dict[str, Any]] = {}
    for name, k in declared_keys().items():
        if k.spec.secret or k.spec.structured:
            # Objects: Pulumi.yaml's project config types are primitives only.
            # The CLI makes a declared key without a default mandatory for every stack, but
            # secrets are needed only with passwordSource=config; the program checks them.
            continue
        kind = {bool: "boolean", int: "integer"}.get(k.type, "string")
        d = k.default
        schema[name] = {
            "type": kind,
            "description": k.spec.description,
            "default": d.value if isinstance(d, enum.Enum) else d,
        }
    return schema


def secret_keys_declared() -> list[str]:
    return [name for name, k in declared_keys().items() if k.spec.secret]


SCHEMA_MARKER: Final = "# ---- generated from components/settings/keys.py: do not edit below ----"


def render_project_file(current: str) -> str:
    """`Pulumi.yaml` with its `config:` section regenerated; the hand-written head is kept."""
    import yaml  # noqa: PLC0415 (only the generator needs it)

    head = current.split(SCHEMA_MARKER, 1)[0].rstrip("\n")
    body = yaml.safe_dump({"config": config_schema()}, sort_keys=False, width=100)
    return f"{head}\n{SCHEMA_MARKER}\n{body}"


def reference_table() -> str:
    """The README's configuration reference, so the docs cannot drift from the code."""
    rows = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for name, k in declared_keys().items():
        if k.spec.structured:
            kind = "secret object" if k.spec.secret else "an object of name: string"
            default = "(none)"
        elif k.spec.secret:
            kind, default = "secret", "(none)"
        else:
            kind = describe(k)
            default = f"`{show_default(k)}`" if show_default(k) != '""' else "(empty)"
        rows.append(f"| `{name}` | {kind} | {default} | {k.spec.description} |")
    return "\n".join(rows) + "\n"


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if args == ["flyway-version"]:
        print(FLYWAY_VERSION)
        return 0
    if args == ["reference"]:
        print(reference_table(), end="")
        return 0
    if len(args) == 2 and args[0] == "write-project-file":
        path = Path(args[1])
        path.write_text(render_project_file(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    print(
        "usage: python -m components.settings"
        " {flyway-version | reference | write-project-file Pulumi.yaml}",
        file=sys.stderr,
    )
    return 2
