"""The images the local node runs, and what each stands in for.

No registry is reachable here, so every image is built on this machine:

- the images the local stack file names (`stacks/Pulumi.local.yaml`): its Flyway image
  (`flywayImageRepository:<flywayVersion>-alpine`), standing in for `flyway/flyway`: the same
  Flyway jars from Maven Central on Debian's OpenJDK 17 (Debian, not Alpine, inside); and its
  `backupImage`, standing in for `postgres`: PostgreSQL 15 from Debian bookworm, server and
  client tools, with an entrypoint that initialises an empty data directory like the official
  image's. The local stack's in-cluster server runs from it too;
- the node's own: the pod sandbox (`registry.k8s.io/pause`, a small Go program) and CoreDNS
  (`registry.k8s.io/coredns/coredns`, built from its module at the same version);
- CloudNativePG's: the operator, its operand and the Barman Cloud plugin with its sidecar
  (standins/images/operator.py), which the CloudNativePG local stack runs.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from components.settings.stackfile import read_stack_file
from standins.cluster.config import COREDNS_IMAGE, PAUSE_IMAGE
from standins.flyway_cli import FlywayNotInstalledError, fetch_command, flyway_lib
from standins.images import operator
from standins.images.layers import STANDARD_PATH, Files, Layer

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT: Final = REPO_ROOT / "scripts" / "install-engine.sh"
PG_MAJOR: Final = "15"
PG_UID: Final = 999
"""The postgres user's uid and gid, as in the official image."""
JAVA_HOME: Final = "/usr/lib/jvm/java-17-openjdk-amd64"

PG_ENTRYPOINT: Final = b"""#!/bin/sh
# As the official image's docker-entrypoint.sh: when PGDATA is empty, initdb with
# POSTGRES_USER / POSTGRES_PASSWORD (scram-sha-256 over TCP), then run the server.
set -eu
if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
if [ "$1" = postgres ]; then
    # A volume's fsGroup handling may have widened PGDATA; postgres wants 0700 or 0750.
    mkdir -p "$PGDATA" && chmod 700 "$PGDATA" 2>/dev/null || :
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        : "${POSTGRES_USER:=postgres}"
        pwfile=$(mktemp)
        printf '%s\\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}" >"$pwfile"
        initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \\
            --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
        rm -f "$pwfile"
        printf "listen_addresses = '*'\\n" >>"$PGDATA/postgresql.conf"
        printf 'host all all all scram-sha-256\\n' >>"$PGDATA/pg_hba.conf"
        echo "entrypoint: initialised $PGDATA"
    fi
fi
exec "$@"
"""

FLYWAY_LAUNCHER: Final = b"""#!/bin/sh
# Flyway's launcher: its jars on the class path, Java from the image.
exec java ${JAVA_ARGS:-} -Djava.io.tmpdir="${TMPDIR:-/tmp}" \\
    -cp '/flyway/lib/*:/flyway/drivers/*' org.flywaydb.commandline.Main "$@"
"""

NONROOT_PASSWD: Final = (
    b"root:x:0:0:root:/root:/sbin/nologin\n"
    b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
)


@dataclass(frozen=True)
class Image:
    name: str
    """The full reference containerd stores it under, as pods name it."""
    stands_for: str
    top: Layer
    config: dict[str, Any] = field(default_factory=dict)


def normalized(name: str) -> str:
    """The reference as containerd stores it: `postgres:15` is docker.io/library/postgres:15."""
    first, _, rest = name.partition("/")
    if not rest:
        return f"docker.io/library/{name}"
    if "." in first or ":" in first or first == "localhost":
        return name
    return f"docker.io/{name}"


def installed(part: str) -> Path:
    """Where scripts/install-engine.sh keeps `part`."""
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT), "path", part], capture_output=True, text=True, check=True
    )
    return Path(result.stdout.strip())


def _binary(part: str, name: str, step: str = "node") -> Path:
    path = installed(part) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run: bash scripts/install-engine.sh {step}")
    return path


def _flyway_jars(version: str) -> Path:
    try:
        return flyway_lib(version)
    except FlywayNotInstalledError:
        subprocess.run(fetch_command(version).split(), cwd=REPO_ROOT, check=True)
        return flyway_lib(version)


def postgres_layer(base: Layer) -> Layer:
    return Layer(
        f"postgresql-{PG_MAJOR}",
        parent=base,
        pre=(
            f"groupadd -r -g {PG_UID} postgres\n"
            f"useradd -r -g postgres -u {PG_UID} -d /var/lib/postgresql -s /bin/sh postgres\n"
            "mkdir -p /etc/postgresql-common\n"
            "echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf"
        ),
        apt=[f"postgresql-{PG_MAJOR}", f"postgresql-client-{PG_MAJOR}"],
        # JIT is optional (without llvmjit.so PostgreSQL reports it unavailable): dropping it
        # and libLLVM saves ~140 MB. ssl-cert's snakeoil key pair is made at random at install
        # time and debconf records a random temporary path: both removed or pinned, so the
        # layer is the same from build to build, and no image carries a build-time key.
        post=(
            "rm -rf /usr/lib/postgresql/*/lib/llvmjit*.so /usr/lib/postgresql/*/lib/bitcode "
            "/usr/lib/x86_64-linux-gnu/libLLVM-*.so* /usr/lib/x86_64-linux-gnu/libz3.so*\n"
            "rm -f /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem\n"
            "find /etc/ssl/certs -lname ssl-cert-snakeoil.pem -delete\n"
            "sed -i 's|^ NEW = /tmp/postgresql-common\\..*| NEW = /tmp/postgresql-common|' "
            "/var/cache/debconf/config.dat\n"
            "mkdir -p /var/run/postgresql /var/lib/postgresql/data\n"
            "chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql\n"
            "chmod 3777 /var/run/postgresql && chmod 1777 /var/lib/postgresql/data"
        ),
        files={"/usr/local/bin/docker-entrypoint.sh": (PG_ENTRYPOINT, 0o755)},
    )


def catalog() -> list[Image]:
    """Every image the local node imports, named as the local stack file names them."""
    settings = read_stack_file(REPO_ROOT, "local").settings
    base = Layer("debian-base", base=True)
    postgres = postgres_layer(base)
    # update-alternatives links java's man page into /usr/share/man/man1, which must exist.
    java = Layer(
        "openjdk-17-jre-headless",
        parent=base,
        apt=["openjdk-17-jre-headless"],
        pre="mkdir -p /usr/share/man/man1",
    )
    version = settings.flyway.version
    jars = _flyway_jars(version)
    flyway_files: Files = {
        f"/flyway/lib/{jar.name}": (jar, 0o644) for jar in sorted(jars.glob("*.jar"))
    }
    flyway_files["/flyway/flyway"] = (FLYWAY_LAUNCHER, 0o755)
    flyway_files["/flyway/sql/.keep"] = (b"", 0o644)
    flyway = Layer(f"flyway-{version}", parent=java, files=flyway_files)
    pause = Layer("pause", files={"/pause": (_binary("pause", "pause"), 0o755)})
    coredns = Layer(
        "coredns",
        files={
            "/coredns": (_binary("coredns", "coredns"), 0o755),
            "/etc/passwd": (NONROOT_PASSWD, 0o644),
            "/etc/group": (b"root:x:0:\nnonroot:x:65532:\n", 0o644),
        },
    )
    return [
        *_operator_images(base, postgres),
        Image(PAUSE_IMAGE, PAUSE_IMAGE, pause, {"Entrypoint": ["/pause"], "User": "65535:65535"}),
        Image(
            COREDNS_IMAGE,
            COREDNS_IMAGE,
            coredns,
            {"Entrypoint": ["/coredns"], "User": "65532:65532", "Env": [f"PATH={STANDARD_PATH}"]},
        ),
        Image(
            normalized(settings.backup.image),
            "docker.io/library/postgres:17.6",
            postgres,
            {
                "Env": [
                    f"PATH=/usr/lib/postgresql/{PG_MAJOR}/bin:{STANDARD_PATH}",
                    "LANG=C.UTF-8",
                    f"PG_MAJOR={PG_MAJOR}",
                    "PGDATA=/var/lib/postgresql/data",
                ],
                "Entrypoint": ["docker-entrypoint.sh"],
                "Cmd": ["postgres"],
                "StopSignal": "SIGINT",
                "ExposedPorts": {"5432/tcp": {}},
            },
        ),
        Image(
            normalized(settings.flyway.image),
            f"docker.io/flyway/flyway:{version}-alpine",
            flyway,
            {
                "Env": [
                    f"PATH=/flyway:{JAVA_HOME}/bin:{STANDARD_PATH}",
                    f"JAVA_HOME={JAVA_HOME}",
                    "LANG=C.UTF-8",
                ],
                "Entrypoint": ["flyway"],
                "Cmd": ["--help"],
                "WorkingDir": "/flyway",
            },
        ),
    ]


def _operator_images(base: Layer, postgres: Layer) -> list[Image]:
    manager = _binary("cnpg", "manager", "operator")
    plugin = _binary("barman-plugin", "manager", "operator")
    upstream = "ghcr.io/cloudnative-pg"
    nonroot = {"Entrypoint": ["/manager"], "User": "65532:65532"}
    uid = operator.POSTGRES_UID
    return [
        Image(
            operator.OPERATOR_IMAGE,
            f"{upstream}/cloudnative-pg:{operator.CNPG_VERSION}",
            operator.static_layer("cloudnative-pg", manager),
            nonroot,
        ),
        Image(
            operator.OPERAND_IMAGE,
            f"{upstream}/postgresql:17.6",
            operator.operand_layer(postgres),
            {
                "Env": [
                    f"PATH=/usr/lib/postgresql/{PG_MAJOR}/bin:{STANDARD_PATH}",
                    "LANG=C.UTF-8",
                ],
                "User": f"{uid}:{uid}",
            },
        ),
        Image(
            operator.PLUGIN_IMAGE,
            f"{upstream}/plugin-barman-cloud:v{operator.BARMAN_PLUGIN_VERSION}",
            operator.static_layer("plugin-barman-cloud", plugin),
            nonroot,
        ),
        Image(
            operator.SIDECAR_IMAGE,
            f"{upstream}/plugin-barman-cloud-sidecar:v{operator.BARMAN_PLUGIN_VERSION}",
            operator.sidecar_layer(base, plugin),
            {"Entrypoint": ["/manager"], "User": f"{uid}:{uid}", "Env": [f"PATH={STANDARD_PATH}"]},
        ),
    ]
