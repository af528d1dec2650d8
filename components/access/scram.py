"""A password as PostgreSQL stores it: a SCRAM-SHA-256 verifier (RFC 5802, RFC 7677) (pure).

Where the grants Job runs as an admin that is not a superuser (a managed service's), it
cannot keep its statements out of the server's log (`log_statement` is a superuser's
setting), so it never sends a password: `ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'` stores
a verifier as given, and a log, pgaudit or a failing statement's echo shows only what
`pg_authid` holds anyway.

The salt is derived from the role and the password with the same key stretching as the
verifier, so the verifier is stable (a preview shows no change while the password is
unchanged) and checking a guessed password against the salt costs as much as against the
verifier.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final

ITERATIONS: Final = 4096
"""PostgreSQL's default (`scram_iterations`)."""
SALT_BYTES: Final = 16
"""PostgreSQL's own salt length."""
_SALT_CONTEXT: Final = b"tradestream-database scram salt\x00"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _check(password: str) -> bytes:
    """SASLprep (RFC 4013) leaves printable ASCII as it is; the program only ever generates
    such passwords, so anything else is refused rather than prepared differently from the
    server."""
    if not password or not password.isascii() or not password.isprintable():
        raise ValueError("a SCRAM verifier is made only for a non-empty printable ASCII password")
    return password.encode("ascii")


def salt_for(role: str, password: str) -> bytes:
    return hashlib.pbkdf2_hmac(
        "sha256", _check(password), _SALT_CONTEXT + role.encode("utf-8"), ITERATIONS
    )[:SALT_BYTES]


def verifier(role: str, password: str, *, iterations: int = ITERATIONS) -> str:
    """`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, as PostgreSQL writes it."""
    salt = salt_for(role, password)
    salted = hashlib.pbkdf2_hmac("sha256", _check(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"
