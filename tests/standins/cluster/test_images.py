"""Image mapping: which images run as which host program, and which are refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from standins.cluster import flywayjars
from standins.cluster.images import (
    FLYWAY_MAIN,
    REFUSED_REASON,
    HostTools,
    ImageRef,
    ImageRefusedError,
    parse_image,
    program_for,
)
from standins.cluster.sandbox import Mount

LAUNCHER = Path("/state/images/flyway")


def flyway_lib(version: str) -> Path:
    return Path("/repo/.cache/flyway") / version / "lib"


TOOLS = HostTools("/usr/bin/java", "/usr/lib/postgresql/17/bin", flyway_lib, LAUNCHER)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("postgres:17", ImageRef("postgres", "17")),
        ("docker.io/library/postgres:17.2", ImageRef("postgres", "17.2")),
        ("flyway/flyway:11.20.3-alpine", ImageRef("flyway/flyway", "11.20.3-alpine")),
        ("registry.example.com:5000/flyway/flyway:11.20.3", ImageRef("flyway/flyway", "11.20.3")),
        ("localhost/bitnami/postgresql", ImageRef("bitnami/postgresql", None)),
        ("busybox@sha256:abcd", ImageRef("busybox", None)),
    ],
)
def test_parse_image(image: str, expected: ImageRef) -> None:
    assert parse_image(image) == expected


def test_flyway_command_runs_the_flyway_main_class_with_the_versions_jars() -> None:
    program = program_for(
        "docker.io/flyway/flyway:11.20.3-alpine",
        ["flyway", "-skipCheckForUpdate", "migrate"],
        None,
        TOOLS,
    )
    assert program.argv == [
        "/usr/bin/java",
        "-cp",
        "/flyway/lib/*",
        FLYWAY_MAIN,
        "-skipCheckForUpdate",
        "migrate",
    ]
    assert program.image_env["PATH"].startswith("/flyway:/usr/bin:")
    # Where the image has them, mounted read-only from the host: no copy anyone can write.
    assert program.mounts == [
        Mount("/repo/.cache/flyway/11.20.3/lib", "/flyway/lib", read_only=True),
        Mount(str(LAUNCHER), "/flyway/flyway", read_only=True),
    ]


def test_flyway_args_without_command_go_to_the_flyway_entrypoint() -> None:
    assert program_for("flyway/flyway:10.0.0", None, ["info"], TOOLS).argv[-2:] == [
        FLYWAY_MAIN,
        "info",
    ]
    assert program_for("flyway/flyway:10.0.0", None, None, TOOLS).argv[-1] == "--help"
    assert program_for("flyway/flyway:10.0.0", None, None, TOOLS).mounts[0].source == (
        "/repo/.cache/flyway/10.0.0/lib"
    )


def test_other_commands_in_the_flyway_image_find_flyway_on_path() -> None:
    program = program_for("flyway/flyway:11.20.3", ["sh", "-c", "flyway info"], None, TOOLS)
    assert program.argv == ["sh", "-c", "flyway info"]
    assert program.image_env["PATH"].split(":")[0] == "/flyway"


def test_flyway_needs_an_exact_version_tag() -> None:
    with pytest.raises(ImageRefusedError, match="exact version tag"):
        program_for("flyway/flyway:latest", ["flyway", "-v"], None, TOOLS)


@pytest.mark.parametrize(
    "image",
    [
        "postgres:17",
        "bitnami/postgresql:17.6.0",
        "docker.io/bitnamilegacy/postgresql:17.6.0-debian-12-r4",
        "ghcr.io/cloudnative-pg/postgresql:17.5",
    ],
)
def test_postgres_images_run_client_programs_from_the_newest_postgresql(image: str) -> None:
    program = program_for(image, ["pg_dump", "--version"], None, TOOLS)
    assert program.argv == ["pg_dump", "--version"]
    assert program.image_env["PATH"].split(":")[0] == "/usr/lib/postgresql/17/bin"
    assert program.mounts == []


def test_postgres_image_paths_that_only_exist_in_the_image_map_to_the_program() -> None:
    program = program_for(
        "bitnami/postgresql:17", ["/opt/bitnami/postgresql/bin/psql", "-c", "x"], None, TOOLS
    )
    assert program.argv == ["psql", "-c", "x"]
    assert program_for("postgres:17", None, ["psql", "--version"], TOOLS).argv == [
        "psql",
        "--version",
    ]


@pytest.mark.parametrize("args", [None, ["postgres"], ["-c", "fsync=off"]])
def test_the_postgresql_server_is_not_run(args: list[str] | None) -> None:
    with pytest.raises(ImageRefusedError, match="client programs only"):
        program_for("postgres:17", None, args, TOOLS)


@pytest.mark.parametrize(
    "image", ["busybox", "nginx:1.27", "docker.io/library/alpine:3", "postgres-exporter:1"]
)
def test_other_images_are_refused_with_a_reason_naming_what_runs(image: str) -> None:
    with pytest.raises(ImageRefusedError) as caught:
        program_for(image, ["sh", "-c", "true"], None, TOOLS)
    assert caught.value.reason == REFUSED_REASON == "ImageNotRunnableLocally"
    assert f'image "{image}" cannot run on the local node' in str(caught.value)
    assert "flyway/flyway:<X.Y.Z>" in str(caught.value)
    assert "postgres:*" in str(caught.value)


def test_missing_flyway_jars_name_the_fetch_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(flywayjars.HOME_ENV, str(tmp_path))
    with pytest.raises(ImageRefusedError, match=r"run: bash scripts/fetch-flyway\.sh 9\.9\.9"):
        flywayjars.source_lib("9.9.9")


def test_the_flyway_jars_are_used_in_place_when_every_user_can_read_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = tmp_path / "src" / "1.2.3" / "lib"
    lib.mkdir(parents=True)
    jar = lib / "flyway-commandline-1.2.3.jar"
    jar.write_bytes(b"jar")
    os.chmod(lib, 0o755)  # noqa: S103 (as scripts/fetch-flyway.sh leaves it)
    os.chmod(jar, 0o644)
    monkeypatch.setenv(flywayjars.HOME_ENV, str(tmp_path / "src"))
    assert flywayjars.source_lib("1.2.3") == lib

    os.chmod(jar, 0o600)  # a pod running as another user could not load it
    with pytest.raises(ImageRefusedError, match=r"not readable by every user.*chmod -R a\+rX"):
        flywayjars.source_lib("1.2.3")


def test_the_flyway_launcher_runs_the_main_class_on_the_mounted_jars(
    tmp_path: Path,
) -> None:
    launcher = tmp_path / "state" / "images" / "flyway"
    flywayjars.write_launcher(launcher, "/usr/bin/java")
    assert launcher.read_text() == (
        f"#!/bin/sh\nexec /usr/bin/java -cp '/flyway/lib/*' {FLYWAY_MAIN} \"$@\"\n"
    )
    assert stat.S_IMODE(launcher.stat().st_mode) == 0o755
