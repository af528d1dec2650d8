"""The report a person reads and the exit code a workflow acts on."""

from __future__ import annotations

import json

from deploy.drift.report import Outcome, Section, exit_code, render, summary, verdict

CLEAN = Section("history", "Flyway's history", Outcome.CLEAN, ["4 migrations applied"])
DRIFT = Section(
    "schema",
    "the live schema",
    Outcome.DRIFT,
    ["+ index public.i: in the live database, made by no migration"],
    ["undo it by hand"],
    ["DROP INDEX public.i;"],
)
SKIPPED = Section("history", "Flyway's history", Outcome.SKIPPED, ["not checked: ..."])
FAILED = Section("schema", "the live schema", Outcome.FAILED, ["the cluster is out of reach"])


def test_exit_code_is_the_worst_part() -> None:
    assert exit_code([CLEAN]) == 0
    assert exit_code([CLEAN, DRIFT]) == 1
    assert exit_code([SKIPPED]) == 1
    assert exit_code([DRIFT, FAILED]) == 2
    assert exit_code([]) == 2


def test_a_section_shows_findings_hints_and_what_clears_it() -> None:
    assert DRIFT.lines() == [
        "--- schema: the live schema ---",
        "  + index public.i: in the live database, made by no migration",
        "  hint, statements that would undo it (review first; nothing was run):",
        "    DROP INDEX public.i;",
        "  clears it: undo it by hand",
        "  schema: drift",
    ]
    several = Section("infrastructure", "state", Outcome.DRIFT, ["x"], ["one", "two"])
    assert several.lines()[2:5] == ["  clears it:", "    - one", "    - two"]


def test_the_last_line_says_where_and_the_exit_code() -> None:
    assert verdict("dev", [CLEAN]) == (
        "drift: none in dev (infrastructure, history and schema as deployed)"
    )
    assert verdict("dev", [CLEAN, DRIFT]) == "drift: dev: drift in schema (exit 1)"
    assert verdict("dev", [SKIPPED, FAILED]) == (
        "drift: dev: drift in history; could not check schema (exit 2)"
    )
    text = render("dev", [CLEAN, DRIFT])
    assert text.startswith("=== drift check of dev ===\n--- history:")
    assert text.endswith("drift: dev: drift in schema (exit 1)\n")


def test_the_summary_is_what_a_workflow_needs() -> None:
    assert json.loads(summary("prod", [CLEAN, DRIFT])) == {
        "stack": "prod",
        "status": "drift",
        "exitCode": 1,
        "sections": {"history": "clean", "schema": "drift"},
        "verdict": "drift: prod: drift in schema (exit 1)",
    }
