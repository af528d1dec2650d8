"""The engine's errors as the person sees them: once, without tracebacks or spinner lines."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from deploy.diagnostics import Diagnostics, ProgressFilter

STACK = "urn:pulumi:dev::tradestream-database::pulumi:pulumi:Stack::tradestream-database-dev"
JOB = (
    "urn:pulumi:dev::tradestream-database::tradestream:database:MigrationJob"
    "$kubernetes:batch/v1:Job::tradestream-job"
)


def event(severity: str, message: str, urn: str | None = None) -> Any:
    return SimpleNamespace(
        diagnostic_event=SimpleNamespace(severity=severity, message=message, urn=urn)
    )


def test_the_programs_refusal_is_shown_once_without_the_engines_wrapper() -> None:
    collected = Diagnostics()
    refusal = "invalid stack configuration (1 problem):\n  - key: bad"
    for e in (
        event("debug", "registering resource"),
        event("error", refusal, STACK),
        event("error", f"an unhandled error occurred: {refusal}", STACK),
        event("error", "update failed"),
    ):
        collected(e)
    assert collected.messages() == [refusal]


def test_an_error_raised_while_an_output_was_awaited_is_shown_once() -> None:
    collected = Diagnostics()
    why = "the Backup ns/b ended in phase failed: no WAL. Flyway did not run."
    collected(event("error", why, STACK))
    collected(event("error", f"Exception calling application: {why}", STACK))
    assert collected.messages() == [why]


def test_a_resource_error_names_the_resource_and_a_traceback_becomes_its_last_line() -> None:
    collected = Diagnostics()
    collected(event("error", "Job failed: BackoffLimitExceeded", JOB))
    collected(event("error", f'resource "{JOB}" was not created: nope', JOB))
    collected(
        event(
            "error",
            "python inline source runtime error: boom\nTraceback (most recent call last):\n"
            '  File "x.py", line 1\nValueError: boom',
            STACK,
        )
    )
    assert collected.messages() == [
        "kubernetes:batch/v1:Job tradestream-job: Job failed: BackoffLimitExceeded",
        "kubernetes:batch/v1:Job tradestream-job: was not created: nope",
        "boom\nValueError: boom",
    ]


def test_progress_keeps_its_lines_but_not_the_diagnostics_block_nor_repeated_errors() -> None:
    shown: list[str] = []
    keep = ProgressFilter(shown.append)
    for line in [
        "Updating (local):",
        " ++ kubernetes:core/v1:Secret s creating (3s); Retry #2; creation failed: nope",
        " +  kubernetes:core/v1:Secret t creating (1s) Retry #1; creation failed: nope",
        "@ updating.....",
        "    pulumi:pulumi:Stack x running error: an unhandled error occurred: bad",
        "Diagnostics:",
        "  pulumi:pulumi:Stack (x):",
        "    error: bad",
        "",
        "Resources:",
        "    1 errored",
    ]:
        keep(line)
    assert shown == [
        "Updating (local):",
        " ++ kubernetes:core/v1:Secret s creating (3s) (retry #2)",
        " +  kubernetes:core/v1:Secret t creating (1s) (retry #1)",
        "Resources:",
        "    1 errored",
    ]
