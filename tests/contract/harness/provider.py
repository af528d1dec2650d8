"""What pulumi-postgresql 3.18.2 runs against the database, statement for statement.

pulumi-postgresql 3.18.x bridges terraform-provider-postgresql at commit ff936b9 (June
2026). Its binary cannot be built here (the Go module proxy refuses it), so this module
issues the SQL that provider's Create and Delete of each resource type the program declares
(`Role`, `GrantRole`, `Grant`, `DefaultPrivileges`) issue, in the same transactions, as the
same user, with the same membership dance for a user that is not a superuser
(`withRolesGranted`): written from the provider's source, not copied from it. Reads the
provider makes to refresh its state change nothing and are left out.

Each resource's inputs come from what the program registered under mocks, so what runs is
what the program declares; only the passwords are local stand-ins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg

from standins.postgres import PostgresServer
from tests.contract.harness.model import (
    DEFAULT_PRIVILEGES_TYPE,
    GRANT_ROLE_TYPE,
    GRANT_TYPE,
    PROVIDER_TYPE,
    ROLE_TYPE,
    HarnessError,
)
from tests.program import ProgramRun, Recorded

PROVIDER_VERSION: Final = "3.18.2"
UPSTREAM_COMMIT: Final = "ff936b9548c1076f498523a2bd116915ff977142"
"""terraform-provider-postgresql as pulumi-postgresql 3.18.x vendors it."""
BOOL_ATTRIBUTES: Final = (
    ("superuser", "SUPERUSER"),
    ("createDatabase", "CREATEDB"),
    ("createRole", "CREATEROLE"),
    ("inherit", "INHERIT"),
    ("login", "LOGIN"),
    ("bypassRowLevelSecurity", "BYPASSRLS"),
    ("replication", "REPLICATION"),
)
"""The order in which the provider spells a role's attributes, and their schema defaults
below (inherit defaults to true, the others to false)."""

Txn = psycopg.Connection[Any]


def q(name: str) -> str:
    """pq.QuoteIdentifier: double quotes, doubled inside."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """pqQuoteLiteral: single quotes doubled (the provider adds the outer quotes)."""
    return value.replace("'", "''")


@dataclass
class Provider:
    """A configured pulumi-postgresql provider: who it logs in as, where, and the SQL it runs.

    `statements` records every statement in order, so tests can show what ran.
    """

    server: PostgresServer
    username: str
    password: str
    database: str
    statements: list[str]

    @classmethod
    def declared(cls, run: ProgramRun, server: PostgresServer, password: str) -> Provider:
        [provider] = run.of_type(PROVIDER_TYPE)
        inputs = provider.inputs
        if inputs.get("databaseUsername"):
            raise HarnessError("the provider sets databaseUsername, which the harness lacks")
        return cls(server, inputs["username"], password, inputs["database"], [])

    # -- plumbing -------------------------------------------------------------------------------

    def _transaction(self, database: str | None, work: Callable[[Txn], None]) -> None:
        """startTransaction: a connection to `database` (the provider's own when None), one
        transaction, committed when `work` returns, rolled back when it raises."""
        with (
            psycopg.connect(
                host=self.server.host,
                port=self.server.port,
                dbname=database or self.database,
                user=self.username,
                password=self.password,
                connect_timeout=10,
            ) as conn,
            conn.transaction(),
        ):
            work(conn)

    def _exec(self, txn: Txn, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        self.statements.append(statement)
        cursor = txn.execute(statement.encode(), params or None)
        return cursor.fetchall() if cursor.description is not None else []

    def _one(self, txn: Txn, query: str, params: Sequence[Any] = ()) -> Any:
        rows = txn.execute(query.encode(), params or None).fetchall()
        return rows[0][0] if rows else None

    def _lock_role(self, txn: Txn, role: str) -> None:
        """pgLockRole."""
        self._exec(txn, "SET statement_timeout = 0")
        self._exec(
            txn,
            "SELECT pg_advisory_xact_lock(oid::bigint) FROM pg_roles WHERE rolname = %s",
            (role,),
        )
        self._exec(
            txn,
            "SELECT pg_advisory_xact_lock(member::bigint) FROM pg_auth_members JOIN pg_roles"
            " ON roleid = pg_roles.oid WHERE rolname = %s",
            (role,),
        )

    def _lock_database(self, txn: Txn, database: str) -> None:
        """pgLockDatabase."""
        self._exec(txn, "SET statement_timeout = 0")
        self._exec(
            txn,
            "SELECT pg_advisory_xact_lock(oid::bigint) FROM pg_database WHERE datname = %s",
            (database,),
        )

    def _is_member(self, txn: Txn, role: str, member: str) -> bool:
        """isMemberOfRole: a membership counts only with SET where PostgreSQL has that option."""
        has_set_option = self._one(
            txn,
            "SELECT 1 FROM information_schema.columns WHERE table_name='pg_auth_members'"
            " AND column_name = 'set_option'",
        )
        query = (
            "SELECT 1 FROM pg_auth_members WHERE pg_get_userbyid(roleid) = %s"
            " AND pg_get_userbyid(member) = %s"
        )
        if has_set_option:
            query += " AND set_option"
        return self._one(txn, query, (role, member)) is not None

    def _grant_membership(self, txn: Txn, role: str, member: str) -> bool:
        """grantRoleMembership."""
        if member == role or self._is_member(txn, role, member):
            return False
        self._exec(txn, f"GRANT {q(role)} TO {q(member)}")
        return True

    def _revoke_membership(self, txn: Txn, role: str, member: str) -> bool:
        """revokeRoleMembership."""
        if member == role or not self._is_member(txn, role, member):
            return False
        self._exec(txn, f"REVOKE {q(role)} FROM {q(member)}")
        return True

    def _is_superuser(self, txn: Txn, role: str) -> bool:
        return bool(self._one(txn, "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)))

    def _with_roles_granted(self, txn: Txn, roles: Iterable[str], work: Callable[[], None]) -> None:
        """withRolesGranted: a user that is not a superuser becomes a member of each role for
        the transaction (undoing a reverse membership meanwhile), then gives it up."""
        roles = list(roles)
        if not roles:
            work()
            return
        current = str(self._one(txn, "SELECT CURRENT_USER"))
        if self._is_superuser(txn, current):
            work()
            return
        granted: list[str] = []
        revoked: list[str] = []
        for role in roles:
            if self._is_superuser(txn, role):
                continue
            if self._revoke_membership(txn, current, role):
                revoked.append(role)
            if self._grant_membership(txn, role, current):
                granted.append(role)
        work()
        for role in granted:
            self._revoke_membership(txn, role, current)
        for role in revoked:
            if self._one(txn, "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)) is not None:
                self._grant_membership(txn, current, role)

    def _roles_to_grant(self, txn: Txn, inputs: Mapping[str, Any]) -> list[str]:
        """getRolesToGrant: the owners of the schema's tables and of the schema itself."""
        object_type = inputs["objectType"]
        if object_type in ("database", "foreign_data_wrapper", "foreign_server"):
            return []
        schema = inputs["schema"]
        owners: list[str] = []
        if object_type != "schema":
            owners = [
                str(row[0])
                for row in txn.execute(
                    b"SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = %s", (schema,)
                ).fetchall()
            ]
        schema_owner = self._one(
            txn,
            "SELECT rolname FROM pg_namespace JOIN pg_roles ON nspowner = pg_roles.oid"
            " WHERE nspname = %s",
            (schema,),
        )
        if schema_owner is None:
            raise HarnessError(f"could not find schema {schema!r} while looking for owner")
        if schema_owner not in owners:
            owners.append(str(schema_owner))
        database_owner = self._one(
            txn,
            "SELECT rolname FROM pg_database JOIN pg_roles ON datdba = pg_roles.oid"
            " WHERE datname = current_database()",
        )
        return [str(database_owner) if o == "pg_database_owner" else o for o in owners]

    # -- resources ----------------------------------------------------------------------------

    def create(self, resource: Recorded, passwords: Mapping[str, str]) -> None:
        self._dispatch(resource, passwords, create=True)

    def delete(self, resource: Recorded) -> None:
        self._dispatch(resource, {}, create=False)

    def _dispatch(self, resource: Recorded, passwords: Mapping[str, str], *, create: bool) -> None:
        inputs = resource.inputs
        if resource.type == ROLE_TYPE:
            if create:
                self._create_role(inputs, passwords[inputs["name"]])
            else:
                self._delete_role(inputs)
        elif resource.type == GRANT_ROLE_TYPE:
            self._grant_role(inputs, create=create)
        elif resource.type == GRANT_TYPE:
            self._grant(inputs, create=create)
        elif resource.type == DEFAULT_PRIVILEGES_TYPE:
            self._default_privileges(inputs, create=create)
        else:
            raise HarnessError(f"the harness does not know what {resource.type} runs")

    def _create_role(self, inputs: Mapping[str, Any], password: str) -> None:
        """resourcePostgreSQLRoleCreate: CREATE ROLE with every option, then its settings."""
        options = [
            "ENCRYPTED" if inputs.get("encryptedPassword", True) else "UNENCRYPTED",
            f"PASSWORD '{literal(password)}'",
            f"VALID UNTIL '{literal(inputs.get('validUntil') or 'infinity')}'",
            f"CONNECTION LIMIT {int(inputs.get('connectionLimit', -1))}",
        ]
        for key, word in BOOL_ATTRIBUTES:
            options.append(word if inputs.get(key, key == "inherit") else f"NO{word}")
        unsupported = {"roles", "searchPaths", "statementTimeout", "assumeRole"} & {
            k for k, v in inputs.items() if v
        }
        if unsupported:
            raise HarnessError(f"the harness does not run what {sorted(unsupported)} add")
        name = inputs["name"]

        def work(txn: Txn) -> None:
            self._exec(txn, f"CREATE ROLE {q(name)} WITH {' '.join(options)}")
            self._exec(txn, f"ALTER ROLE {q(name)} SET search_path TO DEFAULT")

        self._transaction(None, work)

    def _delete_role(self, inputs: Mapping[str, Any]) -> None:
        """resourcePostgreSQLRoleDelete: REASSIGN OWNED to the provider's user and DROP OWNED
        (skipReassignOwned false), then DROP ROLE (skipDropRole false)."""
        name = inputs["name"]

        def work(txn: Txn) -> None:
            self._lock_role(txn, name)
            if not inputs.get("skipReassignOwned", False):

                def hand_over() -> None:
                    self._exec(txn, f"REASSIGN OWNED BY {q(name)} TO {q(self.username)}")
                    self._exec(txn, f"DROP OWNED BY {q(name)}")

                self._with_roles_granted(txn, [name], hand_over)
            if not inputs.get("skipDropRole", False):
                self._exec(txn, f"DROP ROLE {q(name)}")

        self._transaction(None, work)

    def _grant_role(self, inputs: Mapping[str, Any], *, create: bool) -> None:
        """postgresql.GrantRole: revoke then grant (create), revoke (delete)."""
        grant, role = q(inputs["grantRole"]), q(inputs["role"])

        def work(txn: Txn) -> None:
            self._exec(txn, f"REVOKE {grant} FROM {role}")
            if create:
                suffix = " WITH ADMIN OPTION" if inputs.get("withAdminOption") else ""
                self._exec(txn, f"GRANT {grant} TO {role}{suffix}")

        self._transaction(None, work)

    def _target(self, inputs: Mapping[str, Any]) -> str:
        object_type = inputs["objectType"]
        if inputs.get("objects"):
            raise HarnessError("the harness runs grants on all objects of a kind only")
        if object_type == "database":
            return f"DATABASE {q(inputs['database'])}"
        if object_type == "schema":
            return f"SCHEMA {q(inputs['schema'])}"
        if object_type in ("table", "sequence"):
            return f"ALL {object_type.upper()}S IN SCHEMA {q(inputs['schema'])}"
        raise HarnessError(f"the harness does not grant on {object_type}")

    def _grant(self, inputs: Mapping[str, Any], *, create: bool) -> None:
        """resourcePostgreSQLGrantCreate/Delete: REVOKE ALL PRIVILEGES, then GRANT the set,
        as the owners of what is granted on where the user is no superuser."""
        database, role = inputs["database"], inputs["role"]
        target = self._target(inputs)
        privileges = list(inputs.get("privileges") or [])

        def work(txn: Txn) -> None:
            self._lock_role(txn, role)
            if inputs["objectType"] == "database":
                self._lock_database(txn, database)

            def statements() -> None:
                self._exec(txn, f"REVOKE ALL PRIVILEGES ON {target} FROM {q(role)}")
                if create and privileges:
                    suffix = " WITH GRANT OPTION" if inputs.get("withGrantOption") else ""
                    self._exec(
                        txn, f"GRANT {','.join(privileges)} ON {target} TO {q(role)}{suffix}"
                    )

            self._with_roles_granted(txn, self._roles_to_grant(txn, inputs), statements)

        self._transaction(database, work)

    def _default_privileges(self, inputs: Mapping[str, Any], *, create: bool) -> None:
        """resourcePostgreSQLDefaultPrivilegesCreate/Delete, as a member of the owner."""
        owner, role = inputs["owner"], inputs["role"]
        schema = f" IN SCHEMA {q(inputs['schema'])}" if inputs.get("schema") else " "
        kind = f"{str(inputs['objectType']).upper()}S"
        prefix = f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(owner)}{schema}"
        privileges = list(inputs.get("privileges") or [])

        def work(txn: Txn) -> None:
            self._lock_role(txn, owner)

            def statements() -> None:
                self._exec(txn, f"{prefix} REVOKE ALL ON {kind} FROM {q(role)}")
                if create and privileges:
                    self._exec(txn, f"{prefix} GRANT {','.join(privileges)} ON {kind} TO {q(role)}")

            self._with_roles_granted(txn, [owner], statements)

        self._transaction(inputs["database"], work)


def postgresql_resources(resources: Iterable[Recorded]) -> list[Recorded]:
    """The program's pulumi-postgresql resources among `resources`, in their order."""
    types = {ROLE_TYPE, GRANT_ROLE_TYPE, GRANT_TYPE, DEFAULT_PRIVILEGES_TYPE}
    return [r for r in resources if r.type in types]
