"""The in-cluster grants Job where it must fail: the operator has not created the roles.

The Job's exact psql command runs against a real PostgreSQL whose database exists as the
operator's initdb left it, but without the managed roles. It must stop with the names of the
missing roles and the place to look, and change nothing (one transaction).
"""

from __future__ import annotations

import pytest

from standins.postgres import PostgresServer
from tests.contract.harness import (
    declared_job,
    initialise_database,
    role_passwords,
    run_grants_job,
)
from tests.program import names_for

pytestmark = pytest.mark.contract


def test_without_the_operators_roles_the_job_fails_naming_them_and_grants_nothing(
    postgres: PostgresServer,
) -> None:
    # The shortest wait the Job allows: the outcome, not its timing, is under test.
    job = declared_job("staging", {**names_for("staging"), "postgresReleaseTimeoutSeconds": "1"})
    assert job.setup.grants is not None
    prepared = role_passwords(job, initialise_database(postgres, job))
    acl = "SELECT datacl::text FROM pg_database WHERE datname = %s"
    before = postgres.query(acl, (job.database,))

    proc = run_grants_job(job, postgres, prepared)

    assert proc.returncode == 3, proc.stdout + proc.stderr  # psql: the script stopped on error
    assert "still lacks tradestream_migrator, tradestream_app, tradestream_readonly" in proc.stderr
    assert "status.managedRolesStatus" in proc.stderr
    assert postgres.query(acl, (job.database,)) == before


def test_with_the_roles_but_not_the_membership_the_job_waits_for_the_membership(
    postgres: PostgresServer,
) -> None:
    job = declared_job("staging", {**names_for("staging"), "postgresReleaseTimeoutSeconds": "1"})
    prepared = role_passwords(job, initialise_database(postgres, job))
    assert job.setup.model is not None
    for role in job.setup.model.roles:
        postgres.create_role(role.name, prepared.passwords[role.name])

    proc = run_grants_job(job, postgres, prepared)

    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "still lacks tradestream_migrator in tradestream_owner" in proc.stderr
