"""The privilege model, as data and as SQL (the contract tests run the SQL for real)."""

from __future__ import annotations

from components.access.privileges import PUBLIC, privilege_model, to_sql
from components.contract import Purpose


def test_three_roles_named_after_the_database() -> None:
    model = privilege_model("tradestream")
    assert [(r.name, r.purpose) for r in model.roles] == [
        ("tradestream_migrator", Purpose.MIGRATOR),
        ("tradestream_app", Purpose.APP),
        ("tradestream_readonly", Purpose.READONLY),
    ]


def test_only_the_migrator_may_create_in_the_schema() -> None:
    model = privilege_model("db")
    schema_grants = {g.role: g.privileges for g in model.grants if g.object_type == "schema"}
    assert schema_grants == {
        PUBLIC: (),
        "db_migrator": ("CREATE", "USAGE"),
        "db_app": ("USAGE",),
        "db_readonly": ("USAGE",),
    }


def test_app_writes_rows_and_readonly_only_reads_now_and_later() -> None:
    model = privilege_model("db")
    tables = {g.role: g.privileges for g in model.grants if g.object_type == "table"}
    assert tables == {
        "db_app": ("DELETE", "INSERT", "SELECT", "UPDATE"),
        "db_readonly": ("SELECT",),
    }
    future = {(d.role, d.object_type): d.privileges for d in model.default_privileges}
    assert future[("db_app", "table")] == ("DELETE", "INSERT", "SELECT", "UPDATE")
    assert future[("db_readonly", "table")] == ("SELECT",)
    assert future[("db_app", "sequence")] == ("SELECT", "USAGE")
    assert future[("db_readonly", "sequence")] == ("SELECT",)
    assert {d.owner for d in model.default_privileges} == {"db_migrator"}


def test_sql_creates_unprivileged_logins_and_exact_grants() -> None:
    model = privilege_model("db")
    sql = to_sql(model, {p: f"pw-{p.value}'x" for p in Purpose})
    assert sql[0] == (
        'CREATE ROLE "db_migrator" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION '
        "NOBYPASSRLS INHERIT PASSWORD 'pw-migrator''x'"
    )
    assert 'REVOKE ALL ON SCHEMA "public" FROM PUBLIC' in sql
    assert 'GRANT CREATE, USAGE ON SCHEMA "public" TO "db_migrator"' in sql
    assert (
        'ALTER DEFAULT PRIVILEGES FOR ROLE "db_migrator" IN SCHEMA "public" '
        'GRANT SELECT ON TABLES TO "db_readonly"'
    ) in sql
    # Roles first, then grants, then default privileges: the order the resources run in.
    first_grant = next(i for i, s in enumerate(sql) if s.startswith(("GRANT", "REVOKE")))
    first_default = next(i for i, s in enumerate(sql) if s.startswith("ALTER DEFAULT"))
    assert all(s.startswith("CREATE ROLE") for s in sql[:first_grant])
    assert first_grant < first_default


def test_the_migrator_may_act_as_the_owner_of_what_existed_before_it() -> None:
    model = privilege_model("db", owner="db_owner")
    assert [(m.member, m.role) for m in model.memberships] == [("db_migrator", "db_owner")]
    assert 'GRANT "db_owner" TO "db_migrator"' in to_sql(model, dict.fromkeys(Purpose, "x"))
    assert privilege_model("db").memberships == ()
