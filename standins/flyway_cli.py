"""Run the real Flyway command line (jars from scripts/fetch-flyway.sh) as the Job would.

    proc = run_flyway("11.20.3", ["migrate"], env={"FLYWAY_URL": ...}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr

Flyway gets ONLY the given environment plus what Java needs: PATH, JAVA_HOME when set, a
UTF-8 locale (the flyway/flyway image runs with one; Java 17 would otherwise print non-ASCII
as '?') and HOME pointed at a fresh temporary directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FLYWAY_CACHE = REPO_ROOT / ".cache" / "flyway"
MAIN_CLASS = "org.flywaydb.commandline.Main"
DEFAULT_TIMEOUT = 180.0


class FlywayNotInstalledError(RuntimeError):
    """The jars for the requested Flyway version have not been fetched."""


class FlywayTimeoutError(TimeoutError):
    """Flyway did not finish in time; stdout/stderr hold what it printed until then."""

    def __init__(self, message: str, stdout: str, stderr: str) -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


def fetch_command(version: str) -> str:
    return f"bash scripts/fetch-flyway.sh {version}"


def flyway_lib(version: str) -> Path:
    """The folder holding Flyway `version`'s jars; a clear error when it is not complete."""
    home = FLYWAY_CACHE / version
    lib = home / "lib"
    complete = (home / "COMPLETE").is_file()
    if not complete or not (lib / f"flyway-commandline-{version}.jar").is_file():
        raise FlywayNotInstalledError(
            f"Flyway {version} jars not found in {lib}; run: {fetch_command(version)}"
        )
    return lib


def java_executable() -> str:
    """$JAVA_HOME/bin/java when JAVA_HOME is set, else java from PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise FlywayNotInstalledError("java is not on PATH (Flyway needs Java >= 17)")
    return found


def _base_env(home: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }
    if os.environ.get("JAVA_HOME"):
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    return env


def run_flyway(
    version: str,
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    os_user: str | None = None,
    on_line: Callable[[str], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `java -cp <jars>/* org.flywaydb.commandline.Main *args` and return the result.

    env: the FLYWAY_* (and other) variables Flyway should see; nothing else is inherited.
    cwd: working directory (defaults to a fresh empty temporary directory).
    os_user: run as this OS user via runuser (root only), e.g. to prove nothing is written
        to a directory that user cannot write; HOME is then a temp dir owned by that user,
        and the jars are read from a copy that user can reach wherever the clone lives.
    on_line: called with each line Flyway prints (stdout or stderr) as it prints it, so a
        test can act on what Flyway did instead of on how long it took.
    Raises FlywayNotInstalledError without the jars, FlywayTimeoutError after `timeout` s.
    """
    lib = flyway_lib(version)
    # Under /tmp when switching user: TMPDIR may be a 0700 directory that user cannot enter.
    tmp_parent = "/tmp" if os_user is not None else None  # noqa: S108 (mkdtemp: private)
    with tempfile.TemporaryDirectory(prefix="flyway-home-", dir=tmp_parent) as tmp:
        home = Path(tmp) / "home"
        workdir = Path(tmp) / "work"
        home.mkdir()
        workdir.mkdir()
        argv = [java_executable(), "-cp", f"{lib}/*", MAIN_CLASS, *args]
        if os_user is not None:
            readable_lib = Path(tmp) / "lib"
            shutil.copytree(lib, readable_lib)
            user = pwd.getpwnam(os_user)
            for path in (Path(tmp), home, workdir, readable_lib, *readable_lib.iterdir()):
                os.chown(path, user.pw_uid, user.pw_gid)
            argv = ["runuser", "-u", os_user, "--", argv[0], "-cp", f"{readable_lib}/*", *argv[3:]]
        full_env = _base_env(home)
        full_env.update(env or {})
        return _run(argv, Path(cwd) if cwd is not None else workdir, full_env, timeout, on_line)


def _run(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    on_line: Callable[[str], None] | None,
) -> subprocess.CompletedProcess[str]:
    """Run argv, collecting stdout and stderr line by line as they are printed."""
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    streams = {"stdout": process.stdout, "stderr": process.stderr}
    collected: dict[str, list[str]] = {name: [] for name in streams}
    failures: list[BaseException] = []

    def pump(name: str) -> None:
        stream = streams[name]
        for line in stream or ():
            collected[name].append(line)
            if on_line is not None:
                try:
                    on_line(line.rstrip("\n"))
                except BaseException as error:  # re-raised in the caller's thread
                    failures.append(error)

    readers = [threading.Thread(target=pump, args=(name,), daemon=True) for name in streams]
    for reader in readers:
        reader.start()
    try:
        returncode = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        for reader in readers:
            reader.join()
        stdout, stderr = ("".join(collected[name]) for name in streams)
        raise FlywayTimeoutError(
            f"flyway {' '.join(argv[argv.index(MAIN_CLASS) + 1 :])} did not finish within "
            f"{timeout:g}s (killed)\n"
            f"--- stdout ---\n{stdout[-4000:]}\n--- stderr ---\n{stderr[-4000:]}",
            stdout,
            stderr,
        ) from None
    for reader in readers:
        reader.join()
    if failures:
        raise failures[0]
    stdout, stderr = ("".join(collected[name]) for name in streams)
    return subprocess.CompletedProcess(argv, returncode, stdout, stderr)


class FlywayRunner:
    """`run_flyway` bound to one Flyway version: `flyway(["migrate"], env, cwd)`."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.lib = flyway_lib(version)

    def __call__(
        self,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        os_user: str | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run_flyway(
            self.version, args, env, cwd, timeout=timeout, os_user=os_user, on_line=on_line
        )
