"""The statements that would bring the live schema back to what the migrations make (pure).

A hint only: the report prints them and nothing runs them. They are what a person would
type to revert a change made by hand; to keep the change instead, the same statements the
other way round belong in a new migration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from deploy.drift.schema import SchemaObject

_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")
RESERVED: Final = frozenset(
    (
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "authorization",
        "binary",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "collation",
        "column",
        "concurrently",
        "constraint",
        "create",
        "cross",
        "current_catalog",
        "current_date",
        "current_role",
        "current_schema",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "freeze",
        "from",
        "full",
        "grant",
        "group",
        "having",
        "ilike",
        "in",
        "initially",
        "inner",
        "intersect",
        "into",
        "is",
        "isnull",
        "join",
        "lateral",
        "leading",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "natural",
        "not",
        "notnull",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "outer",
        "overlaps",
        "placing",
        "primary",
        "references",
        "returning",
        "right",
        "select",
        "session_user",
        "similar",
        "some",
        "symmetric",
        "system_user",
        "table",
        "tablesample",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "verbose",
        "when",
        "where",
        "window",
        "with",
    )
)
"""PostgreSQL's reserved key words: quoted like any name that is not plain lower case."""
DEFAULT_OBJECTS: Final = {
    "r": "TABLES",
    "S": "SEQUENCES",
    "f": "FUNCTIONS",
    "T": "TYPES",
    "n": "SCHEMAS",
}
"""pg_default_acl's object types, as ALTER DEFAULT PRIVILEGES names them."""
GRANT_KEYWORDS: Final = {
    "schema": "SCHEMA",
    "table": "TABLE",
    "view": "TABLE",
    "materialized view": "TABLE",
    "sequence": "SEQUENCE",
    "function": "FUNCTION",
    "procedure": "PROCEDURE",
    "type": "TYPE",
    "domain": "DOMAIN",
}


def ident(name: str) -> str:
    """A name as PostgreSQL's quote_ident writes it."""
    if _PLAIN.fullmatch(name) and name not in RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}"


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _table(spec: Mapping[str, Any]) -> str:
    return qualified(spec["schema"], spec["table"])


def column_definition(spec: Mapping[str, Any]) -> str:
    """`name type [COLLATE] [GENERATED ...|DEFAULT ...] [NOT NULL]`, from a catalog row."""
    parts = [ident(spec["name"]), spec["type"]]
    if spec.get("collation"):
        parts.append(f"COLLATE {ident(spec['collation'])}")
    if spec.get("generated"):
        parts.append(f"GENERATED ALWAYS AS ({spec['default']}) STORED")
    elif spec.get("default"):
        parts.append(f"DEFAULT {spec['default']}")
    identity = {"a": "ALWAYS", "d": "BY DEFAULT"}.get(spec.get("identity") or "")
    if identity:
        parts.append(f"GENERATED {identity} AS IDENTITY")
    if spec.get("not_null"):
        parts.append("NOT NULL")
    return " ".join(parts)


def _grant(spec: Mapping[str, Any], *, revoke: bool) -> str:
    kind = spec["kind"]
    grantee = "PUBLIC" if spec["grantee"] == "PUBLIC" else ident(spec["grantee"])
    privilege = spec["privilege"]
    if kind == "schema":
        target = f"SCHEMA {ident(spec['name'])}"
    elif kind == "column":
        privilege = f"{privilege} ({ident(spec['part'])})"
        target = f"TABLE {qualified(spec['schema'], spec['name'])}"
    elif kind in ("function", "procedure"):
        target = f"{GRANT_KEYWORDS[kind]} {qualified(spec['schema'], spec['name'])}({spec['part']})"
    else:
        target = f"{GRANT_KEYWORDS[kind]} {qualified(spec['schema'], spec['name'])}"
    if revoke:
        return f"REVOKE {privilege} ON {target} FROM {grantee};"
    option = " WITH GRANT OPTION" if spec["grantable"] else ""
    return f"GRANT {privilege} ON {target} TO {grantee}{option};"


def _default_privilege(spec: Mapping[str, Any], *, revoke: bool) -> str:
    objects = DEFAULT_OBJECTS.get(spec["objects"], spec["objects"])
    where = f" IN SCHEMA {ident(spec['schema'])}" if spec["schema"] else ""
    grantee = "PUBLIC" if spec["grantee"] == "PUBLIC" else ident(spec["grantee"])
    prefix = f"ALTER DEFAULT PRIVILEGES FOR ROLE {ident(spec['role'])}{where}"
    if revoke:
        return f"{prefix} REVOKE {spec['privilege']} ON {objects} FROM {grantee};"
    option = " WITH GRANT OPTION" if spec["grantable"] else ""
    return f"{prefix} GRANT {spec['privilege']} ON {objects} TO {grantee}{option};"


def _create_table(obj: SchemaObject, children: Sequence[SchemaObject]) -> list[str]:
    columns = ",\n      ".join(column_definition(c.spec) for c in children if c.kind == "column")
    made = [f"CREATE TABLE {obj.name} (\n      {columns}\n    );"]
    return made + [line for c in children if c.kind != "column" for line in create(c)]


_CREATE: Final[dict[str, Callable[[SchemaObject], str]]] = {
    "schema": lambda o: f"CREATE SCHEMA {o.name};",
    "extension": lambda o: f"CREATE EXTENSION IF NOT EXISTS {o.name};",
    "view": lambda o: f"CREATE VIEW {o.name} AS {o.attributes['definition']}",
    "materialized view": lambda o: (
        f"CREATE MATERIALIZED VIEW {o.name} AS {o.attributes['definition']}"
    ),
    "column": lambda o: f"ALTER TABLE {_table(o.spec)} ADD COLUMN {column_definition(o.spec)};",
    "constraint": lambda o: (
        f"ALTER TABLE {_table(o.spec)} ADD CONSTRAINT {ident(o.spec['name'])} "
        f"{o.spec['definition']};"
    ),
    "index": lambda o: f"{o.spec['definition']};",
    "trigger": lambda o: f"{o.spec['definition']};",
    "sequence": lambda o: f"CREATE SEQUENCE {o.name} {_sequence_options(o.spec)};",
    "function": lambda o: f"{str(o.spec['definition']).rstrip()};",
    "procedure": lambda o: f"{str(o.spec['definition']).rstrip()};",
    "grant": lambda o: _grant(o.spec, revoke=False),
    "default privilege": lambda o: _default_privilege(o.spec, revoke=False),
}
_DROP_KEYWORDS: Final = {
    "schema": "SCHEMA",
    "extension": "EXTENSION",
    "table": "TABLE",
    "view": "VIEW",
    "materialized view": "MATERIALIZED VIEW",
    "index": "INDEX",
    "sequence": "SEQUENCE",
    "function": "FUNCTION",
    "procedure": "PROCEDURE",
    "aggregate": "AGGREGATE",
    "type": "TYPE",
    "domain": "DOMAIN",
}
_DROP: Final[dict[str, Callable[[SchemaObject], str]]] = {
    "column": lambda o: f"ALTER TABLE {_table(o.spec)} DROP COLUMN {ident(o.spec['name'])};",
    "constraint": lambda o: (
        f"ALTER TABLE {_table(o.spec)} DROP CONSTRAINT {ident(o.spec['name'])};"
    ),
    "trigger": lambda o: f"DROP TRIGGER {ident(o.spec['name'])} ON {_table(o.spec)};",
    "policy": lambda o: f"DROP POLICY {ident(o.spec['name'])} ON {_table(o.spec)};",
    "grant": lambda o: _grant(o.spec, revoke=True),
    "default privilege": lambda o: _default_privilege(o.spec, revoke=True),
}


def create(obj: SchemaObject, children: Sequence[SchemaObject] = ()) -> list[str]:
    """What makes `obj` (a table with its `children`: columns, constraints, indexes, ...)."""
    if obj.kind == "table":
        return _create_table(obj, children)
    make = _CREATE.get(obj.kind)
    return [make(obj)] if make else [f"-- {obj.kind} {obj.name}: make it as its migration does"]


def drop(obj: SchemaObject) -> list[str]:
    """What removes `obj` (a table with everything that belongs to it)."""
    if obj.kind in _DROP_KEYWORDS:
        return [f"DROP {_DROP_KEYWORDS[obj.kind]} {obj.name};"]
    remove = _DROP.get(obj.kind)
    return [remove(obj)] if remove else [f"-- {obj.kind} {obj.name}: remove it by hand"]


def _sequence_options(spec: Mapping[str, Any]) -> str:
    cycle = "CYCLE" if spec["cycle"] else "NO CYCLE"
    return (
        f"AS {spec['type']} INCREMENT BY {spec['increment']} MINVALUE {spec['min']} "
        f"MAXVALUE {spec['max']} START WITH {spec['start']} CACHE {spec['cache']} {cycle}"
    )


def _alter_column(want: SchemaObject, changed: Sequence[tuple[str, str, str]]) -> list[str]:
    prefix = f"ALTER TABLE {_table(want.spec)} ALTER COLUMN {ident(want.spec['name'])}"
    column = ident(want.spec["name"])
    statements = []
    for attribute, value, _ in changed:
        if attribute == "type":
            statements.append(f"{prefix} TYPE {value} USING {column}::{value};")
        elif attribute == "not null":
            statements.append(f"{prefix} {'SET' if value == 'true' else 'DROP'} NOT NULL;")
        elif attribute == "default":
            statements.append(
                f"{prefix} SET DEFAULT {value};" if value else f"{prefix} DROP DEFAULT;"
            )
        elif attribute == "collation":
            collate = f" COLLATE {ident(value)}" if value else ""
            statements.append(f"{prefix} TYPE {want.spec['type']}{collate};")
        else:
            statements.append(f"-- column {want.name}: {attribute} differs; make the column again")
    return statements


def _alter_grant(want: SchemaObject) -> list[str]:
    if want.spec["grantable"]:
        return [_grant(want.spec, revoke=False)]
    return [_grant(want.spec, revoke=True).replace("REVOKE ", "REVOKE GRANT OPTION FOR ", 1)]


def alter(
    want: SchemaObject, have: SchemaObject, changed: Sequence[tuple[str, str, str]]
) -> list[str]:
    """What brings `have` (live) to `want` (expected): attribute by attribute where
    PostgreSQL can, else by making it again."""
    altering: dict[str, Callable[[], list[str]]] = {
        "column": lambda: _alter_column(want, changed),
        "sequence": lambda: [f"ALTER SEQUENCE {want.name} {_sequence_options(want.spec)};"],
        "function": lambda: create(want),
        "procedure": lambda: create(want),
        "view": lambda: [f"CREATE OR REPLACE VIEW {want.name} AS {want.attributes['definition']}"],
        "grant": lambda: _alter_grant(want),
        "default privilege": lambda: [*drop(have), *create(want)],
    }
    if want.kind in altering:
        return altering[want.kind]()
    if want.kind in ("table", "schema", "extension"):
        return [f"-- {want.kind} {want.name}: {', '.join(a for a, _, _ in changed)} differ"]
    return [*drop(have), *create(want)]
