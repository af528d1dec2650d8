"""Stack configuration -> one validated, typed `Settings` object.

declarations.py  how a key is declared (`setting()`), and the enums and checks it uses
keys.py          every key, on the typed settings it fills
rules.py         rules across keys
parsing.py       raw config -> Settings, or every problem, each naming its key
stackfile.py     the one reader of a committed stack file, for every tool
runtime.py       the running program's config, from the Pulumi runtime
cli.py           Pulumi.yaml's schema and the README's table, generated from the keys
"""

from components.settings.alert_keys import AlertSettings
from components.settings.declarations import (
    FLYWAY_VERSION,
    PROJECT,
    STACK_CONFIG_DIR,
    Architecture,
    CnpgBackupCredentials,
    CnpgBackupMethod,
    Flavor,
    PasswordSource,
    RolesManager,
    Secret,
    SslMode,
    bitnami_fullname,
    bitnami_primary_name,
    fqkey,
)
from components.settings.flavor_keys import CnpgSettings, PostgresSettings
from components.settings.job_keys import BackupSettings, FlywaySettings
from components.settings.keys import Credentials, DatabaseSettings, Settings, declared_keys
from components.settings.parsing import SettingsError, parse_settings, required_secrets
from components.settings.runtime import read_stack_settings

__all__ = [
    "FLYWAY_VERSION",
    "PROJECT",
    "STACK_CONFIG_DIR",
    "AlertSettings",
    "Architecture",
    "BackupSettings",
    "CnpgBackupCredentials",
    "CnpgBackupMethod",
    "CnpgSettings",
    "Credentials",
    "DatabaseSettings",
    "Flavor",
    "FlywaySettings",
    "PasswordSource",
    "PostgresSettings",
    "RolesManager",
    "Secret",
    "Settings",
    "SettingsError",
    "SslMode",
    "bitnami_fullname",
    "bitnami_primary_name",
    "declared_keys",
    "fqkey",
    "parse_settings",
    "read_stack_settings",
    "required_secrets",
]
