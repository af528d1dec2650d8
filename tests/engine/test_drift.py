"""`make drift` as a person runs it on the local stack: a stack as deployed reports no drift
(nothing from Flyway's or the operator's own objects), and each change made by hand (an
index, a column, a revoked grant in the database; a ConfigMap deleted or relabelled and a
credentials Secret edited in the cluster; a history row edited) is reported by name with what
clears it, and is gone from the report once cleared (a revert by hand, a new migration,
`make up REFRESH=1`, `make migrations-repair`).

The database is changed as an operator would, from inside the cluster: `psql` in a pod like
the migration Job's (the one run-a-pod mechanism), logged in as the migrator; the cluster
through its API. Nothing here reads the local node's own workings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from deploy.drift import pods
from deploy.kube import Kube
from deploy.maintenance import run_pod
from tests.engine.checkout import Checkout

pytestmark = pytest.mark.engine

NAMESPACE = "messages"
"""The checkout's namespace (tests/engine/checkout.py)."""
TABLE = "drift_drill"
SCRIPT = "database/migrations/V900__drift_drill.sql"
DRILL = (
    f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, venue text NOT NULL, placed_at "
    "timestamptz NOT NULL DEFAULT now());\n"
)
KEEP_INDEX = "database/migrations/V901__keep_drill_index.sql"
NONE = "drift: none in local (infrastructure, history and schema as deployed)"


@pytest.fixture(scope="module")
def deployed(checkout: Checkout) -> Iterator[Checkout]:
    """The local stack deployed with a table of the test's own."""
    checkout.write(SCRIPT, DRILL)
    code, output = checkout.make("up", "STACK=local")
    assert code == 0, output
    yield checkout
    for script in (SCRIPT, KEEP_INDEX):
        (checkout.root / script).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def operator(kubeconfig: Path) -> Kube:
    """The cluster as the program's own commands reach it (deploy.kube)."""
    return Kube.connect(kubeconfig)


def _drift(checkout: Checkout) -> tuple[int, str]:
    """`make drift`: its exit code and its report. make exits 2 for any failure of what it
    runs; the code of the check itself (1 drift, 2 failed) is on make's last line."""
    code, output = checkout.make("drift", "STACK=local")
    assert "Traceback" not in output, output
    report = output[output.index("=== drift check of local ===") :]
    if code != 0:
        assert report.rstrip().endswith("drift] Error 1"), report
    return code, report


def _newest(kube: Kube, component: str) -> dict[str, Any]:
    jobs = kube.jobs(NAMESPACE, f"app.kubernetes.io/component={component}")
    assert jobs, f"no {component} Job in {NAMESPACE}"
    return max(jobs, key=lambda job: str(job["metadata"]["creationTimestamp"]))


def psql(kube: Kube, statements: str) -> None:
    """Statements run as the migrator, from a pod like the migration Job's, with the
    backup's PostgreSQL client: how an operator changes the database by hand. (Kubernetes
    reads `$$` in a command as an escaped `$`: dollar quotes here carry a tag.)"""
    job = _newest(kube, "migrations")
    image = _newest(kube, "backup")["spec"]["template"]["spec"]["containers"][0]["image"]
    finished = run_pod(
        kube,
        job,
        "drift-drill",
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", statements],
        deadline_seconds=300,
        image=image,
        env=pods.libpq_env(job),
        drop_volumes={pods.MIGRATIONS_VOLUME},
    )
    assert finished.succeeded, finished.log


def _hints(report: str) -> str:
    """The report's hint statements, as the person would copy them."""
    block = report.split("hint, statements that would undo it", 1)[1].split("\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if not line.startswith("    "):
            break
        lines.append(line.strip())
    return "\n".join(lines)


def _config_maps(kube: Kube) -> list[dict[str, Any]]:
    core = client.CoreV1Api(kube.api)
    listed = core.list_namespaced_config_map(
        NAMESPACE, label_selector="app.kubernetes.io/component=migrations"
    )
    return [kube.api.sanitize_for_serialization(item) for item in listed.items]


def test_a_stack_never_deployed_is_a_failed_check(checkout: Checkout) -> None:
    """Before the first `make up` (this runs before the module's deploy): nothing to compare,
    so the check fails (exit 2), naming why, instead of reporting no drift."""
    code, output = checkout.make("drift", "STACK=local")
    assert code != 0, output
    assert "local has deployed nothing yet" in output, output
    assert "drift: local: could not check infrastructure (exit 2)" in output, output
    assert output.rstrip().endswith("drift] Error 2"), output
    assert "Traceback" not in output, output


def test_a_stack_as_deployed_has_no_drift(deployed: Checkout) -> None:
    code, report = _drift(deployed)
    assert code == 0, report
    assert report.rstrip().endswith(NONE), report
    assert re.search(r"all \d+ resources of the state are as recorded", report), report
    assert "none pending, failed, missing or changed" in report
    assert "as the migrations make them" in report
    assert "flyway_schema_history" not in report


def test_schema_changed_by_hand_is_named_and_cleared(deployed: Checkout, operator: Kube) -> None:
    kube = operator
    readonly = (
        "DO $drill$ DECLARE r text; BEGIN SELECT grantee INTO STRICT r FROM "
        "information_schema.role_table_grants WHERE table_name = 'drift_drill' AND "
        "privilege_type = 'SELECT' AND grantee LIKE '%readonly'; "
        "EXECUTE format('REVOKE SELECT ON drift_drill FROM %I', r); END $drill$;"
    )
    psql(
        kube,
        "CREATE INDEX drift_drill_venue ON drift_drill (venue);\n"
        "ALTER TABLE drift_drill ALTER COLUMN venue TYPE varchar(16);\n" + readonly,
    )
    code, report = _drift(deployed)
    assert code != 0, report
    assert "drift: local: drift in schema (exit 1)" in report, report
    assert "+ index public.drift_drill_venue: in the live database, made by no migration" in (
        report
    )
    assert (
        "~ column public.drift_drill.venue: type 'text' expected, 'character varying(16)' live"
        in report
    )
    revoked = re.search(
        r"- grant SELECT on table public\.drift_drill to (\w+readonly): made by the "
        r"migrations, missing from the live database",
        report,
    )
    assert revoked, report
    assert "DROP INDEX public.drift_drill_venue;" in report
    assert f"GRANT SELECT ON TABLE public.drift_drill TO {revoked.group(1)};" in report
    assert "a new migration that makes it" in report
    assert "infrastructure: no drift" in report
    assert "history: no drift" in report

    # The column and the grant reverted by hand with the report's own hint; the index kept,
    # made by a new migration.
    hints = [h for h in _hints(report).splitlines() if "DROP INDEX" not in h]
    psql(kube, "\n".join(hints))
    deployed.write(
        KEEP_INDEX, "CREATE INDEX IF NOT EXISTS drift_drill_venue ON drift_drill (venue);\n"
    )
    code, output = deployed.make("up", "STACK=local")
    assert code == 0, output
    code, report = _drift(deployed)
    assert code == 0, report
    assert report.rstrip().endswith(NONE), report


def test_cluster_changed_by_hand_is_named_and_cleared(deployed: Checkout, operator: Kube) -> None:
    kube = operator
    core = client.CoreV1Api(kube.api)
    maps = {m["metadata"]["name"]: m for m in _config_maps(kube)}
    sql = next(name for name in maps if name.startswith("tradestream-sql-"))
    callbacks = next(name for name in maps if name.startswith("tradestream-callbacks-"))
    core.delete_namespaced_config_map(sql, NAMESPACE)
    core.patch_namespaced_config_map(
        callbacks, NAMESPACE, {"metadata": {"labels": {"app.kubernetes.io/part-of": "other"}}}
    )
    secret = "tradestream-migrator-credentials"
    core.patch_namespaced_secret(secret, NAMESPACE, {"stringData": {"username": "intruder"}})

    code, report = _drift(deployed)
    assert code != 0, report
    assert f"ConfigMap {NAMESPACE}/{sql} (kubernetes:core/v1:ConfigMap tradestream-sql-0): " in (
        report
    )
    assert "deleted from the cluster" in report
    assert f"ConfigMap {NAMESPACE}/{callbacks} (" in report
    assert 'metadata.labels["app.kubernetes.io/part-of"]: "tradestream" -> "other"' in report
    assert f"Secret {NAMESPACE}/{secret} (" in report
    assert "data.username: [secret] -> [secret] (changed)" in report
    assert "intruder" not in report
    assert "`make up STACK=local REFRESH=1`" in report
    assert "history: not checked" in report
    assert "drift: local: drift in infrastructure, history, schema (exit 1)" in report

    code, output = deployed.make("up", "STACK=local", "REFRESH=1")
    assert code == 0, output
    code, report = _drift(deployed)
    assert code == 0, report
    assert report.rstrip().endswith(NONE), report


def test_history_edited_by_hand_is_named_and_cleared(deployed: Checkout, operator: Kube) -> None:
    kube = operator
    psql(
        kube,
        "UPDATE flyway_schema_history SET checksum = checksum + 1 WHERE version = '900';",
    )
    code, report = _drift(deployed)
    assert code != 0, report
    changed = re.search(
        r"changed: V900 drift drill: applied with another checksum \((-?\d+) in the history, "
        r"(-?\d+) deployed\)",
        report,
    )
    assert changed, report
    assert int(changed.group(1)) == int(changed.group(2)) + 1
    assert "`make migrations-repair STACK=local` to record the deployed checksums" in report
    assert "drift: local: drift in history (exit 1)" in report

    code, output = deployed.make("migrations-repair", "STACK=local")
    assert code == 0, output
    code, report = _drift(deployed)
    assert code == 0, report
    assert report.rstrip().endswith(NONE), report
