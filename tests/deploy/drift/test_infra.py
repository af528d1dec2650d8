"""Infrastructure drift as lines: field paths, recorded and live values, secrets masked."""

from __future__ import annotations

from deploy.drift import infra
from deploy.drift.infra import MASK, FieldChange, ResourceDrift

SECRET = {infra.SECRET_SIG: infra.SECRET_VALUE, "ciphertext": "v1:abc"}


def _config_map(labels: dict[str, str], data: dict[str, str]) -> dict[str, object]:
    return {
        "kind": "ConfigMap",
        "metadata": {
            "name": "sql-0",
            "namespace": "dev",
            "labels": labels,
            "resourceVersion": "1",
            "managedFields": [{"manager": "pulumi"}],
        },
        "data": data,
    }


def test_flatten_names_paths_as_the_engine_does() -> None:
    flat = infra.flatten({"metadata": {"labels": {"a.b/c": "x"}}, "items": [{"k": 1}]})
    assert flat == {'metadata.labels["a.b/c"]': "x", "items[0].k": 1}


def test_a_changed_label_and_a_new_key_are_shown_and_bookkeeping_is_not() -> None:
    recorded = _config_map({"part-of": "tradestream"}, {"V1__a.sql": "select 1;"})
    live = _config_map({"part-of": "other"}, {"V1__a.sql": "select 1;", "extra": "x"})
    live["metadata"]["resourceVersion"] = "7"  # type: ignore[index]
    assert infra.field_changes(recorded, live) == (
        FieldChange("data.extra", infra.ABSENT, '"x"'),
        FieldChange('metadata.labels["part-of"]', '"tradestream"', '"other"'),
    )


def test_a_secrets_values_are_never_shown() -> None:
    recorded = {"kind": "Secret", "data": {"username": "bWlncmF0b3I=", "password": SECRET}}
    live = {"kind": "Secret", "data": {"username": "aW50cnVkZXI=", "password": SECRET}}
    changes = infra.field_changes(recorded, live)
    assert changes == (FieldChange("data.username", MASK, f"{MASK} (changed)"),)
    assert "aW50cnVkZXI" not in repr(changes)


def test_long_values_are_shortened() -> None:
    shown = infra.show("x" * 500)
    assert shown.endswith("(502 characters)")
    assert len(shown) < 200


def test_identity_is_what_a_person_finds_it_by() -> None:
    outputs = _config_map({}, {})
    assert infra.identity("urn", outputs, "kubernetes:core/v1:ConfigMap") == "ConfigMap dev/sql-0"
    assert infra.identity("urn", {}, "postgresql:index/role:Role") == "postgresql:index/role:Role"


def _drift(identity: str, *, deleted: bool = False, path: str = "data.x") -> ResourceDrift:
    changes = () if deleted else (FieldChange(path, '"a"', '"b"'),)
    return ResourceDrift("t", "n", identity, deleted, changes)


def test_only_content_a_pod_reads_keeps_the_pod_from_running() -> None:
    needs = {("ConfigMap", "sql-0"), ("Secret", "creds")}
    drifts = [
        _drift("ConfigMap dev/sql-0", path='metadata.labels["x"]'),
        _drift("Secret dev/creds", path="data.password"),
        _drift("ConfigMap dev/other", deleted=True),
    ]
    assert infra.touches(drifts, needs) == ["Secret dev/creds"]
    assert infra.touches([_drift("ConfigMap dev/sql-0", deleted=True)], needs) == [
        "ConfigMap dev/sql-0"
    ]


def test_lines_and_what_clears_each_kind() -> None:
    changed = _drift("ConfigMap dev/sql-0")
    deleted = _drift("ConfigMap dev/sql-1", deleted=True)
    assert changed.lines() == ["ConfigMap dev/sql-0 (t n)", '  data.x: "a" -> "b"']
    assert deleted.lines() == ["ConfigMap dev/sql-1 (t n): deleted from the cluster"]
    lines = infra.clears([changed, deleted], "dev")
    assert lines[0].startswith("changed: set each field back by hand")
    assert lines[1].startswith("deleted: `make up STACK=dev REFRESH=1` makes it again")
    assert infra.clears([deleted], "dev") == lines[1:]
