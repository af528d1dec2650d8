"""History drift: Flyway's `info` and `validate` against the live database, read (pure).

Run in the deployed migration Job's pod, so Flyway compares the database's history with the
files the stack deployed, as the next migrate would: pending (deployed, not applied), failed,
missing (applied, no such file deployed) and changed (applied with another checksum, type or
description) migrations are drift.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

PENDING: Final = "pending"
FAILED: Final = "failed"
MISSING: Final = "missing"
CHANGED: Final = "changed"
STATES: Final = {
    "Pending": PENDING,
    "Outdated": PENDING,
    "Above Target": PENDING,
    "Ignored": PENDING,
    "Failed": FAILED,
    "Failed (Missing)": FAILED,
    "Failed (Future)": FAILED,
    "Missing": MISSING,
    "Future": MISSING,
}
"""Flyway's states that are drift, by what they mean here."""
IN_ORDER: Final = frozenset(
    {
        "Success",
        "Baseline",
        "Below Baseline",
        "Ignored (Baseline)",
        "Out of Order",
        "Superseded",
        "Deleted",
        "Undone",
        "Available",
    }
)
"""States of a history that agrees with the deployed files."""
CHANGED_CODES: Final = {
    "CHECKSUM_MISMATCH": "checksum",
    "DESCRIPTION_MISMATCH": "description",
    "TYPE_MISMATCH": "type",
}
WHY: Final = {
    PENDING: "deployed but not applied",
    FAILED: "failed; Flyway refuses to migrate until it is repaired",
    MISSING: "applied, but no such file was deployed",
    CHANGED: "applied with another",
}
_APPLIED = re.compile(r"Applied to database\s*:\s*(\S+)")
_RESOLVED = re.compile(r"Resolved locally\s*:\s*(\S+)")


class HistoryError(ValueError):
    """Flyway could not report (it printed no result, or an error instead)."""


@dataclass(frozen=True)
class Finding:
    kind: str
    migration: str
    detail: str

    def line(self) -> str:
        return f"{self.kind}: {self.migration}: {self.detail}"


@dataclass(frozen=True)
class History:
    applied: int
    findings: tuple[Finding, ...]
    schema_version: str


def results(log: str) -> list[Mapping[str, Any]]:
    """Flyway's JSON result(s) in a pod's log (anything else it printed is skipped)."""
    start = log.find("{")
    if start < 0:
        raise HistoryError(f"Flyway printed no result: {_tail(log)}")
    try:
        document, _ = json.JSONDecoder().raw_decode(log[start:])
    except json.JSONDecodeError as error:
        raise HistoryError(f"Flyway's result is not JSON ({error}): {_tail(log)}") from None
    if not isinstance(document, dict):
        raise HistoryError(f"Flyway's result is not an object: {_tail(log)}")
    found = document.get("individualResults")
    return list(found) if isinstance(found, list) else [document]


def _tail(log: str, lines: int = 15) -> str:
    kept = [line for line in log.splitlines() if line.strip()][-lines:]
    return "\n".join(kept) or "(no output)"


def _label(entry: Mapping[str, Any]) -> str:
    version = entry.get("version") or ""
    description = entry.get("description") or ""
    prefix = f"V{version}" if version else "R"
    return f"{prefix} {description}".strip()


def read(log: str) -> History:
    """What Flyway's `info` and `validate` say of the live history."""
    by_operation = {str(r.get("operation")): r for r in results(log)}
    info, validate = by_operation.get("info"), by_operation.get("validate")
    if info is None or validate is None:
        error = next((r.get("error") for r in by_operation.values() if r.get("error")), None)
        raise HistoryError(f"Flyway did not report info and validate: {error or _tail(log)}")
    if info.get("exception"):
        raise HistoryError(f"flyway info failed: {info['exception']}")
    findings: list[Finding] = []
    applied = 0
    for entry in info.get("migrations") or []:
        state = str(entry.get("state") or "")
        if state in IN_ORDER:
            applied += state != "Deleted"
            continue
        kind = STATES.get(state)
        detail = f"{WHY[kind]} (Flyway: {state})" if kind else f"in the state {state!r}"
        findings.append(Finding(kind or FAILED, _label(entry), detail))
    findings.extend(_changed(validate))
    order = {PENDING: 0, FAILED: 1, MISSING: 2, CHANGED: 3}
    findings.sort(key=lambda f: (order.get(f.kind, 9), f.migration))
    return History(applied, tuple(findings), str(info.get("schemaVersion") or ""))


def _changed(validate: Mapping[str, Any]) -> list[Finding]:
    errors = validate.get("errorDetails") or {}
    invalid = validate.get("invalidMigrations") or []
    if errors and not invalid and not validate.get("validationSuccessful", False):
        message = errors.get("errorMessage") or errors
        raise HistoryError(f"flyway validate failed: {message}")
    found = []
    for entry in invalid:
        details = entry.get("errorDetails") or {}
        what = CHANGED_CODES.get(str(details.get("errorCode")))
        if what is None:
            continue  # info reports it by its state
        message = str(details.get("errorMessage") or "")
        applied, resolved = _APPLIED.search(message), _RESOLVED.search(message)
        detail = f"{WHY[CHANGED]} {what}"
        if applied and resolved:
            detail += f" ({applied.group(1)} in the history, {resolved.group(1)} deployed)"
        found.append(Finding(CHANGED, _label(entry), detail))
    return found


def clears(findings: Sequence[Finding], stack: str) -> list[str]:
    """What clears each kind of finding there is, in the README's commands."""
    kinds = {f.kind for f in findings}
    lines = []
    if PENDING in kinds:
        lines.append(
            f"pending: `make up STACK={stack}` applies them (after a deploy that failed, or a "
            "history row deleted by hand)"
        )
    if FAILED in kinds:
        lines.append(
            f"failed: `make migrations-repair STACK={stack}`, fix the script, then `make up "
            f"STACK={stack}` (README: A migration failed at 2am)"
        )
    if MISSING in kinds:
        lines.append(
            "missing: a migration applied outside this program: add its file to the "
            "migrations (its schema then comes with it), or, if what it did was undone by "
            "hand, delete its history row"
        )
    if CHANGED in kinds:
        lines.append(
            "changed: a history row edited by hand, or a script changed after it was applied: "
            "compare the schema (below), then set the row back, or `make migrations-repair "
            f"STACK={stack}` to record the deployed checksums"
        )
    return lines
