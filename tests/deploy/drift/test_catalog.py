"""The catalog query on a real PostgreSQL: two databases made the same way in another order
and by another owner read the same; a change by hand is found, and the report's own hint
statements undo it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deploy.drift import pods, schema
from deploy.drift.schema import Snapshot
from standins.postgres import PostgresServer

pytestmark = pytest.mark.contract

ROLES = "CREATE ROLE app; CREATE ROLE app_readonly; CREATE ROLE owner_a; CREATE ROLE owner_b;"
TABLES = [
    "CREATE TYPE side AS ENUM ('buy', 'sell')",
    "CREATE TABLE venues (id int PRIMARY KEY, name text NOT NULL UNIQUE)",
    "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "venue int REFERENCES venues (id), side side NOT NULL, qty numeric(38,18) "
    "CHECK (qty > 0), placed_at timestamptz NOT NULL DEFAULT now())",
    "CREATE INDEX orders_placed ON orders (placed_at DESC)",
    "CREATE VIEW open_orders AS SELECT id, venue FROM orders WHERE qty > 0",
    "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN NEW.placed_at := now(); RETURN NEW; END $$",
    "CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch()",
    "GRANT SELECT, INSERT, UPDATE ON orders, venues TO app",
    "GRANT SELECT ON orders, venues, open_orders TO app_readonly",
]


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with PostgresServer() as started:
        started.query(ROLES)
        yield started


def _make(server: PostgresServer, name: str, owner: str, statements: list[str]) -> None:
    server.query(f"CREATE DATABASE {name} OWNER {owner}")
    with server.connect(name) as conn:
        conn.execute(f"ALTER SCHEMA public OWNER TO {owner}")
        conn.execute(f"SET ROLE {owner}")
        for statement in statements:
            conn.execute(statement.encode())


def _read(server: PostgresServer, name: str) -> Snapshot:
    with server.connect(name) as conn:
        row = conn.execute(pods.CATALOG_SQL.encode()).fetchone()
    assert row is not None
    return schema.snapshot(row[0])


def test_order_and_owner_do_not_count(server: PostgresServer) -> None:
    _make(server, "one", "owner_a", TABLES)
    grants_first = TABLES[:3] + TABLES[7:8] + TABLES[3:7] + TABLES[8:]
    _make(server, "two", "owner_b", grants_first)
    one, two = _read(server, "one"), _read(server, "two")
    assert len(one.objects) > 30
    assert schema.compare(one, two) == []
    names = {name for _, name in one.objects}
    assert "public.orders_placed" in names
    assert "SELECT on table public.orders to app_readonly" in names
    assert not any("owner_" in name for name in names)


def test_changes_by_hand_are_found_and_the_hints_undo_them(server: PostgresServer) -> None:
    _make(server, "expected", "owner_a", TABLES)
    _make(server, "live", "owner_a", TABLES)
    with server.connect("live") as conn:
        conn.execute("CREATE INDEX incident ON orders (venue, side)")
        conn.execute("ALTER TABLE venues ALTER COLUMN name TYPE varchar(40)")
        conn.execute("REVOKE SELECT ON orders FROM app_readonly")
        conn.execute("ALTER TABLE orders DROP CONSTRAINT orders_qty_check")
    expected = _read(server, "expected")
    differences = schema.compare(expected, _read(server, "live"))
    assert [d.line() for d in differences] == [
        "~ column public.venues.name: type 'text' expected, 'character varying(40)' live",
        "- constraint orders_qty_check on public.orders: made by the migrations, missing "
        "from the live database",
        "+ index public.incident: in the live database, made by no migration",
        "- grant SELECT on table public.orders to app_readonly: made by the migrations, "
        "missing from the live database",
    ]
    hints = schema.hint_statements(differences, expected)
    with server.connect("live") as conn:
        conn.execute("SET ROLE owner_a")
        for statement in hints:
            conn.execute(statement.encode())
    assert schema.compare(expected, _read(server, "live")) == []


def test_the_same_migrations_on_15_and_17_read_the_same(server: PostgresServer) -> None:
    """Production runs 17, a throwaway server here may run 15: what only the major version
    changes (MAINTAIN in GRANT ALL, the deparsed SQL) is no drift."""
    statements = [
        *TABLES,
        "GRANT ALL ON orders TO app",
        "CREATE VIEW aliased AS SELECT o.id FROM public.orders o WHERE o.qty > 1",
        "CREATE VIEW joined AS SELECT o.id, v.name FROM orders o JOIN venues v ON v.id = o.venue",
        "CREATE VIEW nested AS SELECT id FROM orders WHERE venue IN (SELECT id FROM venues)",
        "CREATE VIEW ids AS SELECT id FROM orders UNION SELECT id FROM venues",
        "CREATE MATERIALIZED VIEW totals AS SELECT venue, sum(qty) AS qty FROM orders "
        "GROUP BY venue",
    ]
    _make(server, "on_15", "owner_a", statements)
    with PostgresServer(major=17) as newer:
        newer.query(ROLES)
        _make(newer, "on_17", "owner_a", statements)
        on_17 = _read(newer, "on_17")
    on_15 = _read(server, "on_15")
    assert on_17.server_version.startswith("17"), on_17.server_version
    assert on_15.server_version.startswith("15"), on_15.server_version
    assert schema.compare(on_15, on_17) == []
