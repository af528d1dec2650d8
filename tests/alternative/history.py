"""A migration history written as another team would have written it, from a seed.

Valid PostgreSQL that builds a schema step by step (tables, columns, indexes, foreign keys,
seed rows, views), in versioned files of several naming styles across subfolders, with
repeatables, callbacks, a non-transactional index, a file of comments alone, placeholders
and SQL that squawk flags but a database applied long ago. No file is named like one of this
repository's. What it builds by hand (no Flyway) is `hand_built_sql`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from components.migrations.placeholders import replace_placeholders

WORDS = [
    "ledger",
    "account",
    "invoice",
    "payment",
    "customer",
    "vendor",
    "shipment",
    "parcel",
    "warehouse",
    "stock",
    "quote",
    "order",
    "fill",
    "venue",
    "route",
    "broker",
    "desk",
    "book",
    "trade",
    "position",
    "limit",
    "exposure",
    "alert",
    "rule",
    "tier",
    "region",
    "market",
    "session",
    "tick",
    "candle",
    "report",
    "audit",
    "batch",
    "job",
    "queue",
    "token",
]
FOLDERS = ("", "", "", "core/", "2021/q3/", "reporting/", "ops/hotfixes/")
CALLBACKS = {
    "beforeMigrate": "-- Runs before every migrate.\nSELECT set_config('application_name', "
    "'schema-migrations', false);\n",
    "afterMigrate": "-- Runs after every migrate: refresh planner statistics of our tables.\n"
    "SELECT count(*) FROM pg_class WHERE relkind = 'r';\n",
}


@dataclass
class _Table:
    name: str
    columns: list[str] = field(default_factory=list)
    indexed: bool = False


@dataclass
class History:
    """The files written, the placeholder values that make them run, and the hand-built SQL."""

    directory: Path
    seed: int
    values: dict[str, str]
    """Every placeholder the scripts replace, with a value: numbers among them, as a team's
    old values file would hold them."""
    versioned: list[str]
    repeatables: list[str]
    callbacks: list[str]
    literal: list[str]
    """Scripts whose `${...}` text is applied as written (placeholderReplacement=false)."""
    _statements: list[tuple[str, str]] = field(default_factory=list, repr=False)

    def hand_built_sql(self) -> str:
        """The schema built without Flyway: every versioned and repeatable script's SQL, values
        replaced, in order, as one transaction can run it (an index built at once, not
        CONCURRENTLY)."""
        parts = []
        for path, text in self._statements:
            sql = text if path in self.literal else replace_placeholders(text, self.values)
            parts.append(f"-- {path}\n" + sql.replace("CONCURRENTLY ", ""))
        return "\n".join(parts)

    @property
    def highest(self) -> str:
        return _version_of(self.versioned[-1])


def _version_of(path: str) -> str:
    name = path.rpartition("/")[2]
    return name[1:].partition("__")[0].replace("_", ".")


def write_history(
    directory: Path,
    seed: int,
    *,
    versioned: int = 40,
    placeholders: int = 8,
    identifiers: bool = True,
    prefix: str = "",
) -> History:
    """Write a history of `versioned` files (and repeatables, callbacks) into `directory`.

    `placeholders`: how many distinct names the scripts use. With `identifiers`, some stand
    where SQL needs them replaced (a table name's prefix, a number); without, they appear only
    in string literals and comments, so the scripts are valid whether a stack replaces them
    or not. `prefix` starts every description (to keep two histories apart).
    """
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    names = [
        f"{rng.choice(WORDS)}{i}{rng.choice(['Period', 'Name', 'Code', 'Limit', ''])}"
        for i in range(placeholders)
    ]
    values = {name: _value(rng, name) for name in names}
    if identifiers:
        values["tablePrefix"] = "ts"
    history = History(directory, seed, values, [], [], [], [])
    steps = _Steps(rng, names, values, identifiers)
    tables = steps.tables
    major, minor = rng.randint(1, 3), 0
    width = rng.choice([1, 1, 3])
    for index in range(versioned):
        if index and minor < 9 and rng.random() < 0.2:
            minor += 1
            version = f"{str(major).zfill(width)}_{minor}"
        else:
            major, minor = major + (1 if index else 0), 0
            version = str(major).zfill(width)
        sql, description = steps.next(index)
        folder = rng.choice(FOLDERS)
        path = f"{folder}V{version}__{prefix}{description}.sql"
        history.versioned.append(path)
        _write(directory / path, sql)
        history._statements.append((path, sql))
        if index == versioned // 2:  # an index built without blocking, outside a transaction
            major += 1
            table = tables[0]
            path = f"V{str(major).zfill(width)}__{prefix}index_{table.name}_concurrently.sql"
            sql = (
                f"-- Built without blocking writes: its own migration, no transaction.\n"
                f"SET lock_timeout = '10s';\n"
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_{table.name}_id_desc "
                f"ON {table.name} (id DESC);\n"
                f"RESET lock_timeout;\n"
            )
            _write(directory / path, sql)
            _write(directory / f"{path}.conf", "executeInTransaction=false\n")
            history.versioned.append(path)
            history._statements.append((path, sql))
        if index == versioned // 3:  # a change reverted by hand long ago: comments alone
            major += 1
            path = f"V{str(major).zfill(width)}__{prefix}reverted_{rng.choice(WORDS)}.sql"
            sql = "-- Reverted before release; kept because Flyway recorded it.\n"
            _write(directory / path, sql)
            history.versioned.append(path)
    # Every placeholder used at least once, in a seed row of a settings table.
    major += 1
    rows = ",\n  ".join(f"('{name}', '${{{name}}}')" for name in names)
    sql = (
        f"CREATE TABLE IF NOT EXISTS app_settings (k text PRIMARY KEY, v text);\n"
        f"INSERT INTO app_settings (k, v) VALUES\n  {rows}\nON CONFLICT (k) DO NOTHING;\n"
        if names
        else "CREATE TABLE IF NOT EXISTS app_settings (k text PRIMARY KEY, v text);\n"
    )
    path = f"V{str(major).zfill(width)}__{prefix}seed_app_settings.sql"
    _write(directory / path, sql)
    history.versioned.append(path)
    history._statements.append((path, sql))
    # Text that looks like a placeholder but is data: this script opts out of replacement.
    major += 1
    path = f"reporting/V{str(major).zfill(width)}__{prefix}report_templates.sql"
    sql = (
        "CREATE TABLE report_templates (id bigint PRIMARY KEY, body text NOT NULL);\n"
        "INSERT INTO report_templates VALUES (1, 'Dear ${customer}, your ${period} report');\n"
    )
    _write(directory / path, sql)
    _write(directory / f"{path}.conf", "placeholderReplacement=false\n")
    history.versioned.append(path)
    history.literal.append(path)
    history._statements.append((path, sql))
    for number, table in enumerate(rng.sample(tables, k=min(4, len(tables)))):
        columns = ", ".join(table.columns[:3])
        note = f"'{rng.choice(names)}: ${{{rng.choice(names)}}}'" if names else "'view'"
        path = f"{rng.choice(FOLDERS)}R__{prefix}{table.name}_view_{number}.sql"
        sql = (
            f"CREATE OR REPLACE VIEW {table.name}_v{number} AS\n"
            f"  SELECT {columns}, {note}::text AS note FROM {table.name};\n"
        )
        _write(directory / path, sql)
        history.repeatables.append(path)
        history._statements.append((path, sql))
    for event, sql in CALLBACKS.items():
        name = f"{event}__{prefix}statistics.sql" if prefix else f"{event}.sql"
        _write(directory / name, sql)
        history.callbacks.append(name)
    return history


def _value(rng: random.Random, name: str) -> str:
    """Numbers for most (what needs `--type string`), words for the rest; SQL-safe."""
    if rng.random() < 0.6:
        return str(rng.randint(1, 500))
    return rng.choice(WORDS) + "-" + name.lower()[:6]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


class _Steps:
    """One migration at a time: its SQL and description, over the tables made so far."""

    def __init__(
        self, rng: random.Random, names: list[str], values: dict[str, str], identifiers: bool
    ) -> None:
        self.rng, self.names, self.identifiers = rng, names, identifiers
        self.numbers = [n for n in names if values[n].isdigit()]
        self.used = dict.fromkeys(names, 0)
        self.tables: list[_Table] = []

    def placeholder(self, numeric: bool = False) -> str:
        """The least used name (one whose value is a number where SQL needs one)."""
        fitting = self.numbers if numeric else self.names
        if not fitting:
            return "0" if numeric else "none"
        name = min(fitting, key=lambda n: (self.used[n], self.rng.random()))
        self.used[name] += 1
        return f"${{{name}}}"

    def next(self, index: int) -> tuple[str, str]:
        rng = self.rng
        if len(self.tables) < 3 or rng.random() < 0.3:
            return self.create(index)
        kind = rng.choice(["column", "index", "foreign", "rows", "type", "comment", "drop"])
        step = getattr(self, kind)
        sql, description = step(index, rng.choice(self.tables))
        return str(sql), str(description)

    def create(self, index: int) -> tuple[str, str]:
        word = self.rng.choice(WORDS)
        name = f"{word}_{index}"
        prefixed = self.identifiers and self.rng.random() < 0.3
        self.tables.append(_Table(f"ts_{name}" if prefixed else name, ["id", "name", "created_at"]))
        table = f"${{tablePrefix}}_{name}" if prefixed else name
        return (
            f"-- {word}s, as the {self.rng.choice(WORDS)} team needed them\n"
            f"CREATE TABLE {table} (\n"
            f"  id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
            f"  name varchar(100) NOT NULL DEFAULT '{self.placeholder()}',\n"
            f"  created_at timestamp DEFAULT now()\n"
            f");\n"
        ), f"create_{name}"

    def column(self, index: int, table: _Table) -> tuple[str, str]:
        column = f"{self.rng.choice(WORDS)}_{index}"
        table.columns.append(column)
        if self.identifiers:
            definition = f"integer NOT NULL DEFAULT {self.placeholder(numeric=True)}"
        else:
            definition = f"text NOT NULL DEFAULT '{self.placeholder()}'"
        sql = f"ALTER TABLE {table.name} ADD COLUMN {column} {definition};\n"
        return sql, f"add_{column}_to_{table.name}"

    def index(self, index: int, table: _Table) -> tuple[str, str]:
        column = self.rng.choice(table.columns)
        sql = f"CREATE INDEX idx_{table.name}_{column}_{index} ON {table.name} ({column});\n"
        return sql, f"index_{table.name}_{column}"

    def foreign(self, index: int, table: _Table) -> tuple[str, str]:
        other = self.rng.choice(self.tables)
        column = f"{other.name}_id"
        if column in table.columns:
            column = f"{column}_{index}"
        table.columns.append(column)
        return (
            f"ALTER TABLE {table.name} ADD COLUMN {column} integer;\n"
            f"ALTER TABLE {table.name} ADD CONSTRAINT fk_{table.name}_{index} "
            f"FOREIGN KEY ({column}) REFERENCES {other.name} (id);\n"
        ), f"link_{table.name}_to_{other.name}"

    def rows(self, _index: int, table: _Table) -> tuple[str, str]:
        values = f"('{self.placeholder()}'), ('{self.rng.choice(WORDS)}')"
        return f"INSERT INTO {table.name} (name) VALUES {values};\n", f"seed_{table.name}"

    def type(self, _index: int, table: _Table) -> tuple[str, str]:
        sql = f"ALTER TABLE {table.name} ALTER COLUMN name TYPE text;\n"
        return sql, f"widen_{table.name}_name"

    def comment(self, _index: int, table: _Table) -> tuple[str, str]:
        sql = f"COMMENT ON TABLE {table.name} IS 'Kept for {self.placeholder()} reports';\n"
        return sql, f"describe_{table.name}"

    def drop(self, _index: int, table: _Table) -> tuple[str, str]:
        added = [c for c in table.columns if re.fullmatch(r"[a-z]+_\d+", c)]
        if not added:
            return f"ANALYZE {table.name};\n", f"analyze_{table.name}"
        column = self.rng.choice(added)
        table.columns.remove(column)
        return f"ALTER TABLE {table.name} DROP COLUMN {column};\n", f"drop_{column}"
