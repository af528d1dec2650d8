"""TradeStream's PostgreSQL database and its Flyway migrations: settings in, components out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pulumi

from components.backup import ClusterTarget, DumpTarget, MigrationBackup, MigrationBackupArgs
from components.backup_spec import dump_label
from components.cloudnative_pg import CloudNativePostgres, CloudNativePostgresArgs
from components.external import ExternalPostgres, ExternalPostgresArgs
from components.grants_job import RoleGrants, RoleGrantsArgs
from components.migration_job import MigrationJob, MigrationJobArgs, run_trigger
from components.migrations import MigrationError, load_released_set
from components.migrations.placeholders import StackPlaceholders, unresolved_placeholders
from components.namespace import Namespace, NamespaceArgs
from components.postgres import BitnamiPostgres, BitnamiPostgresArgs
from components.privileges import HISTORY_CALLBACK, history_protection_sql, privilege_model
from components.roles import DatabaseRoles, DatabaseRolesArgs
from components.settings import (
    Flavor,
    RolesManager,
    SettingsError,
    database_resource_name,
    read_stack_settings,
)

PROJECT_ROOT = Path(__file__).resolve().parent

# Everything that can be wrong with the input is found before the first resource exists.
try:
    settings = read_stack_settings()
    migrations = load_released_set(
        PROJECT_ROOT / settings.migrations_dir, out_of_order=settings.flyway.out_of_order
    )
    # A placeholder without a value would fail its script only when Flyway reaches it.
    flyway_settings = settings.flyway
    unresolved = unresolved_placeholders(
        migrations,
        [
            StackPlaceholders(
                flyway_settings.placeholder_replacement,
                [
                    n
                    for n, _ in (
                        *flyway_settings.placeholders,
                        *flyway_settings.secret_placeholders,
                    )
                ],
                pulumi.get_stack(),
            )
        ],
    )
    if unresolved:
        raise MigrationError(unresolved)
except (SettingsError, MigrationError) as error:
    raise pulumi.RunError(str(error)) from None

# The database of record and what deleting it would take along (its namespace holds the
# volumes in-cluster; the roles own the schema) are protected: a change that would delete
# or replace them fails the preview, and if they are ever deleted they stay in the cluster.
in_cluster = settings.database.flavor is not Flavor.EXTERNAL
protect = settings.protect_database
namespace = Namespace(
    "tradestream",
    NamespaceArgs(
        name=settings.namespace,
        create=settings.create_namespace,
        retain=protect and in_cluster,
    ),
    opts=pulumi.ResourceOptions(protect=protect and in_cluster),
)
database_of_record = pulumi.ResourceOptions(protect=protect)

# The three-role model wherever those roles exist: managed by the program (from inside the
# cluster, or by Pulumi where it reaches the database) or created by a DBA for an external
# one. Without it Flyway runs as the owner.
model = (
    privilege_model(
        settings.database.name,
        # In-cluster flavors create the owner; a managed database's owner is its own.
        owner=None if settings.database.flavor is Flavor.EXTERNAL else settings.database.owner,
    )
    if settings.database.roles_managed_by is not RolesManager.NONE
    else None
)
in_cluster_roles = model if settings.database.roles_in_cluster else None

database: BitnamiPostgres | CloudNativePostgres | ExternalPostgres
match settings.database.flavor:
    case Flavor.BITNAMI:
        database = BitnamiPostgres(
            "tradestream",
            BitnamiPostgresArgs(
                postgres=settings.postgres,
                database=settings.database,
                namespace=namespace.name,
                namespace_name=settings.namespace,
                password_source=settings.password_source,
                credentials=settings.credentials,
                retain=protect,
                role_logins=in_cluster_roles,
            ),
            opts=database_of_record,
        )
    case Flavor.CLOUDNATIVE_PG:
        database = CloudNativePostgres(
            "tradestream",
            CloudNativePostgresArgs(
                cnpg=settings.cnpg,
                postgres=settings.postgres,
                database=settings.database,
                namespace=namespace.name,
                namespace_name=settings.namespace,
                password_source=settings.password_source,
                credentials=settings.credentials,
                wait_timeout_seconds=settings.postgres.release_timeout_seconds,
                retain=protect,
                managed_roles=in_cluster_roles,
                backup=settings.backup,
            ),
            opts=database_of_record,
        )
    case Flavor.EXTERNAL:
        database = ExternalPostgres(
            "tradestream",
            ExternalPostgresArgs(
                database=settings.database,
                credentials=settings.credentials,
                namespace=namespace.name,
            ),
        )

ready: list[pulumi.Resource] = [database]
endpoint = database.endpoint
if database.admin is not None and model is not None:
    roles = DatabaseRoles(
        "tradestream",
        DatabaseRolesArgs(
            model=model,
            admin=database.admin,
            address=database.address,
            namespace=namespace.name,
            database=database,
        ),
        opts=database_of_record,
    )
    ready, endpoint = [database, roles], roles.migrator
if in_cluster_roles is not None and database.in_cluster_admin is not None:
    # From inside the cluster, after the database and before Flyway: no network path from
    # where `pulumi up` runs is needed. Bitnami: the Job creates the roles too, and runs
    # again when a password changes (CloudNativePG's operator applies those itself).
    logins = database.login_secrets if isinstance(database, BitnamiPostgres) else None
    grants = RoleGrants(
        "tradestream",
        RoleGrantsArgs(
            namespace=namespace.name,
            model=in_cluster_roles,
            address=database.address,
            admin=database.in_cluster_admin,
            creates_roles=logins is not None,
            database=[database],
            timeout_seconds=settings.postgres.release_timeout_seconds,
            pod_labels=database.client_labels,
            rerun_on=[s.metadata.apply(lambda m: m.resource_version or "") for s in logins or []],
        ),
    )
    ready, endpoint = [database, grants], grants.migrator
if endpoint is None:  # unreachable: settings give external databases a login or an admin
    raise pulumi.RunError("no login for Flyway: set databaseRolesManagedBy")

job_args = MigrationJobArgs(
    namespace=namespace.name,
    migrations=migrations,
    flyway=settings.flyway,
    endpoint=endpoint,
    database=ready,
    pod_labels=database.client_labels,
    callbacks={HISTORY_CALLBACK: history_protection_sql(model)} if model else {},
)

# A way back before every migration, like a pre-upgrade hook: Flyway waits for the backup,
# and both run again exactly when either would change.
if settings.backup.before_migrate:
    backup = MigrationBackup(
        "tradestream",
        MigrationBackupArgs(
            settings=settings.backup,
            flyway=settings.flyway,
            target=ClusterTarget(settings.cnpg.cluster_name)
            if settings.database.flavor is Flavor.CLOUDNATIVE_PG
            else DumpTarget(endpoint, database.client_labels),
            namespace=namespace.name,
            run_trigger=run_trigger(job_args),
            label=dump_label(migrations.digest),
            database=ready,
            protect_volume=protect,
        ),
    )
    job_args = dataclasses.replace(
        job_args, database=[*ready, backup], run_inputs={"backup": backup.spec_digest}
    )
    pulumi.export("backupName", backup.backup_name)
    pulumi.export("backupVolumeClaim", backup.volume_claim)

migration_job = MigrationJob("tradestream", job_args)

pulumi.export("namespace", namespace.name)
pulumi.export("databaseFlavor", settings.database.flavor.value)
pulumi.export("databaseResourceName", database_resource_name(settings))
pulumi.export("databaseHost", database.host)
pulumi.export("databasePort", database.address.port)
pulumi.export("databaseName", database.address.database)
pulumi.export("credentialsSecretName", endpoint.secret_name)
pulumi.export("migrationJobName", migration_job.job_name)
pulumi.export("migrationsDigest", migration_job.migrations_digest)
pulumi.export("migrationConfigMaps", migration_job.config_map_names)
pulumi.export("migrations", migration_job.packaged)
