"""The README's configuration reference, generated from the declarations
(`python -m components.settings`), so the docs cannot drift from the code.

Pulumi.yaml declares no config on purpose: the CLI would check the types it declares before
the program runs, with a message that names neither the value nor what is allowed, and apply
defaults that hide whether a key was set. The program owns every key, its type, range and
default, and its message is the one people see.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from components.settings.declarations import FLYWAY_VERSION
from components.settings.keys import declared_keys
from components.settings.parsing import describe, show_default

START: Final = "<!-- configuration-reference:start (generated: make config-reference) -->"
END: Final = "<!-- configuration-reference:end -->"


def reference_table() -> str:
    """The README's configuration reference."""
    rows = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for name, k in declared_keys().items():
        if k.spec.structured:
            kind = "secret object" if k.spec.secret else "an object of name: string"
            default = "(none)"
        elif k.spec.secret:
            kind, default = "secret", "(none)"
        elif k.spec.required:
            kind, default = describe(k), "required"
        else:
            kind = describe(k)
            default = f"`{show_default(k)}`" if show_default(k) != '""' else "(empty)"
        rows.append(f"| `{name}` | {kind} | {default} | {k.spec.description} |")
    return "\n".join(rows) + "\n"


def render_readme(current: str) -> str:
    """The README with its reference table regenerated between the markers."""
    pattern = re.compile(re.escape(START.split(" (")[0]) + r".*?" + re.escape(END), re.S)
    if not pattern.search(current):
        raise ValueError(f"the README has no {START!r} ... {END!r} markers")
    return pattern.sub(lambda _: f"{START}\n{reference_table()}{END}", current)


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if args == ["flyway-version"]:
        print(FLYWAY_VERSION)
        return 0
    if args == ["reference"]:
        print(reference_table(), end="")
        return 0
    if len(args) == 2 and args[0] == "write-reference":
        path = Path(args[1])
        path.write_text(render_readme(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    print(
        "usage: python -m components.settings"
        " {flyway-version | reference | write-reference README.md}",
        file=sys.stderr,
    )
    return 2
