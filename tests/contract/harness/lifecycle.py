"""`make destroy` then `make up`, as far as the database sees them.

`destroy` runs `pulumi destroy --exclude-protected`: the CLI keeps every protected resource
and everything it depends on (its parents, its provider, its inputs' resources,
transitively) and deletes the rest, dependents first. `destroyed` computes that set from
what the program registered, as the CLI's `getProtectedExcludes` does from the state. The
database then sees pulumi-postgresql's Delete of each of its resources in that set, and
nothing of the grants Job (deleting a Job changes nothing in the database).

The next `up` creates again what was deleted: pulumi-postgresql's Create of those
resources, new passwords where their generated password was deleted (the grants Job, or
CloudNativePG, sets them again), the grants Job once more where it runs, Flyway's Job and
the backup before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from psycopg import sql

from components.settings import Flavor
from standins.postgres import PostgresServer
from tests.contract.harness.database import run_grants_job
from tests.contract.harness.model import (
    CLUSTER_TYPE,
    RELEASE_TYPE,
    DeclaredJob,
    HarnessError,
    PreparedDatabase,
    _password,
)
from tests.contract.harness.provider import Provider, postgresql_resources
from tests.program import ProgramRun, Recorded

PASSWORD_TYPE: Final = "random:index/randomPassword:RandomPassword"


def _provider_urn(reference: str) -> str:
    """`<urn>::<id>` -> the URN."""
    return reference.rsplit("::", 1)[0] if reference else ""


def kept_by_destroy(run: ProgramRun) -> set[str]:
    """The URNs `destroy --exclude-protected` keeps: each protected resource and, transitively,
    its parent, its provider and every resource it depends on."""
    by_urn = {r.urn: r for r in run.resources}
    kept: set[str] = set()
    pending = [r.urn for r in run.resources if r.protect]
    while pending:
        urn = pending.pop()
        if urn in kept or urn not in by_urn:
            continue
        kept.add(urn)
        resource = by_urn[urn]
        pending.extend([resource.parent, _provider_urn(resource.provider), *resource.dependencies])
    return kept


def destroyed(run: ProgramRun) -> list[Recorded]:
    """What `make destroy` deletes, in the order it may (dependents before what they use)."""
    kept = kept_by_destroy(run)
    return [r for r in reversed(run.resources) if r.urn not in kept]


@dataclass(frozen=True)
class Destroyed:
    """What a destroy deleted, and the statements the database saw."""

    resources: tuple[Recorded, ...]
    statements: tuple[str, ...]

    def deleted(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]


def destroy(server: PostgresServer, job: DeclaredJob, prepared: PreparedDatabase) -> Destroyed:
    """`make destroy` as the database sees it. Refuses a stack whose destroy deletes the
    database itself: there is nothing left for an `up` to find."""
    run = _run(job)
    gone = destroyed(run)
    if job.setup.flavor is not Flavor.EXTERNAL:
        record = [r for r in gone if r.type in (RELEASE_TYPE, CLUSTER_TYPE)]
        if any(not r.retain_on_delete for r in record):
            raise HarnessError(
                f"destroy deletes the {job.setup.flavor.value} database itself "
                f"({[r.name for r in record]}): protect the stack to keep its data"
            )
    statements: list[str] = []
    owned = postgresql_resources(gone)
    if owned:
        provider = Provider.declared(run, server, prepared.passwords[job.setup.admin])
        for resource in owned:  # already dependents first
            provider.delete(resource)
        statements = provider.statements
    return Destroyed(tuple(gone), tuple(statements))


def renewed_roles(job: DeclaredJob, gone: Sequence[Recorded]) -> list[str]:
    """The roles whose generated password was deleted: the next `up` generates a new one."""
    model = job.setup.model
    if model is None:
        return []
    passwords = {r.name for r in gone if r.type == PASSWORD_TYPE}
    return [
        role.name
        for role in model.roles
        if any(name.endswith(f"-{role.purpose.value}-password") for name in passwords)
    ]


def up_again(
    server: PostgresServer, job: DeclaredJob, prepared: PreparedDatabase, gone: Destroyed
) -> PreparedDatabase:
    """The roles' part of the next `up`: what was deleted is created again in the program's
    order, with new passwords where they were deleted; the grants Job runs (twice, as a
    retried Job would). Flyway's Job and the backup are the caller's to run."""
    run = _run(job)
    renewed = renewed_roles(job, gone.resources)
    prepared = replace(
        prepared, passwords={**prepared.passwords, **{name: _password() for name in renewed}}
    )
    again = list(reversed(postgresql_resources(gone.resources)))
    if again:
        provider = Provider.declared(run, server, prepared.passwords[job.setup.admin])
        for resource in again:
            provider.create(resource, prepared.passwords)
    if job.setup.grants is not None:
        if job.setup.managed_roles:
            # CloudNativePG applies a changed password Secret itself (`cnpg.io/reload`).
            for name in renewed:
                server.query(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(name), sql.Literal(prepared.passwords[name])
                    )
                )
        for attempt in ("first", "second"):
            proc = run_grants_job(job, server, prepared)
            if proc.returncode != 0:
                raise HarnessError(
                    f"after destroy, the grants Job's {attempt} run failed: {proc.stderr}"
                )
    return prepared


def _run(job: DeclaredJob) -> ProgramRun:
    if job.run is None:
        raise HarnessError("the job was not read from a program run")
    return job.run
