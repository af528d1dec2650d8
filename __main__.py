"""TradeStream's PostgreSQL database and its Flyway migrations: settings in, components out."""

from __future__ import annotations

from pathlib import Path

import pulumi

from components import postgres_chart
from components.migration_job import MigrationJob, MigrationJobArgs
from components.migrations import MigrationError, load_released_set
from components.namespace import Namespace, NamespaceArgs
from components.postgres import PostgresDatabase, PostgresDatabaseArgs
from components.settings import SettingsError, read_stack_settings

PROJECT_ROOT = Path(__file__).resolve().parent

# Everything that can be wrong with the input is found before the first resource exists.
try:
    settings = read_stack_settings()
    migrations = load_released_set(
        PROJECT_ROOT / settings.migrations_dir, out_of_order=settings.flyway.out_of_order
    )
except (SettingsError, MigrationError) as error:
    raise pulumi.RunError(str(error)) from None

namespace = Namespace(
    "tradestream", NamespaceArgs(name=settings.namespace, create=settings.create_namespace)
)
database = PostgresDatabase(
    "tradestream",
    PostgresDatabaseArgs(
        settings=settings.postgres,
        namespace=namespace.name,
        namespace_name=settings.namespace,
        password_source=settings.password_source,
        credentials=settings.credentials,
    ),
)
migration_job = MigrationJob(
    "tradestream",
    MigrationJobArgs(
        namespace=namespace.name,
        migrations=migrations,
        flyway=settings.flyway,
        endpoint=database.endpoint,
        database=database,
        pod_labels=postgres_chart.client_label(settings.postgres.release_name),
    ),
)

pulumi.export("namespace", namespace.name)
pulumi.export("databaseHost", database.host)
pulumi.export("databasePort", database.port)
pulumi.export("databaseName", database.database)
pulumi.export("credentialsSecretName", database.secret_name)
pulumi.export("migrationJobName", migration_job.job_name)
pulumi.export("migrationsDigest", migration_job.migrations_digest)
pulumi.export("migrationConfigMaps", migration_job.config_map_names)
pulumi.export("migrations", migration_job.packaged)
