"""Schema drift: the live schema against the one the deployed migrations make (pure).

Both sides are the catalog query's JSON (`catalog.sql`), one read from the live database
inside the cluster, one from a throwaway PostgreSQL the deployed migrations were applied to
with the privilege model. Each becomes a set of objects keyed by kind and name (tables,
columns, indexes, constraints, grants, ...); order, owners, grantors and what differs only
between PostgreSQL major versions (MAINTAIN, new in 17; the spacing of deparsed SQL) do not
count. What differs is listed per object, with the statements that would bring the live
database back to the migrations as a hint (`hints.py`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from deploy.drift import hints
from deploy.drift.hints import DEFAULT_OBJECTS, ident, qualified

VERSION_NOISE: Final = frozenset({"MAINTAIN"})
"""Privileges a newer major version adds to what a plain GRANT ALL or default gives."""
KINDS: Final = (
    "schema",
    "extension",
    "type",
    "domain",
    "sequence",
    "table",
    "view",
    "materialized view",
    "column",
    "constraint",
    "index",
    "trigger",
    "policy",
    "function",
    "procedure",
    "aggregate",
    "grant",
    "default privilege",
)
"""Order of the report and of the statements that create things (drops go backwards)."""
RELATION_KINDS: Final = {
    "r": "table",
    "p": "table",
    "f": "table",
    "v": "view",
    "m": "materialized view",
}
FUNCTION_KINDS: Final = {"f": "function", "p": "procedure", "w": "function", "a": "aggregate"}

Key = tuple[str, str]


class CatalogError(ValueError):
    """The catalog query printed no schema (the pod's output says why)."""


@dataclass(frozen=True)
class SchemaObject:
    """One object: what is compared, and what a hint needs to make it."""

    kind: str
    name: str
    attributes: Mapping[str, str]
    parent: Key | None = None
    """The table it belongs to (a column, index, constraint, trigger, policy, grant)."""
    spec: Mapping[str, Any] = field(default_factory=dict)
    """The catalog's own row, for the hints."""

    @property
    def key(self) -> Key:
        return (self.kind, self.name)


@dataclass(frozen=True)
class Snapshot:
    server_version: str
    objects: Mapping[Key, SchemaObject]


def parse(output: str) -> Snapshot:
    """The catalog query's JSON from a pod's log or psql's output."""
    start = output.find("{")
    if start < 0:
        tail = "\n".join(output.strip().splitlines()[-15:]) or "(no output)"
        raise CatalogError(f"the catalog query printed no schema: {tail}")
    try:
        document, _ = json.JSONDecoder().raw_decode(output[start:])
    except json.JSONDecodeError as error:
        raise CatalogError(f"the catalog query's output is not JSON: {error}") from None
    return snapshot(document)


def _flat(text: object) -> str:
    """Deparsed SQL with its spacing (which differs between major versions) collapsed."""
    return " ".join(str(text).split()) if text is not None else ""


_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_SINGLE_FROM = re.compile(rf"\bFROM\s+(?:{_NAME}\.)?({_NAME})(?:\s+({_NAME}))?", re.IGNORECASE)
_NOT_ALIAS = frozenset({"where", "group", "order", "limit", "offset", "having", "window", "for"})


def view_definition(text: object) -> str:
    """A view's deparsed query, spacing collapsed, and without the qualification of columns
    by the one relation of a query level that sees only that one: PostgreSQL 16 and later
    leave it out there (15: `SELECT orders.id FROM orders`, 17: `SELECT id FROM orders`).
    A subquery sees its own relations and the outer one's, so it keeps its qualification on
    every version, as does a join."""
    flat = _flat(text)
    subqueries = _subqueries(flat)
    outer, kept = _cut(flat, subqueries)
    arms = re.split(r"(\s(?:UNION|INTERSECT|EXCEPT)(?:\s+ALL)?\s)", outer)
    return _paste("".join(_unqualified(arm) for arm in arms), kept)


def _subqueries(flat: str) -> list[tuple[int, int]]:
    """Spans of the outermost `( SELECT ... )` subqueries."""
    spans: list[tuple[int, int]] = []
    for match in re.finditer(r"\(\s*SELECT\b", flat, re.IGNORECASE):
        if spans and match.start() < spans[-1][1]:
            continue
        depth = 0
        for index in range(match.start(), len(flat)):
            depth += {"(": 1, ")": -1}.get(flat[index], 0)
            if depth == 0:
                spans.append((match.start(), index + 1))
                break
    return spans


def _cut(flat: str, spans: list[tuple[int, int]]) -> tuple[str, list[str]]:
    parts: list[str] = []
    kept: list[str] = []
    last = 0
    for start, end in spans:
        parts.append(flat[last:start] + f"\x00{len(kept)}\x00")
        kept.append(flat[start:end])
        last = end
    return "".join(parts) + flat[last:], kept


def _paste(outer: str, kept: list[str]) -> str:
    return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], outer)


def _unqualified(query: str) -> str:
    froms = list(_SINGLE_FROM.finditer(query))
    if len(froms) != 1 or re.search(r"\bJOIN\b|\bFROM\s+[^()]*?,", query, re.IGNORECASE):
        return query
    names = {froms[0].group(1)}
    alias = froms[0].group(2)
    if alias and alias.lower() not in _NOT_ALIAS:
        names.add(alias)
    for name in names:
        qualifier = re.compile(rf"(?<![\w.\"]){re.escape(name)}\.(?={_NAME})")
        query = qualifier.sub("", query)
    return query


def _table_key(row: Mapping[str, Any]) -> Key:
    return ("table", qualified(row["schema"], row["table"]))


def snapshot(catalog: Mapping[str, Any]) -> Snapshot:
    """The catalog's rows as objects keyed by kind and name."""
    made: list[SchemaObject] = []
    made += [SchemaObject("schema", ident(r["name"]), {}) for r in catalog["schemas"]]
    made += [SchemaObject("extension", ident(r["name"]), {}) for r in catalog["extensions"]]
    for r in catalog["relations"]:
        if r["kind"] == "S":
            continue  # sequences come with their options below
        kind = RELATION_KINDS.get(r["kind"], "table")
        attributes = {
            "row level security": str(r["row_security"]).lower(),
            "forced row level security": str(r["force_row_security"]).lower(),
            "unlogged": str(r["unlogged"]).lower(),
        }
        if r["definition"] is not None:
            attributes = {"definition": view_definition(r["definition"])}
        made.append(SchemaObject(kind, qualified(r["schema"], r["name"]), attributes, spec=r))
    for r in catalog["columns"]:
        attributes = {
            "type": r["type"],
            "not null": str(r["not_null"]).lower(),
            "default": _flat(r["default"]) if not r["generated"] else "",
            "generated": _flat(r["default"]) if r["generated"] else "",
            "identity": {"a": "always", "d": "by default"}.get(r["identity"] or "", ""),
            "collation": r["collation"] or "",
        }
        name = f"{qualified(r['schema'], r['table'])}.{ident(r['name'])}"
        made.append(SchemaObject("column", name, attributes, _table_key(r), r))
    for kind in ("indexes", "constraints", "triggers"):
        for r in catalog[kind]:
            table = qualified(r["schema"], r["table"])
            single = {"indexes": "index", "constraints": "constraint", "triggers": "trigger"}[kind]
            name = (
                qualified(r["schema"], r["name"])
                if single == "index"
                else f"{ident(r['name'])} on {table}"
            )
            attributes = {"definition": _flat(r["definition"])}
            made.append(SchemaObject(single, name, attributes, _table_key(r), r))
    for r in catalog["policies"]:
        attributes = {
            "command": r["command"],
            "permissive": str(r["permissive"]).lower(),
            "roles": ", ".join(r["roles"] or []),
            "using": _flat(r["using"]),
            "check": _flat(r["check"]),
        }
        name = f"{ident(r['name'])} on {qualified(r['schema'], r['table'])}"
        made.append(SchemaObject("policy", name, attributes, _table_key(r), r))
    for r in catalog["sequences"]:
        attributes = {
            key: str(r[key]).lower() for key in ("type", "start", "increment", "min", "max")
        }
        attributes |= {"cache": str(r["cache"]), "cycle": str(r["cycle"]).lower()}
        made.append(SchemaObject("sequence", qualified(r["schema"], r["name"]), attributes, spec=r))
    for r in catalog["functions"]:
        kind = FUNCTION_KINDS.get(r["kind"], "function")
        name = f"{qualified(r['schema'], r['name'])}({r['arguments']})"
        made.append(SchemaObject(kind, name, {"definition": _flat(r["definition"])}, spec=r))
    for r in catalog["types"]:
        kind = "domain" if r["kind"] == "d" else "type"
        attributes = {
            "labels": json.dumps(r["labels"] or []),
            "base": r["base"] or "",
            "not null": str(r["not_null"]).lower() if kind == "domain" else "",
            "default": _flat(r["default"]),
            "checks": "; ".join(r["checks"] or []),
            "attributes": ", ".join(r["attributes"] or []),
            "subtype": r["subtype"] or "",
        }
        made.append(SchemaObject(kind, qualified(r["schema"], r["name"]), attributes, spec=r))
    made += _grants(catalog["grants"])
    made += _default_privileges(catalog["default_privileges"])
    objects: dict[Key, SchemaObject] = {}
    for obj in made:
        objects[obj.key] = obj
    return Snapshot(str(catalog.get("server_version") or ""), objects)


def grant_target(row: Mapping[str, Any]) -> str:
    """`table public.t`, `column public.t (c)`, `function public.f(integer)`, ..."""
    kind = row["kind"]
    if kind == "schema":
        return f"schema {ident(row['name'])}"
    target = qualified(row["schema"], row["name"])
    if kind == "column":
        return f"column {target} ({ident(row['part'])})"
    if kind in ("function", "procedure"):
        return f"{kind} {target}({row['part'] or ''})"
    return f"{kind} {target}"


def _grants(rows: Iterable[Mapping[str, Any]]) -> list[SchemaObject]:
    made = []
    for r in rows:
        if r["privilege"] in VERSION_NOISE:
            continue
        name = f"{r['privilege']} on {grant_target(r)} to {_grantee(r['grantee'])}"
        parent: Key | None = None
        if r["kind"] in ("table", "view", "materialized view", "column"):
            of = r["kind"] if r["kind"] in ("view", "materialized view") else "table"
            parent = (of, qualified(r["schema"], r["name"]))
        made.append(
            SchemaObject(
                "grant", name, {"with grant option": str(r["grantable"]).lower()}, parent, r
            )
        )
    return made


def _grantee(name: str) -> str:
    return "PUBLIC" if name == "PUBLIC" else ident(name)


def _default_privileges(rows: Iterable[Mapping[str, Any]]) -> list[SchemaObject]:
    made = []
    for r in rows:
        if r["privilege"] in VERSION_NOISE:
            continue
        objects = DEFAULT_OBJECTS.get(r["objects"], r["objects"])
        where = f" in schema {ident(r['schema'])}" if r["schema"] else ""
        name = (
            f"{r['privilege']} on new {objects.lower()} of {ident(r['role'])}{where} to "
            f"{_grantee(r['grantee'])}"
        )
        attributes = {"with grant option": str(r["grantable"]).lower()}
        made.append(SchemaObject("default privilege", name, attributes, spec=r))
    return made


@dataclass(frozen=True)
class Difference:
    """One object found on one side only, or on both with different attributes."""

    kind: str
    name: str
    expected: SchemaObject | None
    live: SchemaObject | None
    changed: tuple[tuple[str, str, str], ...] = ()
    """(attribute, expected, live) where both sides have the object."""
    children: int = 0
    """Objects of a table found on one side only, folded into its line."""

    def line(self) -> str:
        if self.live is None:
            return (
                f"- {self.kind} {self.name}: made by the migrations, missing from the live "
                f"database{self._folded()}"
            )
        if self.expected is None:
            return (
                f"+ {self.kind} {self.name}: in the live database, made by no "
                f"migration{self._folded()}"
            )
        parts = "; ".join(
            f"{attribute} {_shown(expected)} expected, {_shown(live)} live"
            for attribute, expected, live in self.changed
        )
        return f"~ {self.kind} {self.name}: {parts}"

    def _folded(self) -> str:
        return (
            f" (with its {self.children} columns, indexes, constraints and grants)"
            if self.children
            else ""
        )


def _shown(value: str) -> str:
    return f"'{value}'" if value else "(none)"


def compare(expected: Snapshot, live: Snapshot) -> list[Difference]:
    """Every object that differs, in the order of KINDS then name. The objects of a table
    present on one side only are folded into the table's line."""
    only_expected = expected.objects.keys() - live.objects.keys()
    only_live = live.objects.keys() - expected.objects.keys()
    differences: list[Difference] = []
    folded = _folded(expected, only_expected) | _folded(live, only_live)
    for key in sorted(expected.objects.keys() | live.objects.keys(), key=_order):
        if key in folded:
            continue
        want, have = expected.objects.get(key), live.objects.get(key)
        children = _count_children(key, expected if have is None else live, folded)
        if want is None or have is None:
            differences.append(Difference(key[0], key[1], want, have, children=children))
            continue
        changed = tuple(
            (attribute, want.attributes.get(attribute, ""), have.attributes.get(attribute, ""))
            for attribute in sorted(want.attributes.keys() | have.attributes.keys())
            if want.attributes.get(attribute, "") != have.attributes.get(attribute, "")
        )
        if changed:
            differences.append(Difference(key[0], key[1], want, have, changed))
    return differences


def _folded(snapshot: Snapshot, only: set[Key]) -> set[Key]:
    """Objects of tables that exist on this side only: reported with their table."""
    return {
        key
        for key in only
        if (parent := snapshot.objects[key].parent) is not None and parent in only
    }


def _count_children(key: Key, snapshot: Snapshot, folded: set[Key]) -> int:
    return sum(
        1 for other in folded if other in snapshot.objects and snapshot.objects[other].parent == key
    )


def _order(key: Key) -> tuple[int, str]:
    return (KINDS.index(key[0]) if key[0] in KINDS else len(KINDS), key[1])


def children_of(key: Key, snapshot: Snapshot) -> list[SchemaObject]:
    """What belongs to a table, in the order that makes it."""
    found = [obj for obj in snapshot.objects.values() if obj.parent == key]
    return sorted(found, key=lambda obj: _order(obj.key))


def hint_statements(differences: Sequence[Difference], expected: Snapshot) -> list[str]:
    """The statements for every difference: drops (in the reverse order of KINDS), then
    changes, then what is missing (a missing table with what belongs to it)."""
    drops = [d.live for d in differences if d.expected is None and d.live is not None]
    lines: list[str] = []
    for obj in reversed(drops):
        lines += hints.drop(obj)
    for d in differences:
        if d.live is not None and d.expected is not None:
            lines += hints.alter(d.expected, d.live, d.changed)
    for d in differences:
        if d.live is None and d.expected is not None:
            lines += hints.create(d.expected, children_of(d.expected.key, expected))
    return lines
