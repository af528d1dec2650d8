"""Which container images the local node can run, and as which host program (pure).

No image is ever pulled. An image is runnable when the host already has what it packages:
the Flyway command line (its jars, fetched by scripts/fetch-flyway.sh, run with the host's
Java) and the PostgreSQL client programs (from /usr/lib/postgresql/<major>/bin). Any other
image is refused with a reason the pod's status shows. The Flyway jars are bind-mounted
read-only where the image has them (/flyway/lib, with its launcher at /flyway/flyway), so
a pod of any user reads them without a world-readable copy anywhere on the host.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from standins.cluster.sandbox import Mount

REFUSED_REASON: Final = "ImageNotRunnableLocally"
FLYWAY_MAIN: Final = "org.flywaydb.commandline.Main"
FLYWAY_REPOSITORIES: Final = ("flyway/flyway", "redgate/flyway")
SUPPORTED: Final = (
    "flyway/flyway:<X.Y.Z>[-suffix] (the Flyway command line with the host's Java), "
    "postgres:*, bitnami/postgresql*, bitnamilegacy/postgresql*, */postgresql* "
    "(the host's PostgreSQL client programs)"
)
STANDARD_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_VERSION_TAG: Final = re.compile(r"^(\d+\.\d+\.\d+)(?:-[A-Za-z0-9._-]+)?$")
_SERVER_PROGRAMS: Final = frozenset({"postgres", "run.sh", "docker-entrypoint.sh"})
FLYWAY_IMAGE_HOME: Final = "/flyway"
"""Where the flyway/flyway image keeps Flyway (its WORKDIR, and on its PATH)."""
FLYWAY_IMAGE_LIB: Final = f"{FLYWAY_IMAGE_HOME}/lib"
FLYWAY_IMAGE_LAUNCHER: Final = f"{FLYWAY_IMAGE_HOME}/flyway"


class ImageRefusedError(Exception):
    """The image (or what the container asks of it) cannot run on the local node."""

    reason = REFUSED_REASON


@dataclass(frozen=True)
class ImageRef:
    repository: str
    """Without registry host and without docker.io's `library/`."""
    tag: str | None


def parse_image(image: str) -> ImageRef:
    name = image.split("@", 1)[0]
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if len(parts) == 2 and parts[0] == "library":
        parts = parts[1:]
    return ImageRef("/".join(parts), tag)


@dataclass(frozen=True)
class HostTools:
    """The host programs and files images map to."""

    java: str | None
    postgres_bin: str | None
    """/usr/lib/postgresql/<highest major>/bin, when any PostgreSQL is installed."""
    flyway_lib: Callable[[str], Path]
    """Version -> the host directory of its jars; raises ImageRefusedError when absent."""
    flyway_launcher: Path
    """The host file mounted at /flyway/flyway: runs Flyway's main class with the jars."""


@dataclass(frozen=True)
class Program:
    """What a container runs: argv (argv[0] found through PATH), the image's env and files."""

    argv: list[str]
    image_env: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    """Host files the image would contain, mounted read-only before the pod's volumes."""


def program_for(
    image: str, command: Sequence[str] | None, args: Sequence[str] | None, tools: HostTools
) -> Program:
    """The host program for a container, following Kubernetes' command/args semantics."""
    ref = parse_image(image)
    if ref.repository in FLYWAY_REPOSITORIES:
        return _flyway(image, ref, list(command or []), list(args or []), tools)
    last = ref.repository.rsplit("/", 1)[-1]
    if ref.repository == "postgres" or last.startswith("postgresql"):
        return _postgres(image, list(command or []), list(args or []), tools)
    raise ImageRefusedError(
        f'image "{image}" cannot run on the local node, which pulls no images and runs only '
        f"images whose programs the host has: {SUPPORTED}"
    )


def _flyway(
    image: str, ref: ImageRef, command: list[str], args: list[str], t: HostTools
) -> Program:
    match = _VERSION_TAG.match(ref.tag or "")
    if match is None:
        raise ImageRefusedError(
            f'image "{image}": the local node runs Flyway images by an exact version tag '
            "such as flyway/flyway:11.20.3-alpine"
        )
    if t.java is None:
        raise ImageRefusedError(f'image "{image}": java is not on the node PATH')
    lib = t.flyway_lib(match.group(1))
    path = f"{FLYWAY_IMAGE_HOME}:{posixpath.dirname(t.java)}:{STANDARD_PATH}"
    env = {"PATH": path, "LANG": "C.UTF-8"}
    # The image's ENTRYPOINT is `flyway` and its CMD `--help`.
    argv = command + args if command else ["flyway", *(args or ["--help"])]
    if posixpath.basename(argv[0]) == "flyway":
        argv = [t.java, "-cp", f"{FLYWAY_IMAGE_LIB}/*", FLYWAY_MAIN, *argv[1:]]
    mounts = [
        Mount(str(lib), FLYWAY_IMAGE_LIB, read_only=True),
        Mount(str(t.flyway_launcher), FLYWAY_IMAGE_LAUNCHER, read_only=True),
    ]
    return Program(argv, env, mounts)


def _postgres(image: str, command: list[str], args: list[str], t: HostTools) -> Program:
    if t.postgres_bin is None:
        raise ImageRefusedError(
            f'image "{image}": no PostgreSQL client programs under /usr/lib/postgresql; '
            "run: sudo bash scripts/install-postgres.sh"
        )
    # Without a command the image's entrypoint runs the server unless args name a program.
    argv = command + args if command else args
    if not argv or argv[0].startswith("-") or posixpath.basename(argv[0]) in _SERVER_PROGRAMS:
        raise ImageRefusedError(
            f'image "{image}": the local node runs PostgreSQL client programs only, not the '
            "server; give the container a command such as psql, pg_dump or sh"
        )
    program = argv[0]
    if posixpath.isabs(program) and not Path(program).exists():
        program = posixpath.basename(program)  # e.g. /opt/bitnami/postgresql/bin/psql
    env = {"PATH": f"{t.postgres_bin}:{STANDARD_PATH}", "LANG": "C.UTF-8"}
    return Program([program, *argv[1:]], env)


def postgres_bindir(root: Path = Path("/usr/lib/postgresql")) -> str | None:
    """The bin directory of the highest installed PostgreSQL major version."""
    majors = [p for p in root.glob("*/bin") if p.parent.name.isdigit()]
    if not majors:
        return None
    return str(max(majors, key=lambda p: int(p.parent.name)))
