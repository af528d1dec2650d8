"""How the program's libpq clients (psql in the grants Job, pg_dump in the backup) reach the
database from their pods (pure): the same server, and the same verification, as Flyway."""

from __future__ import annotations

from components.contract import ServerAddress
from components.jobs.pod import CA_KEY, EnvVar

CONNECT_TIMEOUT_SECONDS = 10


def ssl_mode(address: ServerAddress) -> str:
    """libpq's sslmode for the address, as Flyway's JDBC URL has it: verify-full against the
    CA where one is given, else the declared mode, else libpq's own default, explicitly."""
    if address.ca_secret:
        return address.ssl_mode or "verify-full"
    return address.ssl_mode or "prefer"


def libpq_environment(
    address: ServerAddress,
    *,
    user: str,
    password_secret: str,
    password_key: str,
    tls_path: str,
    application: str,
) -> tuple[EnvVar, ...]:
    """libpq's connection settings; the password by reference to its Secret, never a literal,
    and the server's CA where `tls_path` mounts it."""
    root_cert = (EnvVar("PGSSLROOTCERT", f"{tls_path}/{CA_KEY}"),) if address.ca_secret else ()
    return (
        EnvVar("PGHOST", address.host),
        EnvVar("PGPORT", str(address.port)),
        EnvVar("PGDATABASE", address.database),
        EnvVar("PGUSER", user),
        EnvVar("PGPASSWORD", secret_name=password_secret, secret_key=password_key),
        EnvVar("PGSSLMODE", ssl_mode(address)),
        *root_cert,
        EnvVar("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT_SECONDS)),
        EnvVar("PGAPPNAME", application),
    )
