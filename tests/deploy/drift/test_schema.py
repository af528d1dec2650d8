"""The schema diff on catalog documents (pure): what counts as drift and what does not
(order, owners, grantors, what one PostgreSQL major version adds), and the hint statements."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from deploy.drift import hints, schema
from deploy.drift.schema import snapshot

EMPTY: dict[str, Any] = {
    key: []
    for key in (
        "schemas",
        "extensions",
        "relations",
        "columns",
        "indexes",
        "constraints",
        "triggers",
        "policies",
        "sequences",
        "functions",
        "types",
        "grants",
        "default_privileges",
    )
}


def _column(name: str, type_: str, *, not_null: bool = False) -> dict[str, Any]:
    return {
        "schema": "public",
        "table": "orders",
        "name": name,
        "type": type_,
        "not_null": not_null,
        "default": None,
        "identity": "",
        "generated": "",
        "collation": None,
    }


def _grant(privilege: str, grantee: str) -> dict[str, Any]:
    return {
        "kind": "table",
        "schema": "public",
        "name": "orders",
        "part": None,
        "grantee": grantee,
        "privilege": privilege,
        "grantable": False,
    }


def catalog(version: str = "15.18") -> dict[str, Any]:
    doc = copy.deepcopy(EMPTY)
    doc["server_version"] = version
    doc["schemas"] = [{"name": "public"}]
    doc["relations"] = [
        {
            "schema": "public",
            "name": "orders",
            "kind": "r",
            "row_security": False,
            "force_row_security": False,
            "unlogged": False,
            "definition": None,
        }
    ]
    doc["columns"] = [_column("id", "bigint", not_null=True), _column("venue", "text")]
    doc["constraints"] = [
        {
            "schema": "public",
            "table": "orders",
            "name": "orders_pkey",
            "definition": "PRIMARY KEY (id)",
        }
    ]
    doc["indexes"] = [
        {
            "schema": "public",
            "table": "orders",
            "name": "orders_venue",
            "definition": "CREATE INDEX orders_venue ON public.orders USING btree (venue)",
        }
    ]
    doc["grants"] = [_grant("SELECT", "app_readonly"), _grant("INSERT", "app")]
    return doc


def test_the_same_schema_in_another_order_and_major_version_is_no_drift() -> None:
    live = catalog("17.2 (Debian 17.2-1)")
    for key in ("columns", "grants"):
        live[key].reverse()
    live["grants"].append(_grant("MAINTAIN", "app"))  # GRANT ALL on 17
    live["indexes"][0]["definition"] = (
        "CREATE INDEX orders_venue\n    ON public.orders USING btree (venue)"
    )
    assert schema.compare(snapshot(catalog()), snapshot(live)) == []


def test_an_added_index_an_altered_column_and_a_revoked_grant_are_named() -> None:
    live = catalog()
    live["indexes"].append(
        {
            "schema": "public",
            "table": "orders",
            "name": "incident",
            "definition": "CREATE INDEX incident ON public.orders USING btree (id, venue)",
        }
    )
    live["columns"][1]["type"] = "character varying(16)"
    live["grants"] = [g for g in live["grants"] if g["grantee"] != "app_readonly"]
    expected = snapshot(catalog())
    differences = schema.compare(expected, snapshot(live))
    assert [d.line() for d in differences] == [
        "~ column public.orders.venue: type 'text' expected, 'character varying(16)' live",
        "+ index public.incident: in the live database, made by no migration",
        "- grant SELECT on table public.orders to app_readonly: made by the migrations, "
        "missing from the live database",
    ]
    assert schema.hint_statements(differences, expected) == [
        "DROP INDEX public.incident;",
        "ALTER TABLE public.orders ALTER COLUMN venue TYPE text USING venue::text;",
        "GRANT SELECT ON TABLE public.orders TO app_readonly;",
    ]


def test_a_table_made_by_hand_is_one_line_with_its_parts_folded_in() -> None:
    live = catalog()
    expected = copy.deepcopy(EMPTY) | {"server_version": "15", "schemas": [{"name": "public"}]}
    differences = schema.compare(snapshot(expected), snapshot(live))
    assert [d.line() for d in differences] == [
        "+ table public.orders: in the live database, made by no migration (with its 6 "
        "columns, indexes, constraints and grants)"
    ]
    assert schema.hint_statements(differences, snapshot(expected)) == ["DROP TABLE public.orders;"]


def test_a_missing_table_is_made_again_with_its_parts() -> None:
    empty = copy.deepcopy(EMPTY) | {"server_version": "15", "schemas": [{"name": "public"}]}
    expected = snapshot(catalog())
    differences = schema.compare(expected, snapshot(empty))
    assert schema.hint_statements(differences, expected) == [
        "CREATE TABLE public.orders (\n      id bigint NOT NULL,\n      venue text\n    );",
        "ALTER TABLE public.orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id);",
        "CREATE INDEX orders_venue ON public.orders USING btree (venue);",
        "GRANT INSERT ON TABLE public.orders TO app;",
        "GRANT SELECT ON TABLE public.orders TO app_readonly;",
    ]


def test_names_are_quoted_as_postgresql_quotes_them() -> None:
    assert hints.ident("orders") == "orders"
    assert hints.ident("Orders") == '"Orders"'
    assert hints.ident("user") == '"user"'
    assert hints.qualified("public", 'we"ird') == 'public."we""ird"'


def test_output_without_a_document_is_a_failed_check() -> None:
    with pytest.raises(schema.CatalogError, match="connection to server failed"):
        schema.parse("psql: error: connection to server failed\n")


def test_a_views_one_relation_qualifier_is_version_noise_and_nothing_else() -> None:
    on_15 = " SELECT orders.id,\n    orders.venue\n   FROM orders\n  WHERE (orders.qty > 0);"
    assert schema.view_definition(on_15) == "SELECT id, venue FROM orders WHERE (qty > 0);"
    nested = "SELECT orders.id FROM orders WHERE (orders.venue IN ( SELECT venues.id FROM venues));"
    assert schema.view_definition(nested) == (
        "SELECT id FROM orders WHERE (venue IN ( SELECT venues.id FROM venues));"
    )
    joined = "SELECT a.id, b.x FROM (a JOIN b ON ((a.id = b.id)));"
    assert schema.view_definition(joined) == joined
    assert schema.view_definition("SELECT id FROM orders WHERE (qty > 1);") != (
        schema.view_definition(on_15)
    )
