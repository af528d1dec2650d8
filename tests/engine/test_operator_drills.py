"""The production flavor for real: a stack shaped like staging (CloudNativePG, two instances,
roles managed by the operator, Barman Cloud backups to an object store) deployed by the
README's `make up STACK=local-cnpg` on the local node, where the real operator 1.27.1 and the
Barman Cloud plugin (standins/cnpg.py) reconcile what the program declares.

Each drill ends with `make up` changing nothing and `make preview REFRESH=1` finding nothing
to change: what the operator defaults or rewrites must not show as drift. The drills share
one Cluster and run in order; the last recovers it into a new one."""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import boto3  # type: ignore[import-untyped]
import psycopg
import pytest

from components.contract import Purpose, credentials_secret_name, role_name
from standins import localstack
from standins.cluster import forward, procs
from standins.cluster.api import Client
from standins.cluster.layout import Layout
from standins.images import operator as images
from standins.objectstore import ENDPOINT
from tests.engine.checkout import PREFIX, Checkout, copy_repository
from tests.engine.conftest import wait_until

pytestmark = pytest.mark.engine

STACK = localstack.CNPG_STACK
NAMESPACE = "drills-cnpg"
CLUSTER = "drills-pg"
DATABASE = "drills"
MIGRATIONS = "database/migrations"
CONFIG: dict[str, object] = {
    "namespace": NAMESPACE,
    "createNamespace": "false",
    "protectDatabase": "false",
    "disposable": "true",
    "databaseFlavor": "cloudnative-pg",
    "databaseName": DATABASE,
    "cnpgClusterName": CLUSTER,
    "cnpgInstallOperator": "false",
    "cnpgImage": images.OPERAND_IMAGE,
    "cnpgInstances": "2",
    "databaseRolesManagedBy": "cluster",
    "passwordSource": "generated",
    "postgresStorageSize": "1Gi",
    "postgresCpuRequest": "100m",
    "postgresMemoryRequest": "256Mi",
    "postgresCpuLimit": "1",
    "postgresMemoryLimit": "512Mi",
    "postgresReleaseTimeoutSeconds": "900",
    "flywayConnectRetries": "30",
    "flywayConnectRetriesInterval": "2",
    "flywayBaselineOnMigrate": "false",
    "flywayBackoffLimit": "0",
    "flywayJobTimeoutSeconds": "900",
    "backupBeforeMigrate": "true",
    "cnpgBackupMethod": "barman-cloud",
    "cnpgBackupDestinationPath": "s3://drills/cnpg",
    "cnpgBackupEndpointUrl": ENDPOINT,
    "cnpgBackupCredentials": "secret",
    "cnpgBackupCredentialsSecret": "drills-object-store",
    "backupTimeoutSeconds": "600",
    "flywayImageRepository": localstack.stack_settings().flyway.image.rsplit(":", 1)[0],
}
BACKUPS = f"/apis/postgresql.cnpg.io/v1/namespaces/{NAMESPACE}/backups"
JOBS = f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"


@pytest.fixture(scope="module")
def checkout(
    kube: Client, local_cluster: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Checkout]:
    """A copy of the repository whose `local-cnpg` stack file is this test's own."""
    root = tmp_path_factory.mktemp("checkout-cnpg")
    copy_repository(root)
    state = tmp_path_factory.mktemp("local-cnpg-state")
    env = {
        **os.environ,
        localstack.STATE_ENV: str(state),
        "PULUMI_YES": "1",
        "NO_COLOR": "1",
    }
    found = Checkout(root, env, {"config": {PREFIX + k: v for k, v in CONFIG.items()}}, stack=STACK)
    found.set()
    shutil.rmtree(root / MIGRATIONS)
    yield found
    found.make("destroy", f"STACK={STACK}")
    kube.delete(f"/api/v1/namespaces/{NAMESPACE}")
    shutil.rmtree(state, ignore_errors=True)


def _secret(kube: Client, name: str, key: str) -> str:
    secret = kube.get(f"/api/v1/namespaces/{NAMESPACE}/secrets/{name}")
    return base64.b64decode(secret["data"][key]).decode()


def connect(
    kube: Client, layout: Layout, purpose: Purpose | None, cluster: str = CLUSTER
) -> psycopg.Connection[tuple[Any, ...]]:
    """A role's login as an application gets it (None: the superuser's), through the
    Cluster's read-write Service."""
    service = kube.get(f"/api/v1/namespaces/{NAMESPACE}/services/{cluster}-rw")
    holder = procs.running(layout.pid_file("holder"))
    assert holder is not None
    port = forward.start(
        layout, holder.pid, f"drills-{cluster}-rw", f"{service['spec']['clusterIP']}:5432"
    ).port
    if purpose is None:
        secret, user = f"{cluster}-superuser-credentials", "postgres"
    else:
        secret = credentials_secret_name(DATABASE, purpose)
        user = _secret(kube, secret, "username")
    return psycopg.connect(
        host="127.0.0.1",
        port=port,
        dbname=DATABASE,
        user=user,
        password=_secret(kube, secret, "password"),
        connect_timeout=10,
        autocommit=True,
    )


def backups(kube: Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kube.get(BACKUPS)["items"]
    return sorted(items, key=lambda b: b["metadata"]["creationTimestamp"])


def flyway_jobs(kube: Client) -> list[dict[str, Any]]:
    """The migration Jobs, oldest first."""
    query = {"labelSelector": "app.kubernetes.io/component=migrations"}
    items: list[dict[str, Any]] = kube.get(JOBS, query)["items"]
    return sorted(items, key=lambda j: j["metadata"]["creationTimestamp"])


def base_backups(layout: Layout) -> list[str]:
    """The base backups of the drills' Cluster in the node's object store."""
    holder = procs.running(layout.pid_file("holder"))
    assert holder is not None
    port = forward.start(layout, holder.pid, "drills-object-store", ENDPOINT[len("http://") :])
    store = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port.port}",
        aws_access_key_id="drills",
        aws_secret_access_key="drills",
        region_name="us-east-1",
    )
    listed = store.list_objects_v2(Bucket="drills", Prefix=f"cnpg/{CLUSTER}/base/")
    return sorted(
        item["Key"] for item in listed.get("Contents", []) if item["Key"].endswith("backup.info")
    )


def settled(checkout: Checkout) -> None:
    """`make up` changes nothing; a refreshed preview finds nothing to change."""
    code, again = checkout.make("up", f"STACK={STACK}")
    assert code == 0, again
    assert not re.search(r"\b\d+ (created|updated|replaced|deleted)\b", again), again
    code, refreshed = checkout.make("preview", f"STACK={STACK}", "REFRESH=1")
    assert code == 0, refreshed
    assert not re.search(r"\b\d+ to (create|update|replace|delete)\b", refreshed), refreshed


def test_deploy_then_a_second_migration(
    checkout: Checkout, kube: Client, local_cluster: Path
) -> None:
    checkout.write(
        f"{MIGRATIONS}/V1__accounts.sql",
        "CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL);\n"
        "INSERT INTO accounts VALUES (1, 'ada'), (2, 'grace');\n",
    )
    code, first = checkout.make("up", f"STACK={STACK}")
    assert code == 0, first
    assert 'Successfully applied 1 migration to schema "public", now at version v1' in first

    cluster = kube.get(f"/apis/postgresql.cnpg.io/v1/namespaces/{NAMESPACE}/clusters/{CLUSTER}")
    status = cluster["status"]
    assert status["readyInstances"] == 2, status
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Ready"] == "True", conditions
    assert conditions["ContinuousArchiving"] == "True", conditions
    reconciled = set(status["managedRolesStatus"]["byStatus"]["reconciled"])
    assert {role_name(DATABASE, p) for p in Purpose} <= reconciled, status["managedRolesStatus"]

    [backup] = backups(kube)
    assert backup["status"]["phase"] == "completed", backup["status"]
    [job] = flyway_jobs(kube)
    assert backup["status"]["stoppedAt"] <= job["status"]["startTime"], (backup, job)

    layout = Layout(local_cluster)
    with connect(kube, layout, Purpose.MIGRATOR) as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'accounts'")
        assert owner.fetchone() == (role_name(DATABASE, Purpose.MIGRATOR),)
        applied = conn.execute("SELECT installed_by FROM flyway_schema_history WHERE version='1'")
        assert applied.fetchone() == (role_name(DATABASE, Purpose.MIGRATOR),)
    with connect(kube, layout, Purpose.APP) as conn:
        assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM flyway_schema_history")
    settled(checkout)

    # A second migration: a new backup first, then Flyway applies only the new file.
    checkout.write(f"{MIGRATIONS}/V2__notes.sql", "ALTER TABLE accounts ADD COLUMN note text;\n")
    code, second = checkout.make("up", f"STACK={STACK}")
    assert code == 0, second
    assert 'Successfully applied 1 migration to schema "public", now at version v2' in second
    # The program's Backup object is replaced; the first base backup stays in the store.
    [newer] = backups(kube)
    assert newer["metadata"]["name"] != backup["metadata"]["name"]
    assert newer["status"]["phase"] == "completed", newer["status"]
    assert len(base_backups(layout)) == 2
    latest = flyway_jobs(kube)[-1]
    assert newer["status"]["stoppedAt"] <= latest["status"]["startTime"], (newer, latest)
    with connect(kube, layout, Purpose.MIGRATOR) as conn:
        history = conn.execute(
            "SELECT version, count(*) FROM flyway_schema_history GROUP BY version ORDER BY 1"
        )
        assert history.fetchall() == [("1", 1), ("2", 1)]
    settled(checkout)


def test_an_unreachable_object_store_stops_the_deploy_before_flyway(
    checkout: Checkout, kube: Client, local_cluster: Path
) -> None:
    jobs_before = len(flyway_jobs(kube))
    checkout.write(f"{MIGRATIONS}/V3__flags.sql", "ALTER TABLE accounts ADD COLUMN flag int;\n")
    # Nothing listens there: the instances' backup agent cannot reach the store.
    checkout.set(cnpgBackupEndpointUrl=ENDPOINT.rsplit(":", 1)[0] + ":9")
    code, failed = checkout.make("up", f"STACK={STACK}")
    assert code != 0, failed
    failure = backups(kube)[-1]
    assert failure["status"]["phase"] == "failed", failure["status"]
    assert failure["metadata"]["name"] in failed, failed
    assert f"ended in phase failed: {failure['status']['error'][:40]}" in failed, failed
    assert len(flyway_jobs(kube)) == jobs_before
    with connect(kube, Layout(local_cluster), Purpose.MIGRATOR) as conn:
        versions = conn.execute("SELECT max(version::int) FROM flyway_schema_history")
        assert versions.fetchone() == (2,)

    # The store back: the next `up` takes a new backup, then migrates.
    checkout.set()
    code, fixed = checkout.make("up", f"STACK={STACK}")
    assert code == 0, fixed
    assert 'Successfully applied 1 migration to schema "public", now at version v3' in fixed
    assert backups(kube)[-1]["status"]["phase"] == "completed"
    settled(checkout)


def test_more_instances_and_a_migration_in_one_up(
    checkout: Checkout, kube: Client, local_cluster: Path
) -> None:
    checkout.write(f"{MIGRATIONS}/V4__seen.sql", "ALTER TABLE accounts ADD COLUMN seen date;\n")
    config = cast("dict[str, object]", checkout.stack_file["config"])
    checkout.stack_file = {"config": {**config, PREFIX + "cnpgInstances": "3"}}
    checkout.set()
    code, scaled = checkout.make("up", f"STACK={STACK}")
    assert code == 0, scaled
    assert 'Successfully applied 1 migration to schema "public", now at version v4' in scaled
    third = kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{CLUSTER}-3")
    [ready] = [c for c in third["status"]["conditions"] if c["type"] == "Ready"]
    backup = backups(kube)[-1]
    # The backup (and Flyway after it) started once the operator had rolled the change.
    assert ready["status"] == "True"
    assert ready["lastTransitionTime"] <= backup["metadata"]["creationTimestamp"], (
        ready,
        backup["metadata"],
    )
    with connect(kube, Layout(local_cluster), Purpose.APP) as conn:
        assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (2,)
    settled(checkout)


def _primary(kube: Client) -> str:
    cluster = kube.get(f"/apis/postgresql.cnpg.io/v1/namespaces/{NAMESPACE}/clusters/{CLUSTER}")
    primary: str = cluster["status"]["currentPrimary"]
    return primary


def _healthy_after(kube: Client, old: str) -> bool:
    cluster = kube.get(f"/apis/postgresql.cnpg.io/v1/namespaces/{NAMESPACE}/clusters/{CLUSTER}")
    status = cluster["status"]
    ready = {c["type"]: c["status"] for c in status.get("conditions", [])}.get("Ready")
    return bool(
        status.get("currentPrimary") not in (None, old)
        and status.get("readyInstances") == cluster["spec"]["instances"]
        and ready == "True"
    )


def test_failover_when_idle(checkout: Checkout, kube: Client, local_cluster: Path) -> None:
    old = _primary(kube)
    kube.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/{old}")
    wait_until(lambda: _healthy_after(kube, old), "a new primary and every instance ready", 600)
    settled(checkout)
    with connect(kube, Layout(local_cluster), Purpose.MIGRATOR) as conn:
        # Nothing applied twice: one row per version.
        history = conn.execute(
            "SELECT version, count(*) FROM flyway_schema_history WHERE version IS NOT NULL "
            "GROUP BY version HAVING count(*) > 1"
        )
        assert history.fetchall() == []


LOCK = 7_340_033
"""The advisory lock the failover drill's migration waits on while the drill holds it."""


def test_failover_during_a_migration(checkout: Checkout, kube: Client, local_cluster: Path) -> None:
    checkout.write(
        f"{MIGRATIONS}/V5__audit.sql",
        "CREATE TABLE audit (id int PRIMARY KEY);\n"
        f"SELECT pg_advisory_xact_lock({LOCK});\n"
        "INSERT INTO audit VALUES (1);\n",
    )
    layout = Layout(local_cluster)
    holder = connect(kube, layout, Purpose.MIGRATOR)
    holder.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
    old = _primary(kube)

    def migration_waits() -> bool:
        waiting = holder.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s "
            "AND NOT granted",
            (LOCK,),
        ).fetchone()
        return waiting == (1,)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(checkout.make, "up", f"STACK={STACK}")
        # The event: Flyway is inside V5's transaction, waiting on the drill's lock.
        wait_until(lambda: running.done() or migration_waits(), "V5 waiting on its lock", 900)
        assert not running.done(), running.result()[1]
        # At once, as when its node is lost: no smart shutdown waiting for the sessions.
        kube.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/{old}", {"gracePeriodSeconds": 0})
        code, interrupted = running.result()
    with contextlib.suppress(psycopg.Error):
        holder.close()
    assert code != 0, interrupted
    wait_until(lambda: _healthy_after(kube, old), "a new primary and every instance ready", 600)

    # The retry migrates after a new backup of what was written since; the older one stays.
    before_retry, stored = backups(kube)[-1], base_backups(layout)
    code, retried = checkout.make("up", f"STACK={STACK}")
    assert code == 0, retried
    assert 'Successfully applied 1 migration to schema "public", now at version v5' in retried
    assert "taking a new one before the retry" in retried, retried
    retake = backups(kube)[-1]
    assert retake["metadata"]["name"] != before_retry["metadata"]["name"]
    assert retake["status"]["phase"] == "completed", retake["status"]
    assert retake["status"]["stoppedAt"] <= flyway_jobs(kube)[-1]["status"]["startTime"]
    assert set(stored) < set(base_backups(layout))
    with connect(kube, layout, Purpose.MIGRATOR) as conn:
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (1,)
        history = conn.execute(
            "SELECT count(*) FROM flyway_schema_history WHERE version = '5' AND success"
        )
        assert history.fetchone() == (1,)
    settled(checkout)


RESTORED = "drills-pg-r"
ACCOUNTS = "V1__accounts.sql"


def _contents(conn: psycopg.Connection[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    """The rows the recovery must bring back, and Flyway's history."""
    return {
        "accounts": conn.execute("SELECT id, name FROM accounts ORDER BY id").fetchall(),
        "history": conn.execute(
            "SELECT installed_rank, version, script, checksum, success "
            "FROM flyway_schema_history ORDER BY installed_rank"
        ).fetchall(),
    }


def _archived_past_now(kube: Client, layout: Layout) -> None:
    """The README's step before a recovery: the WAL segment holding the damage is closed and
    archived, so that recovery reaches the target (PostgreSQL stops at the first commit after
    it, and fails when the archive ends before it)."""
    with connect(kube, layout, None) as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        assert row is not None
        closed = str(row[0])

        def archived() -> bool:
            last = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
            return last is not None and last[0] is not None and str(last[0]) >= closed

        wait_until(archived, f"WAL segment {closed} archived", 300)


def test_recovery_to_the_moment_before_a_bad_migration(
    checkout: Checkout, kube: Client, local_cluster: Path
) -> None:
    """The README's "Recovering a CloudNativePG cluster", step by step, on a protected
    stack: a bad migration damages data; the stack file names a new Cluster recovered from
    the old one's archive up to the start of the bad run; `make up` refuses until the
    protection is released on purpose, then creates the recovered Cluster in place of the
    old one, which stays in the cluster, forgotten by the state."""
    layout = Layout(local_cluster)
    checkout.write(
        f"{MIGRATIONS}/{ACCOUNTS}",
        "CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL);\n"
        "INSERT INTO accounts VALUES (1, 'ada'), (2, 'grace');\n",
    )
    protected = {"protectDatabase": "true", "disposable": None}
    checkout.set(**protected)
    code, deployed = checkout.make("up", f"STACK={STACK}")
    assert code == 0, deployed
    with connect(kube, layout, Purpose.APP) as conn:
        conn.execute("INSERT INTO accounts (id, name) VALUES (3, 'linus')")
    with connect(kube, layout, Purpose.MIGRATOR) as conn:
        before = _contents(conn)

    bad = sorted(p.name for p in (checkout.root / MIGRATIONS).glob("V*.sql"))
    version = max(int(name[1:].split("__", 1)[0]) for name in bad) + 1
    damage = f"V{version}__tidy_accounts.sql"
    checkout.write(
        f"{MIGRATIONS}/{damage}",
        "DELETE FROM accounts WHERE id > 1;\nUPDATE accounts SET name = 'nobody';\n",
    )
    code, damaged = checkout.make("up", f"STACK={STACK}")
    assert code == 0, damaged
    with connect(kube, layout, Purpose.APP) as conn:
        assert conn.execute("SELECT id, name FROM accounts").fetchall() == [(1, "nobody")]
    # The moment to recover to: the start of the Job that ran the bad migration.
    target = flyway_jobs(kube)[-1]["status"]["startTime"]
    _archived_past_now(kube, layout)

    # The stack file names the recovered Cluster; the bad migration goes.
    (checkout.root / MIGRATIONS / damage).unlink()
    recovery = {
        **protected,
        "cnpgClusterName": RESTORED,
        "cnpgBackupServerName": RESTORED,
        "cnpgRecoverFrom": CLUSTER,
        "cnpgRecoveryTargetTime": target,
        "cnpgInstances": "2",
    }
    checkout.set(**recovery)
    for command in ("preview", "up"):
        code, refused = checkout.make(command, f"STACK={STACK}")
        assert code != 0, refused
        assert f"cnpgClusterName (deployed: {CLUSTER}) changed" in refused, refused
        assert "Nothing was changed" in refused
        assert f"make unprotect STACK={STACK}" in refused, refused
    code, released = checkout.make("unprotect", f"STACK={STACK}")
    assert code == 0, released
    assert "released the protection of" in released, released

    code, previewed = checkout.make("preview", f"STACK={STACK}")
    assert code == 0, previewed
    assert re.search(r"\b\d+ to replace\b", previewed), previewed
    code, recovered = checkout.make("up", f"STACK={STACK}")
    assert code == 0, recovered
    assert re.search(r"\b\d+ replaced\b", recovered), recovered
    cluster = kube.get(f"/apis/postgresql.cnpg.io/v1/namespaces/{NAMESPACE}/clusters/{RESTORED}")
    # Written as Kubernetes gives it (RFC 3339, UTC), handed to PostgreSQL in its own form.
    assert cluster["spec"]["bootstrap"]["recovery"]["recoveryTarget"] == {
        "targetTime": target.replace("T", " ").replace("Z", "+00:00")
    }
    conditions = {c["type"]: c["status"] for c in cluster["status"]["conditions"]}
    assert conditions["Ready"] == "True", conditions
    assert conditions["ContinuousArchiving"] == "True", conditions
    # The damaged Cluster was only forgotten: it is still there for a look, until deleted.
    kube.get(f"/apis/postgresql.cnpg.io/v1/namespaces/{NAMESPACE}/clusters/{CLUSTER}")
    with connect(kube, layout, Purpose.MIGRATOR, RESTORED) as conn:
        assert _contents(conn) == before
    with (
        connect(kube, layout, Purpose.APP, RESTORED) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("DELETE FROM flyway_schema_history")
    settled(checkout)
