"""The script for an admin that is no superuser, and the SCRAM verifiers it sets (pure)."""

from __future__ import annotations

import base64
import re

import pytest

from components.access import grants_spec, scram
from components.access.createrole import createrole_sql
from components.access.privileges import privilege_model

MODEL = privilege_model("ledger")
SCRIPT = createrole_sql(MODEL, verifier_env=grants_spec.verifier_env(MODEL))


def test_a_verifier_has_postgresqls_layout_and_is_stable() -> None:
    value = scram.verifier("ledger_app", "Passw0rdPassw0rd")
    match = re.fullmatch(r"SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)", value)
    assert match is not None
    salt, stored, server = (base64.b64decode(part) for part in match.groups())
    assert (len(salt), len(stored), len(server)) == (16, 32, 32)
    assert scram.verifier("ledger_app", "Passw0rdPassw0rd") == value
    # Per role and per password: two roles with one password do not share a verifier.
    assert scram.verifier("ledger_readonly", "Passw0rdPassw0rd") != value
    assert scram.verifier("ledger_app", "Passw0rdPassw0rE") != value


@pytest.mark.parametrize("password", ["", "pässword", "tab\there"])
def test_a_password_saslprep_would_change_is_refused(password: str) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        scram.verifier("ledger_app", password)


def test_the_script_never_sets_what_only_a_superuser_may() -> None:
    assert "pg_authid" not in SCRIPT
    assert "log_statement" not in SCRIPT
    alters = [line for line in SCRIPT.splitlines() if "ALTER ROLE %I WITH" in line]
    assert len(alters) == 3
    for line in alters:
        for word in ("SUPERUSER", "REPLICATION", "BYPASSRLS"):
            assert word not in line


def test_every_role_gets_its_verifier_from_the_environment() -> None:
    for purpose, env in grants_spec.verifier_env(MODEL).items():
        variable = f"{purpose.value}_verifier"
        assert f"\\getenv {variable} {env}" in SCRIPT
        assert f"environment variable {env} is not set" in SCRIPT
        assert f":'{variable}'" in SCRIPT
    assert "PASSWORD :'" not in SCRIPT  # a verifier, through format(), never a bare password


def test_the_admin_joins_the_migrator_only_for_the_transaction() -> None:
    lines = SCRIPT.splitlines()
    joined = lines.index('GRANT "ledger_migrator" TO CURRENT_USER WITH INHERIT TRUE, SET TRUE;')
    left = lines.index('REVOKE "ledger_migrator" FROM CURRENT_USER;')
    grants = [i for i, line in enumerate(lines) if line.startswith(("GRANT ", "ALTER DEFAULT"))]
    assert joined < min(i for i in grants if i != joined)
    assert left > max(grants)
