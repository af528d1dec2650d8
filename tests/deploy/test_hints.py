"""Advice under a failed deploy's Flyway log, for failures that name no setting."""

from __future__ import annotations

import pytest

from deploy.hints import hints


@pytest.mark.parametrize(
    ("log", "words"),
    [
        ('FATAL: database "tradestream" does not exist', "CREATE DATABASE tradestream"),
        (
            'FATAL: password authentication failed for user "tradestream_migrator"',
            "migratorPassword",
        ),
        ("Connection to 10.0.0.5:5432 refused. Check that", "databaseAccessHost"),
        ("No value provided for placeholder: ${api_key}", "flywayPlaceholders.api_key"),
        ("Failed to populate value for default placeholder: ${flyway:nope}", "flyway:table"),
    ],
)
def test_known_failures_get_advice_naming_the_setting(log: str, words: str) -> None:
    [advice] = hints(f"ERROR: Unable to obtain connection\n{log}\n")
    assert words in advice


def test_other_failures_get_none() -> None:
    assert hints('ERROR: relation "fills" already exists') == []
