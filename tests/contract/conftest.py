"""Fixtures for contract tests: real Flyway command line against a real, throwaway PostgreSQL.

Prerequisites (CI installs them; locally run the same):
    sudo bash scripts/install-postgres.sh
    bash scripts/fetch-flyway.sh <FLYWAY_VERSION from components/settings/declarations.py>
A missing prerequisite fails the tests with the command to run; it never skips them.
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Callable, Iterator

import pytest

from components.settings import FLYWAY_VERSION
from standins.flyway_cli import FlywayNotInstalledError, FlywayRunner, flyway_lib
from standins.postgres import (
    BUNDLED_HINT,
    INSTALL_HINT,
    MIN_MAJOR,
    OS_USER_WHEN_ROOT,
    TOOLS,
    PostgresServer,
    find_bindir,
)

ROLE_MAJORS = (15, 17)
"""The majors the role contract tests run on: Debian's (the local stack's, the grants Job's
psql here) and the one production runs (cnpgImage and backupImage are 17), where
CREATEROLE means something else (ADMIN OPTION rules since 16)."""


def _missing_prerequisites() -> list[str]:
    problems: list[str] = []
    if find_bindir() is None:
        problems.append(
            f"PostgreSQL >= {MIN_MAJOR} binaries ({', '.join(TOOLS)}) not found "
            f"under /usr/lib/postgresql/*/bin; {INSTALL_HINT}"
        )
    for major in ROLE_MAJORS:
        if find_bindir(major=major) is None:
            problems.append(
                f"PostgreSQL {major} binaries not found (the role tests run on {ROLE_MAJORS}); "
                f"{INSTALL_HINT}, or {BUNDLED_HINT}"
            )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(OS_USER_WHEN_ROOT)
        except KeyError:
            problems.append(
                f"running as root but OS user {OS_USER_WHEN_ROOT!r} is missing; {INSTALL_HINT}"
            )
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        problems.append("java not found (Flyway needs a Java >= 17 runtime on PATH or JAVA_HOME)")
    try:
        flyway_lib(FLYWAY_VERSION)
    except FlywayNotInstalledError as exc:
        problems.append(str(exc))
    return problems


@pytest.fixture(scope="session", autouse=True)
def contract_prerequisites() -> str:
    """Fail (never skip, least of all in CI) when PostgreSQL or the Flyway jars are missing."""
    problems = _missing_prerequisites()
    if problems:
        where = "CI must provide them" if os.environ.get("CI") else "install them locally"
        pytest.fail(
            f"contract test prerequisites missing ({where}):\n- " + "\n- ".join(problems),
            pytrace=False,
        )
    return FLYWAY_VERSION


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    """A started throwaway PostgreSQL server; always stopped and deleted afterwards."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def shared_postgres(contract_prerequisites: str) -> Iterator[PostgresServer]:
    """One started server for a whole test module: tests isolate by database, not by server."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def flyway(contract_prerequisites: str) -> FlywayRunner:
    """Runs the Flyway command line of the pinned version: `flyway(["migrate"], env, cwd)`."""
    return FlywayRunner(contract_prerequisites)


ServerOf = Callable[[int], PostgresServer]


@pytest.fixture(scope="module")
def postgres_of(contract_prerequisites: str) -> Iterator[ServerOf]:
    """One started server per major for a whole test module, started when first asked for."""
    started: dict[int, PostgresServer] = {}

    def server(major: int) -> PostgresServer:
        if major not in started:
            started[major] = PostgresServer(major=major)
            started[major].start()
        return started[major]

    try:
        yield server
    finally:
        for running in started.values():
            running.close()
