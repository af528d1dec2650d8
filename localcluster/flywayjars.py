"""The Flyway jars a flyway/flyway image maps to, copied where any pod user can read them.

The jars come from `<repo>/.cache/flyway/<version>/lib` (scripts/fetch-flyway.sh), or from
$LOCALCLUSTER_FLYWAY_HOME: either a directory of `<version>/lib` trees like that cache, or
one Flyway installation with `lib/`. Each version is copied once per cluster into the
shared directory, with a `bin/flyway` launcher for commands that call `flyway` themselves.
"""

from __future__ import annotations

import os
import shlex
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

from localcluster.images import FLYWAY_MAIN, ImageRefusedError
from localcluster.layout import REPO_ROOT

HOME_ENV: Final = "LOCALCLUSTER_FLYWAY_HOME"


def fetch_command(version: str) -> str:
    return f"bash scripts/fetch-flyway.sh {version}"


def source_lib(version: str) -> Path:
    """Where `version`'s jars are on this machine; ImageRefusedError naming the fix if absent."""
    jar = f"flyway-commandline-{version}.jar"
    override = os.environ.get(HOME_ENV)
    candidates = [Path(override) / version / "lib", Path(override) / "lib"] if override else []
    candidates.append(REPO_ROOT / ".cache" / "flyway" / version / "lib")
    for lib in candidates:
        if (lib / jar).is_file():
            return lib
    raise ImageRefusedError(
        f"Flyway {version} jars not found in {' or '.join(map(str, candidates))}; "
        f"run: {fetch_command(version)}"
    )


def _make_readable(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        os.chmod(dirpath, 0o755)  # noqa: S103 (pods of any user run these jars)
        for name in files:
            os.chmod(Path(dirpath) / name, 0o644)


def provider(shared: Path, java: str | None) -> Callable[[str], Path]:
    """Version -> a readable Flyway home (`lib/`, `bin/flyway`), copied on first use."""
    lock = threading.Lock()

    def home(version: str) -> Path:
        lib = source_lib(version)
        dest = shared / "flyway" / version
        with lock:
            if (dest / "COMPLETE").is_file():
                return dest
            shared.mkdir(parents=True, exist_ok=True)
            os.chmod(shared, 0o755)  # noqa: S103
            tmp = dest.with_name(f".{version}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(lib, tmp / "lib")
            launcher = tmp / "bin" / "flyway"
            launcher.parent.mkdir()
            java_cmd = shlex.quote(java or "java")
            classpath = shlex.quote(f"{dest / 'lib'}/*")
            launcher.write_text(f'#!/bin/sh\nexec {java_cmd} -cp {classpath} {FLYWAY_MAIN} "$@"\n')
            _make_readable(tmp)
            os.chmod(launcher, 0o755)  # noqa: S103
            (tmp / "COMPLETE").write_text(version + "\n")
            shutil.rmtree(dest, ignore_errors=True)
            tmp.rename(dest)
        return dest

    return home


def java_executable() -> str | None:
    """$JAVA_HOME/bin/java when JAVA_HOME is set, else java from PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")
