"""The Flyway jars a flyway/flyway image maps to, and the `flyway` launcher it contains.

The jars come from `<repo>/.cache/flyway/<version>/lib` (scripts/fetch-flyway.sh), or from
$LOCALCLUSTER_FLYWAY_HOME: either a directory of `<version>/lib` trees like that cache, or
one Flyway installation with `lib/`. They are used in place: each container gets the
version's directory bind-mounted read-only at /flyway/lib, so no copy is ever made.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import Final

from standins.cluster.images import FLYWAY_IMAGE_LIB, FLYWAY_MAIN, ImageRefusedError
from standins.cluster.layout import replace_file
from standins.flyway_cli import FLYWAY_CACHE, fetch_command

HOME_ENV: Final = "LOCALCLUSTER_FLYWAY_HOME"


def source_lib(version: str) -> Path:
    """Where `version`'s jars are on this machine; ImageRefusedError naming the fix if absent."""
    jar = f"flyway-commandline-{version}.jar"
    override = os.environ.get(HOME_ENV)
    candidates = [Path(override) / version / "lib", Path(override) / "lib"] if override else []
    candidates.append(FLYWAY_CACHE / version / "lib")
    for lib in candidates:
        if (lib / jar).is_file():
            if not _readable_by_all(lib, lib / jar):
                raise ImageRefusedError(
                    f"Flyway {version} jars in {lib} are not readable by every user, as pods "
                    f"running as any user need them; run: chmod -R a+rX {shlex.quote(str(lib))}"
                )
            return lib
    raise ImageRefusedError(
        f"Flyway {version} jars not found in {' or '.join(map(str, candidates))}; "
        f"run: {fetch_command(version)}"
    )


def _readable_by_all(directory: Path, jar: Path) -> bool:
    """The directory is mounted as it is: its own mode and its files' modes must let anyone in."""
    return (directory.stat().st_mode & 0o005) == 0o005 and bool(jar.stat().st_mode & 0o004)


def write_launcher(path: Path, java: str | None) -> None:
    """The /flyway/flyway script of every Flyway image: Flyway's main class on the jars."""
    path.parent.mkdir(parents=True, exist_ok=True)
    java_cmd = shlex.quote(java or "java")
    classpath = shlex.quote(f"{FLYWAY_IMAGE_LIB}/*")
    script = f'#!/bin/sh\nexec {java_cmd} -cp {classpath} {FLYWAY_MAIN} "$@"\n'
    replace_file(path, script, 0o755)  # run by pods of any user


def java_executable() -> str | None:
    """$JAVA_HOME/bin/java when JAVA_HOME is set, else java from PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")
