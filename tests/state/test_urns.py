"""Every resource a deployed stack holds keeps its URN and parent through a change of layout,
or an alias carries it (see `urns.py`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.state.urns import (
    CONFIGURATIONS,
    FIXTURE,
    alias_urns,
    declared,
    inputs_record_of,
    write_migrations,
)

RECORDED: dict[str, list[dict[str, str]]] = json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_the_fixture_covers_every_configuration() -> None:
    assert sorted(RECORDED) == sorted(CONFIGURATIONS)


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_every_recorded_resource_keeps_its_urn_and_parent(name: str, tmp_path: Path) -> None:
    now = declared(name, write_migrations(tmp_path / "migrations"))
    known: dict[str, str] = {}
    for resource in now:
        known[resource["urn"]] = resource["parent"]
        for old in alias_urns(resource):
            known.setdefault(old, f"(alias of {resource['urn']})")
    lost = [r["urn"] for r in RECORDED[name] if r["urn"] not in known]
    assert lost == [], f"{name}: these would be deleted and re-created: {lost}"
    moved = [
        (r["urn"], r["parent"], known[r["urn"]])
        for r in RECORDED[name]
        if not known[r["urn"]].startswith("(alias") and known[r["urn"]] != r["parent"]
    ]
    assert moved == [], f"{name}: these changed parent without an alias: {moved}"


INPUTS: dict[str, dict[str, str]] = json.loads(
    FIXTURE.with_name("inputs.json").read_text(encoding="utf-8")
)


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_a_change_of_layout_changes_no_input(name: str) -> None:
    """Inputs, triggers and protection as recorded before the layout changed: a deployed stack
    previews with no change. (Regenerated only with a deliberate change of what is deployed.)"""
    now = inputs_record_of(name)
    changed = sorted(urn for urn, value in INPUTS[name].items() if now.get(urn) != value)
    assert changed == [], f"{name}: a preview would show these changed: {changed}"
