"""The CloudNativePG images the local node runs: the operator, its operand (PostgreSQL as the
instance manager runs it), and the Barman Cloud plugin with its sidecar.

Built here from the binaries `scripts/install-engine.sh operator` compiles from the Go module
proxy and from Debian packages, as upstream's Dockerfiles lay them out. The names say they
are local builds (`localhost/`); `stands_for` says which upstream image each replaces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from standins.images.layers import Layer

CNPG_VERSION: Final = "1.27.1"
BARMAN_PLUGIN_VERSION: Final = "0.15.0"
PG_MAJOR: Final = "15"
OPERATOR_IMAGE: Final = f"localhost/cloudnative-pg:{CNPG_VERSION}"
OPERAND_IMAGE: Final = f"localhost/cloudnative-pg/postgresql:{PG_MAJOR}-bookworm"
"""The tag starts with the major version: the operator reads the version from the tag."""
PLUGIN_IMAGE: Final = f"localhost/plugin-barman-cloud:v{BARMAN_PLUGIN_VERSION}"
SIDECAR_IMAGE: Final = f"localhost/plugin-barman-cloud-sidecar:v{BARMAN_PLUGIN_VERSION}"
POSTGRES_UID: Final = 26
"""The operator runs PostgreSQL as 26:26 unless a Cluster says otherwise, as upstream's
operand images do; Debian's `tape` group holds gid 26, so it moves."""

NONROOT: Final = b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"


def operand_layer(postgres: Layer) -> Layer:
    """Debian's PostgreSQL, with its `postgres` user at the uid the operator runs it as."""
    uid = POSTGRES_UID
    return Layer(
        "cloudnative-pg-operand",
        parent=postgres,
        pre=(
            "groupmod -g 2026 tape\n"
            f"groupmod -g {uid} postgres\n"
            f"usermod -u {uid} -g {uid} postgres\n"
            # The instance pods mount their own /run; only the home moves to the new uid.
            "chown -R postgres:postgres /var/lib/postgresql"
        ),
    )


def sidecar_layer(base: Layer, plugin: Path) -> Layer:
    """Barman's cloud tools (Debian's barman-cli-cloud, boto3 for S3) beside the plugin's
    binary, which runs in the instance pods as their WAL archiver and backup agent."""
    uid = POSTGRES_UID
    return Layer(
        "barman-cloud-sidecar",
        parent=base,
        pre=(
            "groupmod -g 2026 tape\n"
            f"groupadd -g {uid} postgres\n"
            f"useradd -u {uid} -g {uid} -d /var/lib/postgresql -s /bin/sh postgres"
        ),
        apt=["barman-cli-cloud", "python3-boto3"],
        files={"/manager": (plugin, 0o755)},
    )


def static_layer(name: str, binary: Path) -> Layer:
    """A static binary at /manager, and, as upstream's operator image holds it, at
    /operator/manager_amd64: the operator finds the architectures it can run instances on
    by those names ("invalid architecture" without)."""
    return Layer(
        name,
        links={"/manager": "/operator/manager_amd64"},
        files={
            "/operator/manager_amd64": (binary, 0o755),
            "/etc/passwd": (b"root:x:0:0:root:/root:/sbin/nologin\n" + NONROOT, 0o644),
            "/etc/group": (b"root:x:0:\nnonroot:x:65532:\n", 0o644),
        },
    )
