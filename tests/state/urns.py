"""What the program declares, by URN and parent, for synthetic configurations.

The state of a deployed stack is keyed by URN (the type and name of a resource and of each
parent). A change of layout must keep every URN, or carry it with an alias, or users' next
`pulumi up` would delete and re-create what they run. `urns.json` was recorded from the code
as it was before the program's modules moved into packages; `test_urns.py` holds every later
version of the program to it. Configurations are synthetic (every flavor x roles mode x
backup setting, and the options that add resources), never the committed stack files, whose
values users change.

    python -m tests.state.urns > tests/state/urns.json   (only to record a deliberate change)
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from tests.program import MOCK_CONFIG_SECRETS, ProgramRun, run_config

STACK: Final = "urns"
PROJECT: Final = "tradestream-database"
FIXTURE: Final = Path(__file__).with_name("urns.json")

MIGRATIONS: Final = {
    "V1__create_things.sql": "CREATE TABLE things (id bigint PRIMARY KEY);\n",
    "V2__add_more.sql": "ALTER TABLE things ADD COLUMN name text;\n",
    "R__things_view.sql": "CREATE OR REPLACE VIEW things_view AS SELECT id FROM things;\n",
}

BASE: Final[dict[str, str]] = {"namespace": "urns", "protectDatabase": "true"}
CNPG_SNAPSHOTS: Final = {
    "cnpgBackupMethod": "volume-snapshot",
    "cnpgBackupSnapshotClass": "csi-snapshots",
}
CNPG_BARMAN: Final = {
    "cnpgBackupMethod": "barman-cloud",
    "cnpgBackupDestinationPath": "s3://bucket/urns",
    "cnpgBackupCredentials": "access-keys",
}
EXTERNAL: Final = {
    "databaseFlavor": "external",
    "databaseAccessHost": "db.example.internal",
    "databaseSslMode": "require",
}


def _configurations() -> dict[str, dict[str, str]]:
    """Every flavor x roles mode x backup setting the settings accept, and the options that
    add resources of their own (replication, metrics, the operator chart, configured
    passwords, secret placeholders)."""
    found: dict[str, dict[str, str]] = {}
    for backup in ("true", "false"):
        on = {"backupBeforeMigrate": backup}
        tag = f"backup-{'on' if backup == 'true' else 'off'}"
        for roles in ("none", "cluster", "pulumi"):
            host = {"databaseAccessHost": "db.example.internal"} if roles == "pulumi" else {}
            found[f"bitnami-{roles}-{tag}"] = {
                "databaseFlavor": "bitnami",
                "databaseRolesManagedBy": roles,
                "databaseSslMode": "disable",
                **host,
                **on,
            }
            found[f"cnpg-{roles}-{tag}"] = {
                "databaseFlavor": "cloudnative-pg",
                "databaseRolesManagedBy": roles,
                **host,
                **CNPG_SNAPSHOTS,
                **on,
            }
        for roles in ("pulumi", "dba", "cluster"):
            found[f"external-{roles}-{tag}"] = {**EXTERNAL, "databaseRolesManagedBy": roles, **on}
    found["cnpg-cluster-snapshots-operator-metrics"] = {
        "databaseFlavor": "cloudnative-pg",
        "databaseRolesManagedBy": "cluster",
        "cnpgInstallOperator": "true",
        "postgresMetricsEnabled": "true",
        **CNPG_SNAPSHOTS,
    }
    found["cnpg-cluster-barman-no-operator-config-passwords"] = {
        "databaseFlavor": "cloudnative-pg",
        "databaseRolesManagedBy": "cluster",
        "cnpgInstallOperator": "false",
        "passwordSource": "config",
        **CNPG_BARMAN,
    }
    found["bitnami-replication-config-passwords-metrics"] = {
        "databaseFlavor": "bitnami",
        "databaseRolesManagedBy": "cluster",
        "postgresArchitecture": "replication",
        "postgresReadReplicas": "1",
        "postgresMetricsEnabled": "true",
        "passwordSource": "config",
        "databaseSslMode": "disable",
    }
    found["bitnami-unprotected-existing-namespace"] = {
        "databaseFlavor": "bitnami",
        "protectDatabase": "false",
        "disposable": "true",
        "createNamespace": "false",
    }
    # Unprotected external stacks: what a destroy leaves of their roles.
    for roles in ("pulumi", "cluster"):
        found[f"external-{roles}-unprotected"] = {
            **EXTERNAL,
            "databaseRolesManagedBy": roles,
            "protectDatabase": "false",
            "disposable": "true",
        }
    return found


CONFIGURATIONS: Final = _configurations()
SECRET_PLACEHOLDERS: Final = "external-dba-backup-on"
"""One configuration also gets a secret placeholder, which adds a Secret of its own."""


def run(name: str, migrations: Path) -> ProgramRun:
    values = {f"{PROJECT}:{k}": v for k, v in {**BASE, **CONFIGURATIONS[name]}.items()}
    values[f"{PROJECT}:migrationsDir"] = str(migrations)
    if name != SECRET_PLACEHOLDERS:
        values[f"{PROJECT}:flywayPlaceholders"] = json.dumps({"token": "plain-token"})
    secrets: dict[str, str] = {}
    flavor, roles = (
        CONFIGURATIONS[name]["databaseFlavor"],
        CONFIGURATIONS[name].get("databaseRolesManagedBy", "none"),
    )
    if flavor == "external":
        key = "migratorPassword" if roles == "dba" else "adminPassword"
        secrets[key] = MOCK_CONFIG_SECRETS[key]
    elif CONFIGURATIONS[name].get("passwordSource") == "config":
        secrets["adminPassword"] = MOCK_CONFIG_SECRETS["adminPassword"]
        if flavor == "bitnami":
            secrets["ownerPassword"] = MOCK_CONFIG_SECRETS["ownerPassword"]
            secrets["replicationPassword"] = MOCK_CONFIG_SECRETS["replicationPassword"]
    if CONFIGURATIONS[name].get("cnpgBackupCredentials") == "access-keys":
        for key in ("cnpgBackupAccessKeyId", "cnpgBackupSecretAccessKey"):
            secrets[key] = MOCK_CONFIG_SECRETS[key]
    if name == SECRET_PLACEHOLDERS:
        secrets["flywaySecretPlaceholders"] = json.dumps({"token": "s3cret-Token-42"})
    return run_config(STACK, values, secrets)


def write_migrations(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for file, text in MIGRATIONS.items():
        (directory / file).write_text(text, encoding="utf-8")
    (directory / "V3__use_token.sql").write_text(
        "COMMENT ON TABLE things IS '${token}';\n", encoding="utf-8"
    )
    return directory


def declared(name: str, migrations: Path) -> list[dict[str, Any]]:
    """Each resource: its URN, its parent's URN and the aliases it carries."""
    result = run(name, migrations)
    if result.error is not None:
        raise result.error
    return [
        {"urn": r.urn, "parent": r.parent, "aliases": [dict(a) for a in r.aliases]}
        for r in result.resources
    ]


def record() -> dict[str, list[dict[str, str]]]:
    with tempfile.TemporaryDirectory() as scratch:
        migrations = write_migrations(Path(scratch) / "migrations")
        return {
            name: [{"urn": r["urn"], "parent": r["parent"]} for r in declared(name, migrations)]
            for name in CONFIGURATIONS
        }


def alias_urns(resource: Mapping[str, Any]) -> set[str]:
    """The URNs an alias says the resource was known by (as the engine resolves them)."""
    found: set[str] = set()
    urn: str = resource["urn"]
    name, type_ = urn.rsplit("::", 1)[1], urn.split("::")[2].rsplit("$", 1)[-1]
    for alias in resource["aliases"]:
        if "urn" in alias:
            found.add(alias["urn"])
            continue
        spec = alias.get("spec", alias)
        parent = spec.get("parentUrn") or ("" if spec.get("noParent") else resource["parent"])
        alias_type = spec.get("type") or type_
        alias_name = spec.get("name") or name
        chain = ""
        if parent:
            parent_types = parent.split("::")[2]
            chain = f"{parent_types}$"
        found.add(f"urn:pulumi:{STACK}::{PROJECT}::{chain}{alias_type}::{alias_name}")
    return found


def main() -> int:
    json.dump(record(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def inputs_record() -> dict[str, dict[str, str]]:
    """Per configuration and URN: a digest of what the engine would diff (inputs, replacement
    trigger, protect, retain-on-delete). Equal digests mean a preview shows no change."""
    return {name: inputs_record_of(name) for name in CONFIGURATIONS}


def inputs_record_of(name: str) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as scratch:
        migrations = write_migrations(Path(scratch) / "migrations")
        result = run(name, migrations)
        if result.error is not None:
            raise result.error
        return {
            r.urn: hashlib.sha256(
                json.dumps(
                    [
                        _without_paths(r.inputs, migrations),
                        r.replacement_trigger,
                        r.protect,
                        r.retain_on_delete,
                    ],
                    sort_keys=True,
                    default=str,
                ).encode()
            ).hexdigest()
            for r in result.resources
        }


def _without_paths(value: Any, folder: Path) -> Any:
    """Inputs without the scratch folder's path and the mocks' stand-ins for what the engine
    keeps in the state (names `<resource>-<8 hex>`, generated passwords), so runs compare."""
    text = json.dumps(value, default=str).replace(str(folder), "<migrations>")
    text = re.sub(r"gen-[a-z0-9-]+?-[0-9]{4}-Zq8", "gen-*", text)  # generated passwords
    return json.loads(re.sub(r'(tradestream-[a-z0-9-]+?)-[0-9a-f]{8}"', r'\1-*"', text))
