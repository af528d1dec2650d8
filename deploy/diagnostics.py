"""What the engine says went wrong, shown once, in the terminal that ran the command.

The Automation API streams the CLI's progress lines but keeps the engine's diagnostics in
events (and a diff-mode preview prints none of them): a refusal of the program's, a
provider's error, a Job that failed. This collects them from the events and prints each
once, in place of the CLI's own "Diagnostics:" block, without a Python traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from pulumi import automation as auto

STACK_TYPE: Final = "pulumi:pulumi:Stack"
_UNHANDLED: Final = re.compile(r"^an unhandled error occurred:\s*", re.S)
_INLINE: Final = re.compile(
    r"^(?:python inline source runtime error|Program failed|Exception calling application):?\s*",
    re.S,
)
"""The wrappers of an inline program's error: raised while the engine awaited an output (a
failed backup's check), it comes once as is and once wrapped by the program's server."""
_PROGRESS_ERROR: Final = re.compile(r"^\s+\S+\s+\S+\s.*\berror: ")
_RETRY: Final = re.compile(r"[;\s]*Retry #(\d+); .*$")
_URN_SUBJECT: Final = re.compile(r'^resource "urn:[^"]*" ')
_SPINNER: Final = re.compile(r"^@ \w+\.*$")
_GENERIC: Final = frozenset({"update failed", "preview failed", "destroy failed", "refresh failed"})
"""The engine's closing words for any failure: the command's own last line says as much."""


@dataclass
class Diagnostics:
    """Collects the error (and warning) diagnostics of one engine operation."""

    errors: list[tuple[str, str]] = field(default_factory=list)
    """(where, message) in the order the engine reported them."""
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, event: auto.EngineEvent) -> None:
        diagnostic = event.diagnostic_event
        if diagnostic is None or diagnostic.severity not in ("error", "warning"):
            return
        where = _resource(diagnostic.urn)
        message = diagnostic.message.strip()
        found = self.errors if diagnostic.severity == "error" else self.warnings
        found.append((where, message))

    def messages(self) -> list[str]:
        """Each error once: the engine's wrapper ("an unhandled error occurred: ...") of a
        message already shown is dropped, and a traceback is cut to its last line."""
        shown: list[str] = []
        for where, message in self.errors:
            text = _without_traceback(_INLINE.sub("", _UNHANDLED.sub("", message))).strip()
            if where:  # the resource is named already: not again as a URN
                text = _URN_SUBJECT.sub("", text)
            line = f"{where}: {text}" if where else text
            if text and text not in _GENERIC and line not in shown:
                shown.append(line)
        return shown


def _resource(urn: str | None) -> str:
    """`type name` of the resource a diagnostic is about; empty for the stack itself."""
    if not urn:
        return ""
    type_, name = urn.split("::")[2].split("$")[-1], urn.rsplit("::", 1)[-1]
    return "" if type_ == STACK_TYPE else f"{type_} {name}"


def _without_traceback(message: str) -> str:
    """A Python traceback in a message becomes its last line (the exception itself)."""
    if "Traceback (most recent call last):" not in message:
        return message
    head, _, tail = message.partition("Traceback (most recent call last):")
    last = [line for line in tail.splitlines() if line.strip()][-1:]
    return "\n".join(part for part in (head.strip(), *last) if part)


class ProgressFilter:
    """Passes the CLI's progress lines on, without its Diagnostics block, its spinner, and
    the text of errors in progress lines: those are printed once, from the events."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._in_diagnostics = False

    def __call__(self, line: str) -> None:
        if line.rstrip() == "Diagnostics:":
            self._in_diagnostics = True
            return
        if self._in_diagnostics:
            if line and not line[0].isspace():
                self._in_diagnostics = False
            else:
                return
        if _PROGRESS_ERROR.match(line) or _SPINNER.match(line):
            return
        # The provider retries while the error may clear; the error itself is printed once.
        self._emit(_RETRY.sub(r" (retry #\1)", line))


def explain(error: auto.errors.CommandError, diagnostics: Diagnostics) -> list[str]:
    """What to print for a failed operation: the engine's errors, or, when it reported none
    (the CLI itself failed: a locked stack, a bad stack file), the CLI's own words."""
    messages = diagnostics.messages()
    if messages:
        return messages
    text = str(error)
    stderr = text.partition(" stderr:")[2].strip()
    lines = [line for line in (stderr or text).splitlines() if line.strip()]
    return ["\n".join(_without_traceback("\n".join(lines)).splitlines()[-10:])] if lines else []
