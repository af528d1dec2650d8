"""Flyway's `info` and `validate` JSON read into drift findings: the documents are what
Flyway 11's command line printed for a history that agrees with its files, and for one with
an edited, a removed and a new file (tests/deploy/drift/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.drift import history
from deploy.drift.history import CHANGED, MISSING, PENDING, HistoryError

DATA = Path(__file__).with_name("data")


def _log(name: str) -> str:
    """As the pod's log has it: whatever the JVM printed first, then the document."""
    return "Picked up JAVA_TOOL_OPTIONS: -Xmx256m\n" + (DATA / name).read_text()


def test_a_history_that_agrees_has_no_findings() -> None:
    found = history.read(_log("flyway-clean.json"))
    assert found.findings == ()
    assert found.applied == 3
    assert found.schema_version == "3"


def test_pending_missing_and_changed_are_named() -> None:
    found = history.read(_log("flyway-drift.json"))
    assert [(f.kind, f.migration) for f in found.findings] == [
        (PENDING, "V4 four"),
        (MISSING, "V2 two"),
        (CHANGED, "V1 one"),
    ]
    changed = found.findings[-1]
    assert changed.line() == (
        "changed: V1 one: applied with another checksum "
        "(-787082930 in the history, 1028828223 deployed)"
    )
    assert found.findings[0].line() == (
        "pending: V4 four: deployed but not applied (Flyway: Pending)"
    )


def test_each_kind_found_says_what_clears_it() -> None:
    found = history.read(_log("flyway-drift.json"))
    lines = history.clears(found.findings, "dev")
    assert lines[0].startswith("pending: `make up STACK=dev`")
    assert lines[1].startswith("missing: ")
    assert "`make migrations-repair STACK=dev`" in lines[2]
    failed = [history.Finding(history.FAILED, "V5 five", "failed")]
    assert "README: A migration failed at 2am" in history.clears(failed, "dev")[0]


def test_no_result_is_a_failed_check_with_what_flyway_printed() -> None:
    with pytest.raises(HistoryError, match="Connection refused"):
        history.read("ERROR: Unable to obtain connection: Connection refused\n")


def test_an_error_instead_of_a_verb_is_a_failed_check() -> None:
    log = '{"error": {"errorCode": "ERROR", "message": "password authentication failed"}}'
    with pytest.raises(HistoryError, match="did not report info and validate"):
        history.read(log)
