"""The declared database made real on a throwaway PostgreSQL, and the grants Job run."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

from psycopg import sql

from components.access.scram import verifier
from components.contract import PASSWORD_KEY, VERIFIER_KEY, credentials_secret_name
from components.settings import Flavor
from standins.flyway_cli import DEFAULT_TIMEOUT
from standins.postgres import PostgresServer
from tests.contract.harness.cloudnative_pg import create_managed_roles
from tests.contract.harness.model import (
    LOCAL_SSL_MODE,
    DeclaredJob,
    HarnessError,
    PreparedDatabase,
    _password,
    role_passwords,
)
from tests.contract.harness.provider import Provider, postgresql_resources


def initialise_database(server: PostgresServer, job: DeclaredJob) -> PreparedDatabase:
    """Create the database as its flavor does, before any role is managed.

    bitnami: what the image does on first start (the owner LOGIN CREATEDB, the database it
    owns, `public` handed to it), then every init script in name order through psql, as the
    image's init-scripts user, errors ignored as the image ignores them.
    cloudnative-pg: what the operator's initdb does (the owner as a plain LOGIN role, the
    database owned by it). external: the database exists, owned by the admin role.
    """
    setup = job.setup
    database = sql.Identifier(setup.database)
    passwords: dict[str, str] = {server.superuser: server.password}
    errors: list[str] = []
    if setup.flavor is Flavor.EXTERNAL:
        if setup.admin != server.superuser:
            passwords[setup.admin] = _password()
            verb = "ALTER" if server.role_exists(setup.admin) else "CREATE"
            server.query(
                sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER CREATEDB CREATEROLE PASSWORD {}").format(
                    sql.Identifier(setup.admin), sql.Literal(passwords[setup.admin])
                )
            )
        server.create_database(setup.database, owner=setup.admin)
        return PreparedDatabase(setup.database, setup.login, passwords)

    assert setup.owner is not None  # in-cluster flavors always name one
    owner = sql.Identifier(setup.owner)
    passwords[setup.owner] = _password()
    if setup.flavor is Flavor.CLOUDNATIVE_PG:
        server.query(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                owner, sql.Literal(passwords[setup.owner])
            )
        )
        server.query(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, owner))
        return PreparedDatabase(setup.database, setup.login, passwords)

    server.query(sql.SQL("CREATE DATABASE {}").format(database))
    server.query(
        sql.SQL("CREATE ROLE {} WITH LOGIN CREATEDB PASSWORD {}").format(
            owner, sql.Literal(passwords[setup.owner])
        )
    )
    server.query(sql.SQL("GRANT ALL PRIVILEGES ON DATABASE {} TO {}").format(database, owner))
    server.query(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, owner))
    server.query(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(owner), dbname=setup.database)
    for name in sorted(setup.init_scripts):
        assert setup.init_user is not None
        proc = server.psql(
            setup.init_scripts[name],
            dbname=setup.database,
            user=setup.init_user,
            password=passwords[setup.init_user],
        )
        if proc.returncode != 0:
            raise HarnessError(
                f"init script {name} did not run as {setup.init_user}: {proc.stderr}"
            )
        errors.extend(f"{name}: {error}" for error in psql_errors(proc.stderr))
    return PreparedDatabase(setup.database, setup.login, passwords, tuple(errors))


def psql_errors(stderr: str) -> list[str]:
    """psql's ERROR messages (with --echo-errors, each with the first line of its statement)."""
    errors: list[str] = []
    for block in re.split(r"\n(?=(?:ERROR|FATAL|WARNING|NOTICE|INFO|LOG|DEBUG):  )", stderr):
        if block.startswith("ERROR:"):
            message = block.splitlines()[0].removeprefix("ERROR:").strip()
            statement = re.search(r"^STATEMENT:\s+(.*)$", block, re.MULTILINE)
            errors.append(f"{message} [{statement.group(1)}]" if statement else message)
    return errors


def apply_roles(
    server: PostgresServer, job: DeclaredJob, prepared: PreparedDatabase
) -> PreparedDatabase:
    """The roles as the stack declares them managed: from inside the cluster by the operator's
    managed roles and the declared grants Job, run twice (it must be idempotent); or by every
    pulumi-postgresql resource the program declares, in its order, with the statements
    pulumi-postgresql runs, as the user its provider logs in as.

    Returns `prepared` with the roles' local passwords; unchanged when roles are not managed.
    """
    model = job.setup.model
    if model is None:
        return prepared
    if job.setup.grants is not None:
        prepared = create_managed_roles(server, job, prepared)
        for attempt in ("first", "second"):
            proc = run_grants_job(job, server, prepared)
            if proc.returncode != 0:
                raise HarnessError(f"the grants Job's {attempt} run failed: {proc.stderr}")
        return prepared
    if job.run is None:
        raise HarnessError("the job was not read from a program run")
    prepared = role_passwords(job, prepared)
    provider = Provider.declared(job.run, server, prepared.passwords[job.setup.admin])
    for resource in postgresql_resources(job.run.resources):
        provider.create(resource, prepared.passwords)
    return prepared


def prepare_database(server: PostgresServer, job: DeclaredJob) -> PreparedDatabase:
    """The database as declared: created as its flavor does, then its roles where managed."""
    return apply_roles(server, job, initialise_database(server, job))


# -- the in-cluster grants Job ------------------------------------------------------------------


def grants_environment(  # noqa: PLR0912 (one branch per substituted variable)
    job: DeclaredJob,
    server: PostgresServer,
    prepared: PreparedDatabase,
    script_root: Path,
    scratch: Path,
) -> dict[str, str]:
    """The grants container's environment with only the cluster-specific parts substituted:
    the local server for PGHOST/PGPORT, `disable` for PGSSLMODE (the CA file is then unread),
    local passwords for every secretKeyRef (the admin's, and each role's from its credentials
    Secret, or its SCRAM verifier, made from the local password as the program makes it), the
    scratch directory for HOME. Anything else passes unchanged."""
    grants, setup = job.setup.grants, job.setup
    assert grants is not None
    assert setup.model is not None
    by_secret = {
        credentials_secret_name(setup.database, role.purpose): role.name
        for role in setup.model.roles
    }
    env: dict[str, str] = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    for entry in grants.env:
        name = entry["name"]
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            role = by_secret.get(ref["name"])
            if name == "PGPASSWORD":
                env[name] = prepared.passwords[setup.admin]
            elif role is not None and ref["key"] == PASSWORD_KEY:
                env[name] = prepared.passwords[role]
            elif role is not None and ref["key"] == VERIFIER_KEY:
                env[name] = verifier(role, prepared.passwords[role])
            else:
                raise HarnessError(f"{name} reads {ref}, which the harness cannot stand in for")
        elif "value" not in entry:
            raise HarnessError(f"env var {name} has no literal value: {entry}")
        elif name == "PGHOST":
            env[name] = server.host
        elif name == "PGPORT":
            env[name] = str(server.port)
        elif name == "PGSSLMODE":
            env[name] = LOCAL_SSL_MODE
        elif name == "PGSSLROOTCERT":
            if PurePosixPath(entry["value"]).parent.as_posix() not in grants.mounts:
                raise HarnessError(f"PGSSLROOTCERT {entry['value']} is not a mounted file")
            env[name] = str(scratch / "unused-ca.crt")
        elif name == "HOME":
            if grants.mounts.get(entry["value"]) != "emptyDir":
                raise HarnessError(f"HOME {entry['value']} is not an emptyDir of the pod")
            env[name] = str(scratch)
        else:
            env[name] = str(entry["value"])
    if env.get("PGUSER") != setup.admin:
        raise HarnessError(f"the grants Job logs in as {env.get('PGUSER')}, not {setup.admin}")
    return env


def lay_out_script(job: DeclaredJob, root: Path) -> Path:
    """The script where the pod would read it, under `root`; returns its local path."""
    grants = job.setup.grants
    assert grants is not None
    local = root.joinpath(*PurePosixPath(grants.script_path).relative_to("/").parts)
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(grants.script, encoding="utf-8")
    return local


def run_grants_job(
    job: DeclaredJob, server: PostgresServer, prepared: PreparedDatabase
) -> subprocess.CompletedProcess[str]:
    """The Job's psql command line, exactly, with the local psql and the substituted env."""
    grants = job.setup.grants
    assert grants is not None
    if not grants.command or grants.command[0] != "psql":
        raise HarnessError(f"the grants Job runs {grants.command}, not psql")
    with tempfile.TemporaryDirectory(prefix="grants-pod-") as pod:
        root = Path(pod)
        local = lay_out_script(job, root / "volumes")
        (root / "tmp").mkdir()
        env = grants_environment(job, server, prepared, root / "volumes", root / "tmp")
        argv = [str(server.bindir / "psql")]
        for arg in grants.command[1:]:
            if arg == f"--file={grants.script_path}":
                arg = f"--file={local}"  # noqa: PLW2901 (the one substituted argument)
            argv.append(arg)
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=DEFAULT_TIMEOUT, check=False
        )
