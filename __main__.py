"""TradeStream's PostgreSQL database and its Flyway migrations: settings in, components out.

The order of things: the inputs, checked whole before anything is declared; the namespace;
the database; who may do what in it; the steps before Flyway; Flyway's Job; the outputs.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from components import access, database
from components.contract import DatabaseArgs, labels
from components.jobs import flyway
from components.jobs.backup import MigrationBackup, MigrationBackupArgs
from components.jobs.migration import MigrationJob, MigrationJobArgs
from components.migrations import MigrationError, MigrationSet, load_deployable_set
from components.namespace import Namespace, NamespaceArgs
from components.settings import Settings, SettingsError, read_stack_settings

PROJECT_ROOT = Path(__file__).resolve().parent
NAME = "tradestream"


def read_inputs() -> tuple[Settings, MigrationSet]:
    """The stack's settings and migration set; a placeholder without a value would fail its
    script only when Flyway reaches it, so it is refused here too."""
    settings = read_stack_settings()
    migrations = load_deployable_set(
        PROJECT_ROOT / settings.migrations_dir,
        settings.flyway.out_of_order,
        settings.flyway.given_placeholders(pulumi.get_stack()),
    )
    return settings, migrations


try:
    settings, migrations = read_inputs()
except (SettingsError, MigrationError) as error:
    raise pulumi.RunError(str(error)) from None

# The database of record and what deleting it would take along (its namespace holds the
# volumes; the roles own the schema) are protected: a change that would delete or replace
# them fails the preview, and if they are ever deleted they stay in the cluster.
traits = database.traits(settings)
protect = settings.protect_database
holds_data = protect and traits.holds_data
namespace = Namespace(
    NAME,
    NamespaceArgs(name=settings.namespace, create=settings.create_namespace, retain=holds_data),
    opts=pulumi.ResourceOptions(protect=holds_data),
)

model = access.model_for(settings, traits)
db = database.deploy(
    NAME,
    DatabaseArgs(
        settings=settings,
        namespace=namespace.name,
        roles=access.database_roles(NAME, settings, model, namespace.name),
    ),
    opts=pulumi.ResourceOptions(protect=holds_data),
)
granted = access.apply_access(NAME, settings, model, db, namespace.name, protect=protect)

plan = flyway.plan(
    settings.flyway,
    granted.login,
    migrations,
    pod_labels={**labels("migrations"), **db.client_labels},
    callbacks=granted.callbacks,
)

# A way back before every migration, like a pre-upgrade hook: Flyway waits for the backup,
# and both run again exactly when either would change.
steps = list(granted.steps)
if settings.backup.before_migrate:
    backup = MigrationBackup(
        NAME,
        MigrationBackupArgs(
            settings=settings.backup,
            plan=plan,
            target=db.backup_target(granted.login),
            namespace=namespace.name,
            after=tuple(steps),
            protect_volume=protect,
        ),
    )
    steps.append(backup.step)
    pulumi.export("backupName", backup.backup_name)
    pulumi.export("backupVolumeClaim", backup.volume_claim)

migration_job = MigrationJob(
    NAME, MigrationJobArgs(namespace=namespace.name, plan=plan, after=steps)
)

pulumi.export("namespace", namespace.name)
pulumi.export("databaseFlavor", settings.database.flavor.value)
pulumi.export("databaseResourceName", traits.record_name)
pulumi.export("databaseHost", db.host)
pulumi.export("databasePort", db.address.port)
pulumi.export("databaseName", db.address.database)
pulumi.export("credentialsSecretName", granted.login.secret_name)
pulumi.export("migrationJobName", migration_job.job_name)
pulumi.export("migrationsDigest", migration_job.migrations_digest)
pulumi.export("migrationConfigMaps", migration_job.config_map_names)
pulumi.export("migrations", migration_job.packaged)
# What an application's stack reads to connect (a StackReference to this one).
pulumi.export("readWriteHost", db.host)
pulumi.export("readOnlyHost", db.read_only_host)
pulumi.export("appCredentialsSecretName", granted.app_secret)
pulumi.export("readOnlyCredentialsSecretName", granted.read_only_secret)
