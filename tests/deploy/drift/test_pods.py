"""The check's pods made from the deployed migration Job (pure): libpq's settings from
Flyway's, what the pod reads, the migration files laid out from the state's ConfigMaps."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from deploy.drift import expected, pods
from deploy.maintenance import PURPOSE_LABEL, maintenance_job

URL = "jdbc:postgresql://db.dev.svc:5432/tradestream?sslmode=verify-full&sslrootcert=/tls/ca.crt"


def deployed_job() -> dict[str, Any]:
    return {
        "metadata": {"name": "tradestream-job-1234", "namespace": "dev", "labels": {"a": "b"}},
        "spec": {
            "template": {
                "metadata": {"labels": {"a": "b", "job-name": "tradestream-job-1234"}},
                "spec": {
                    "containers": [
                        {
                            "name": "flyway",
                            "image": "flyway/flyway:11",
                            "args": ["migrate"],
                            "env": [
                                {"name": "FLYWAY_URL", "value": URL},
                                {"name": "FLYWAY_USER", "value": "tradestream_migrator"},
                                {
                                    "name": "FLYWAY_PASSWORD",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": "creds", "key": "password"}
                                    },
                                },
                            ],
                            "volumeMounts": [
                                {"name": "migrations", "mountPath": "/flyway/sql"},
                                {"name": "tls", "mountPath": "/tls"},
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "migrations",
                            "projected": {
                                "sources": [
                                    {
                                        "configMap": {
                                            "name": "sql-0-abc",
                                            "items": [
                                                {"key": "V1__a.sql", "path": "V1__a.sql"},
                                                {"key": "d-V2__b.sql", "path": "d/V2__b.sql"},
                                            ],
                                        }
                                    }
                                ]
                            },
                        },
                        {"name": "tls", "secret": {"secretName": "ca"}},
                    ],
                },
            }
        },
    }


def test_libpq_logs_in_as_flyway_does_with_the_password_by_reference() -> None:
    env = {var["name"]: var for var in pods.libpq_env(deployed_job())}
    assert env["PGHOST"]["value"] == "db.dev.svc"
    assert env["PGDATABASE"]["value"] == "tradestream"
    assert env["PGUSER"]["value"] == "tradestream_migrator"
    assert env["PGSSLMODE"]["value"] == "verify-full"
    assert env["PGSSLROOTCERT"]["value"] == "/tls/ca.crt"
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "creds", "key": "password"}
    assert "value" not in env["PGPASSWORD"]


def test_a_job_without_flyways_login_is_refused_by_name() -> None:
    job = deployed_job()
    job["spec"]["template"]["spec"]["containers"][0]["env"].pop()
    with pytest.raises(pods.PodError, match="FLYWAY_PASSWORD"):
        pods.libpq_env(job)


def test_what_the_pod_reads() -> None:
    assert pods.needs(deployed_job()) == {
        ("ConfigMap", "sql-0-abc"),
        ("Secret", "ca"),
        ("Secret", "creds"),
    }


def test_the_schema_pod_is_the_jobs_pod_with_the_client_image_and_no_migrations() -> None:
    job = deployed_job()
    body = maintenance_job(
        job,
        pods.SCHEMA_PURPOSE,
        pods.SCHEMA_COMMAND,
        deadline_seconds=300,
        image="postgres:17",
        env=pods.libpq_env(job),
        drop_volumes={pods.MIGRATIONS_VOLUME},
    )
    pod = body["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "postgres:17"
    assert container["command"][0] == "psql"
    assert "args" not in container
    assert [v["name"] for v in pod["volumes"]] == ["tls"]
    assert [m["name"] for m in container["volumeMounts"]] == ["tls"]
    assert body["metadata"]["labels"][PURPOSE_LABEL] == "drift-schema"
    assert "job-name" not in body["spec"]["template"]["metadata"]["labels"]
    assert job["spec"]["template"]["spec"]["volumes"][0]["name"] == "migrations"  # untouched
    assert pods.command_line(pods.SCHEMA_COMMAND).endswith("-c <catalog query>")


def _config_map(name: str, data: dict[str, str], binary: dict[str, str]) -> dict[str, Any]:
    return {
        "type": expected.CONFIG_MAP_TYPE,
        "outputs": {"metadata": {"name": name}, "data": data, "binaryData": binary},
    }


def test_the_deployed_files_are_laid_out_from_the_state(tmp_path: Path) -> None:
    latin = base64.b64encode("SELECT 'é';\n".encode("latin-1")).decode()
    resources = [_config_map("sql-0-abc", {"V1__a.sql": "SELECT 1;\n"}, {"d-V2__b.sql": latin})]
    assert expected.lay_out(deployed_job(), resources, tmp_path) == 2
    assert (tmp_path / "V1__a.sql").read_text() == "SELECT 1;\n"
    assert (tmp_path / "d" / "V2__b.sql").read_bytes() == "SELECT 'é';\n".encode("latin-1")


def test_a_configmap_the_state_does_not_hold_is_named(tmp_path: Path) -> None:
    with pytest.raises(expected.ExpectedError, match="no ConfigMap sql-0-abc"):
        expected.lay_out(deployed_job(), [], tmp_path)
