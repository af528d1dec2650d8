"""Who may do what in the database, and who applies it.

    privileges.py            the three-role model, as data and as SQL (pure)
    credentials.py           each role's password and credentials Secret
    pulumi_roles.py          the model applied by pulumi-postgresql from where `pulumi up` runs
    grants.py, grants_spec   the model applied from inside the cluster by a psql Job, which
                             runs on the Jobs' locked-down pod (`components/jobs/pod.py`)
    createrole.py, scram.py  its script for an admin that is no superuser (a managed
                             service's), and the password verifiers that admin sets

`databaseRolesManagedBy` decides which; this module is the one place that branches on it.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from components.access.credentials import in_cluster_roles
from components.access.grants import RoleGrants, RoleGrantsArgs
from components.access.privileges import (
    PrivilegeModel,
    history_protection_sql,
    privilege_model,
)
from components.access.pulumi_roles import DatabaseRoles, DatabaseRolesArgs
from components.contract import (
    HISTORY_CALLBACK,
    Database,
    DatabaseEndpoint,
    InClusterRoles,
    Purpose,
    Step,
    Traits,
    credentials_secret_name,
)
from components.settings import RolesManager, Settings

__all__ = ["Access", "apply_access", "database_roles", "model_for"]


def model_for(settings: Settings, traits: Traits) -> PrivilegeModel | None:
    """The three-role model wherever those roles exist: managed by the program (from inside
    the cluster, or by Pulumi where it reaches the database) or created by a DBA. Without it
    Flyway runs as the owner."""
    if settings.database.roles_managed_by is RolesManager.NONE:
        return None
    return privilege_model(settings.database.name, owner=traits.owner)


def database_roles(
    name: str, settings: Settings, model: PrivilegeModel | None, namespace: pulumi.Input[str]
) -> InClusterRoles | None:
    """The roles whose logins the database component makes, where they are managed from
    inside the cluster (the operator, or the grants Job, reads them there)."""
    if model is None or not settings.database.roles_in_cluster:
        return None
    return in_cluster_roles(name, model, namespace)


@dataclass(frozen=True)
class Access:
    """What Flyway runs as, and what must be ready before it."""

    login: DatabaseEndpoint
    steps: tuple[Step, ...]
    """The database, then whatever applies its roles."""
    callbacks: Mapping[str, str]
    """Flyway callbacks the model needs (the history table kept the migrator's)."""
    app_secret: str
    """The read-write login applications use ("" where a DBA hands it out)."""
    read_only_secret: str
    """The read-only login ("" where there is none, or a DBA hands it out)."""


def apply_access(
    name: str,
    settings: Settings,
    model: PrivilegeModel | None,
    database: Database,
    namespace: pulumi.Input[str],
    *,
    protect: bool,
    holds_data: bool,
) -> Access:
    """The model applied as `databaseRolesManagedBy` says, after the database.

    `protect` protects the roles with the database of record; where the program does not hold
    the data (`holds_data` false: an external database, which no destroy deletes), the role
    that owns the data is never dropped either."""
    manager = settings.database.roles_managed_by
    ready = typing.cast("pulumi.Resource", database)  # every flavor is a ComponentResource
    steps: tuple[Step, ...] = (Step(ready),)
    login = database.endpoint
    if model is not None and manager is RolesManager.PULUMI and database.admin is not None:
        roles = DatabaseRoles(
            name,
            DatabaseRolesArgs(
                model=model,
                admin=database.admin,
                address=database.address,
                namespace=namespace,
                database=ready,
                keep_migrator=not holds_data,
            ),
            opts=pulumi.ResourceOptions(protect=protect),
        )
        steps, login = (*steps, Step(roles)), roles.migrator
    if model is not None and manager is RolesManager.CLUSTER and database.in_cluster_admin:
        # From inside the cluster, after the database and before Flyway: no network path from
        # where `pulumi up` runs is needed. Where the Job sets the passwords, it runs again when
        # one of their Secrets changes (an operator applies those itself).
        grants = RoleGrants(
            name,
            RoleGrantsArgs(
                namespace=namespace,
                model=model,
                address=database.address,
                admin=database.in_cluster_admin,
                database=[ready],
                timeout_seconds=settings.postgres.release_timeout_seconds,
                pod_labels=database.client_labels,
                rerun_on=list(database.password_versions),
            ),
        )
        steps, login = (*steps, Step(grants)), grants.migrator
    if login is None:  # unreachable: settings give every roles mode a login
        raise pulumi.RunError("no login for Flyway: set databaseRolesManagedBy")
    db = settings.database.name
    managed = settings.database.manages_roles
    return Access(
        login=login,
        steps=steps,
        callbacks={HISTORY_CALLBACK: history_protection_sql(model)} if model else {},
        # Without roles applications share the owner's login; a DBA hands out the others.
        app_secret=(
            credentials_secret_name(db, Purpose.APP)
            if managed
            else login.secret_name
            if model is None
            else ""
        ),
        read_only_secret=credentials_secret_name(db, Purpose.READONLY) if managed else "",
    )
