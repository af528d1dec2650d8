"""TradeStream's PostgreSQL database and its Flyway migrations: settings in, components out.

The order of things: the inputs, checked whole before anything is declared; the namespace;
the database; who may do what in it; the steps before Flyway; Flyway's Job; the alerts on
them (where asked for); the outputs.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from components import access, alert_rules, database
from components.contract import DatabaseArgs, labels
from components.inputs import check_inputs
from components.jobs import flyway
from components.jobs.backup import MigrationBackup, MigrationBackupArgs
from components.jobs.migration import MigrationJob, MigrationJobArgs
from components.migrations import MigrationError
from components.monitoring import Alerts, AlertsArgs
from components.namespace import Namespace, NamespaceArgs
from components.secrecy import guarded, keep_secret
from components.settings import SettingsError, read_stack_settings

PROJECT_ROOT = Path(__file__).resolve().parent
NAME = "tradestream"


def export(name: str, value: pulumi.Input[object]) -> None:
    """A stack output; secret where it carries a value set as a secret."""
    pulumi.export(name, guarded(value, settings.secret_values) if settings.secret_values else value)


try:
    settings = read_stack_settings()
    inputs = check_inputs(settings, PROJECT_ROOT, pulumi.get_stack())
except (SettingsError, MigrationError) as error:
    raise pulumi.RunError(str(error)) from None

# A value set with --secret stays secret in every input and output that carries it.
if settings.secret_values:
    pulumi.runtime.register_stack_transformation(keep_secret(settings.secret_values))

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
granted = access.apply_access(
    NAME, settings, model, db, namespace.name, protect=protect, holds_data=traits.holds_data
)

plan = flyway.plan(
    settings.flyway,
    granted.login,
    inputs,
    pod_labels={**labels("migrations"), **db.client_labels},
    callbacks=granted.callbacks,
)

# A way back before every migration, like a pre-upgrade hook: Flyway waits for the backup,
# and both run again exactly when either would change.
steps = list(granted.steps)
watched: list[alert_rules.WatchedJob] = []
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
    watched.extend([backup.watched] if backup.watched is not None else [])
    export("backupName", backup.backup_name)
    export("backupVolumeClaim", backup.volume_claim)

migration_job = MigrationJob(
    NAME, MigrationJobArgs(namespace=namespace.name, plan=plan, after=steps)
)

# What the on-call engineer hears about: the way back (WAL archive, backups) and Flyway.
if settings.alerts.enabled:
    groups = alert_rules.rule_groups(
        settings.namespace, traits.alerts, [migration_job.watched, *watched]
    )
    Alerts(NAME, AlertsArgs(namespace.name, groups, settings.alerts.rule_label))

export("namespace", namespace.name)
export("databaseFlavor", settings.database.flavor.value)
export("databaseResourceName", traits.record_name)
if traits.recovered_from is not None:
    # A recovery named later for the same Cluster would not run; `make up` refuses it.
    export("databaseRecoveredFrom", traits.recovered_from)
export("databaseHost", db.host)
export("databasePort", db.address.port)
export("databaseName", db.address.database)
export("credentialsSecretName", granted.login.secret_name)
export("migrationJobName", migration_job.job_name)
export("migrationsDigest", migration_job.migrations_digest)
export("migrationConfigMaps", migration_job.config_map_names)
export("migrations", migration_job.packaged)
# What an application's stack reads to connect (a StackReference to this one).
export("readWriteHost", db.host)
export("readOnlyHost", db.read_only_host)
export("appCredentialsSecretName", granted.app_secret)
export("readOnlyCredentialsSecretName", granted.read_only_secret)
