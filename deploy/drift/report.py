"""What each part of the drift check found, and the report a person reads (pure).

Three parts: the infrastructure (what a refresh would change), Flyway's history and the live
schema. The exit code says the worst: 2 when a part could not be checked, 1 for drift
(a part left unchecked because of drift found in another counts as drift), 0 for none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Final


class Outcome(Enum):
    CLEAN = "no drift"
    DRIFT = "drift"
    SKIPPED = "not checked"
    """Not checked because of drift found in another part (what it needs was changed)."""
    FAILED = "check failed"


EXIT_CODES: Final = {Outcome.CLEAN: 0, Outcome.DRIFT: 1, Outcome.SKIPPED: 1, Outcome.FAILED: 2}


@dataclass(frozen=True)
class Section:
    """One part of the check: what it compared, what it found, and what clears it."""

    name: str
    compared: str
    outcome: Outcome
    findings: Sequence[str] = ()
    clears: Sequence[str] = ()
    hints: Sequence[str] = field(default=())
    """Statements that would bring one side to the other: printed, never run."""
    notes: Sequence[str] = ()

    def lines(self) -> list[str]:
        lines = [f"--- {self.name}: {self.compared} ---"]
        lines += [f"  {finding}" for finding in self.findings]
        if self.hints:
            lines.append("  hint, statements that would undo it (review first; nothing was run):")
            lines += [f"    {hint}" for hint in self.hints]
        if len(self.clears) == 1:
            lines.append(f"  clears it: {self.clears[0]}")
        elif self.clears:
            lines.append("  clears it:")
            lines += [f"    - {clear}" for clear in self.clears]
        lines += [f"  note: {note}" for note in self.notes]
        lines.append(f"  {self.name}: {self.outcome.value}")
        return lines


def exit_code(sections: Sequence[Section]) -> int:
    return max((EXIT_CODES[s.outcome] for s in sections), default=0) if sections else 2


def verdict(stack: str, sections: Sequence[Section]) -> str:
    """The last line: what was found, and where."""
    code = exit_code(sections)
    failed = [s.name for s in sections if s.outcome is Outcome.FAILED]
    drifted = [s.name for s in sections if s.outcome in (Outcome.DRIFT, Outcome.SKIPPED)]
    if code == 0:
        return f"drift: none in {stack} (infrastructure, history and schema as deployed)"
    parts = []
    if drifted:
        parts.append(f"drift in {', '.join(drifted)}")
    if failed:
        parts.append(f"could not check {', '.join(failed)}")
    return f"drift: {stack}: {'; '.join(parts)} (exit {code})"


def render(stack: str, sections: Sequence[Section]) -> str:
    lines = [f"=== drift check of {stack} ==="]
    for section in sections:
        lines += section.lines()
    lines.append(verdict(stack, sections))
    return "\n".join(lines) + "\n"


def summary(stack: str, sections: Sequence[Section]) -> str:
    """The result as JSON, for a workflow to act on without parsing the report."""
    code = exit_code(sections)
    status = {0: "clean", 1: "drift", 2: "failed"}[code]
    return json.dumps(
        {
            "stack": stack,
            "status": status,
            "exitCode": code,
            "sections": {s.name: s.outcome.name.lower() for s in sections},
            "verdict": verdict(stack, sections),
        },
        indent=1,
        sort_keys=True,
    )
