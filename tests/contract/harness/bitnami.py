"""The Bitnami chart's database as declared: its Secret, init scripts and their user."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from components.settings import Flavor
from tests.contract.harness.model import (
    INITSCRIPTS_PASSWORD_ENV,
    INITSCRIPTS_USER_ENV,
    SUPERUSER,
    DatabaseSetup,
    HarnessError,
    _secrets,
)
from tests.program import ProgramRun


def _bitnami_setup(values: Mapping[str, Any], run: ProgramRun) -> DatabaseSetup:
    auth, primary = values["auth"], values.get("primary") or {}
    owner = auth["username"]
    secret, keys = auth.get("existingSecret"), auth.get("secretKeys") or {}
    if not secret or not {"adminPasswordKey", "userPasswordKey"} <= set(keys):
        raise HarnessError(f"the release reads no passwords from a Secret: auth = {auth}")
    declared = _secrets(run).get(secret)
    if declared is None or not {keys["adminPasswordKey"], keys["userPasswordKey"]} <= set(declared):
        raise HarnessError(f"the release reads Secret {secret}, which lacks its keys {keys}")
    scripts = dict((primary.get("initdb") or {}).get("scripts") or {})
    for name in scripts:
        if not name.endswith(".sql"):
            raise HarnessError(f"init script {name}: the harness runs .sql scripts only")
    return DatabaseSetup(
        flavor=Flavor.BITNAMI,
        database=auth["database"],
        owner=owner,
        admin=SUPERUSER,
        init_scripts=scripts,
        init_user=_init_scripts_user(primary.get("extraEnvVars") or [], auth) if scripts else None,
        owner_secret=(secret, keys["userPasswordKey"]),
    )


def _init_scripts_user(env: Sequence[Mapping[str, Any]], auth: Mapping[str, Any]) -> str:
    """Who the image runs init scripts as: POSTGRESQL_INITSCRIPTS_USERNAME, else the owner.

    The image logs in with a password over TCP, so a user other than the owner needs its
    password from the Secret the chart reads, or the scripts never run.
    """
    entries = {str(e.get("name")): e for e in env}
    user_entry = entries.get(INITSCRIPTS_USER_ENV)
    password_ref = (entries.get(INITSCRIPTS_PASSWORD_ENV) or {}).get("valueFrom", {})
    if user_entry is None:
        if INITSCRIPTS_PASSWORD_ENV in entries:
            raise HarnessError(f"{INITSCRIPTS_PASSWORD_ENV} without {INITSCRIPTS_USER_ENV}")
        return str(auth["username"])
    if "value" not in user_entry:
        raise HarnessError(f"{INITSCRIPTS_USER_ENV} has no literal value: {user_entry}")
    user = str(user_entry["value"])
    if user == auth["username"] and INITSCRIPTS_PASSWORD_ENV not in entries:
        return user
    if user != SUPERUSER:
        raise HarnessError(f"init scripts run as {user!r}, a role the image does not create")
    if auth.get("enablePostgresUser") is not True:
        raise HarnessError(
            "init scripts run as postgres, which has no password without auth.enablePostgresUser"
        )
    expected = {"name": auth["existingSecret"], "key": auth["secretKeys"]["adminPasswordKey"]}
    if password_ref.get("secretKeyRef") != expected:
        raise HarnessError(
            f"init scripts run as postgres but {INITSCRIPTS_PASSWORD_ENV} is not postgres' "
            f"password {expected}: {entries.get(INITSCRIPTS_PASSWORD_ENV)}"
        )
    return SUPERUSER
