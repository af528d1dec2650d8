"""The local cluster end to end: Jobs and pods really run on the node agent."""

from __future__ import annotations

import base64
import secrets
import stat
from pathlib import Path

import pytest

from components.contract import DatabaseEndpoint, ServerAddress
from components.jobs import flyway
from components.settings import FLYWAY_VERSION, FlywaySettings
from standins.cluster import procs
from standins.cluster.layout import NODE_NAME
from tests.standins.cluster.cluster import Cluster, Obj, cli

pytestmark = pytest.mark.engine

PG_IMAGE = "postgres:17"


def shell(name: str, script: str, **container: object) -> Obj:
    return {"name": name, "image": PG_IMAGE, "command": ["sh", "-c", script], **container}


def test_start_again_is_a_no_op_and_status_reports_every_component(cluster_state: Path) -> None:
    again = cli(cluster_state, "start")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert again.stdout.strip().endswith(str(cluster_state / "kubeconfig"))
    status = cli(cluster_state, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    for component in ("etcd", "kube-apiserver", "kube-controller-manager", "agent"):
        assert f"{component}: running" in status.stdout
    assert cli(cluster_state, "kubeconfig").stdout.strip() == str(cluster_state / "kubeconfig")
    # The state holds the CA key and the admin token: no one else may read it.
    assert stat.S_IMODE(cluster_state.stat().st_mode) == 0o700
    assert stat.S_IMODE((cluster_state / "kubeconfig").stat().st_mode) == 0o600


def test_the_node_is_ready_and_holds_its_lease(cluster: Cluster) -> None:
    node = cluster.api.get(f"/api/v1/nodes/{NODE_NAME}")
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"
    assert node["status"]["allocatable"]["pods"] == "110"
    lease = cluster.api.get(
        f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE_NAME}"
    )
    assert lease["spec"]["holderIdentity"] == NODE_NAME


def test_a_psql_job_completes_and_its_log_is_kept(cluster: Cluster) -> None:
    spec = {
        "restartPolicy": "Never",
        "containers": [{"name": "psql", "image": PG_IMAGE, "command": ["psql", "--version"]}],
    }
    cluster.create_job("psql-version", spec)
    assert cluster.job_outcome("psql-version") == "Complete", cluster.explain("psql-version")
    (pod,) = cluster.job_pods("psql-version")
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    assert "psql (PostgreSQL)" in cluster.log(pod["metadata"]["name"], "psql")
    logs = cli(cluster.layout.state, "logs", "--job", cluster.namespace, "psql-version")
    assert logs.returncode == 0, logs.stderr
    assert "psql (PostgreSQL)" in logs.stdout


def test_an_image_the_node_cannot_run_fails_the_job_with_the_reason(cluster: Cluster) -> None:
    spec = {
        "restartPolicy": "Never",
        "containers": [{"name": "box", "image": "busybox", "command": ["echo", "hi"]}],
    }
    cluster.create_job("busybox", spec)
    assert cluster.job_outcome("busybox") == "Failed", cluster.explain("busybox")
    (pod,) = cluster.job_pods("busybox")
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["reason"] == "ImageNotRunnableLocally"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "ImageNotRunnableLocally"
    assert 'image "busybox" cannot run on the local node' in terminated["message"]
    assert "flyway/flyway" in terminated["message"]


def test_the_programs_flyway_pod_template_runs_flyway(cluster: Cluster) -> None:
    """The Job's own pod: non-root user, projected migrations, emptyDir /tmp, secret env."""
    endpoint = DatabaseEndpoint(
        ServerAddress("db.example", 5432, "app"), "app_owner", "db-credentials", "password"
    )
    password = base64.b64encode(b"not-used").decode()
    cluster.api.post(
        f"/api/v1/namespaces/{cluster.namespace}/secrets",
        {"metadata": {"name": "db-credentials"}, "data": {"password": password}},
    )
    cluster.api.post(
        f"/api/v1/namespaces/{cluster.namespace}/configmaps",
        {"metadata": {"name": "migrations"}, "data": {"V1__init.sql": "create table t (id int);"}},
    )
    settings = FlywaySettings()
    template = flyway.pod_template(
        settings,
        flyway.flyway_environment(settings, endpoint),
        flyway.volume_sources([("migrations", [("V1__init.sql", "V1__init.sql")])]),
        labels={},
        annotations={},
    )
    template["spec"]["containers"][0]["command"] = ["flyway", "-skipCheckForUpdate", "-v"]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "flyway-version"},
        "spec": flyway.job_spec(settings, template),
    }
    cluster.api.post(f"/apis/batch/v1/namespaces/{cluster.namespace}/jobs", job)
    assert cluster.job_outcome("flyway-version") == "Complete", cluster.explain("flyway-version")
    (pod,) = cluster.job_pods("flyway-version")
    log = cluster.log(pod["metadata"]["name"], "flyway")
    assert f"Flyway OSS Edition {FLYWAY_VERSION}" in log


def test_a_projected_config_map_is_mounted_read_only_for_the_pods_user(cluster: Cluster) -> None:
    cluster.api.post(
        f"/api/v1/namespaces/{cluster.namespace}/configmaps",
        {"metadata": {"name": "scripts"}, "data": {"one": "select 1;"}},
    )
    script = (
        "cat /data/x/y.sql; echo; id -u; id -G;"
        " touch /data/x/new 2>/dev/null && echo writable || echo read-only"
    )
    spec = {
        "restartPolicy": "Never",
        # 0440 files: readable through fsGroup only, as in a real cluster.
        "securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10002},
        "containers": [
            shell(
                "reader",
                script,
                volumeMounts=[{"name": "d", "mountPath": "/data", "readOnly": True}],
            )
        ],
        "volumes": [
            {
                "name": "d",
                "projected": {
                    "defaultMode": 0o440,
                    "sources": [
                        {
                            "configMap": {
                                "name": "scripts",
                                "items": [{"key": "one", "path": "x/y.sql"}],
                            }
                        }
                    ],
                },
            }
        ],
    }
    cluster.create_pod("projected", spec)
    pod = cluster.pod_phase("projected", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Succeeded", cluster.explain_pod(pod)
    assert cluster.log("projected", "reader").splitlines() == [
        "select 1;",
        "10001",
        "10001 10002",
        "read-only",
    ]


def test_env_sources_and_expansion_reach_the_process(cluster: Cluster) -> None:
    cluster.api.post(
        f"/api/v1/namespaces/{cluster.namespace}/secrets",
        {"metadata": {"name": "greeting"}, "stringData": {"word": "hello"}},
    )
    container = shell(
        "env",
        'echo "$MESSAGE"; echo "$1"',
        args=["--", "$(POD_NAME) in $(NAMESPACE)"],
        env=[
            {"name": "WORD", "valueFrom": {"secretKeyRef": {"name": "greeting", "key": "word"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "MESSAGE", "value": "$(WORD), $(POD_NAME)! $$(WORD)"},
        ],
    )
    cluster.create_pod("env", {"restartPolicy": "Never", "containers": [container]})
    pod = cluster.pod_phase("env", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Succeeded", cluster.explain_pod(pod)
    assert cluster.log("env", "env").splitlines() == [
        "hello, env! $(WORD)",
        f"env in {cluster.namespace}",
    ]


def test_init_containers_run_first_and_share_empty_dirs(cluster: Cluster) -> None:
    mounts = [{"name": "scratch", "mountPath": "/scratch"}]
    spec = {
        "restartPolicy": "Never",
        "initContainers": [shell("first", "echo from-init > /scratch/note", volumeMounts=mounts)],
        "containers": [shell("second", "cat /scratch/note", volumeMounts=mounts)],
        "volumes": [{"name": "scratch", "emptyDir": {}}],
    }
    cluster.create_pod("init", spec)
    pod = cluster.pod_phase("init", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Succeeded", cluster.explain_pod(pod)
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert cluster.log("init", "second") == "from-init\n"


def test_on_failure_restarts_the_container_in_place(cluster: Cluster) -> None:
    script = (
        "if [ -f /scratch/once ]; then echo second run;"
        " else touch /scratch/once; echo first run; exit 3; fi"
    )
    spec = {
        "restartPolicy": "OnFailure",
        "containers": [
            shell("flaky", script, volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}])
        ],
        "volumes": [{"name": "scratch", "emptyDir": {}}],
    }
    cluster.create_pod("flaky", spec)
    pod = cluster.pod_phase("flaky", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Succeeded", cluster.explain_pod(pod)
    status = pod["status"]["containerStatuses"][0]
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert cluster.log("flaky", "flaky") == "first run\nsecond run\n"


def test_a_failing_container_fails_the_pod_with_its_exit_code(cluster: Cluster) -> None:
    spec = {"restartPolicy": "Never", "containers": [shell("fails", "echo oops >&2; exit 7")]}
    cluster.create_pod("fails", spec)
    pod = cluster.pod_phase("fails", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Failed", cluster.explain_pod(pod)
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (7, "Error")
    assert cluster.log("fails", "fails") == "oops\n"


def test_deleting_a_running_pod_kills_it_and_keeps_its_log(cluster: Cluster) -> None:
    spec = {
        "restartPolicy": "Never",
        "containers": [shell("sleeper", "echo started; exec sleep 3600")],
    }
    cluster.create_pod("sleeper", spec)
    pod = cluster.pod_phase("sleeper", "Running")
    uid = pod["metadata"]["uid"]
    # Running means the process started, not that its command got as far as printing.
    cluster.wait_for_log("sleeper", "sleeper", "started")
    pid_file = cluster.layout.pod_pids / f"{uid}-sleeper.pid"
    process = cluster.wait("the container's pid file", lambda: procs.read_pid_file(pid_file))
    assert procs.is_alive(process)

    cluster.delete_pod("sleeper")

    assert not procs.is_alive(process)
    assert not (cluster.layout.pods / uid).exists()
    assert cluster.log("sleeper", "sleeper") == "started\n"


def test_secret_env_reaches_the_container_but_no_command_line(cluster: Cluster) -> None:
    value = f"hush-{secrets.token_hex(12)}"
    cluster.api.post(
        f"/api/v1/namespaces/{cluster.namespace}/secrets",
        {"metadata": {"name": "hush"}, "stringData": {"value": value}},
    )
    env = [{"name": "HUSH", "valueFrom": {"secretKeyRef": {"name": "hush", "key": "value"}}}]
    spec = {
        "restartPolicy": "Never",
        "containers": [
            {"name": "env", "image": PG_IMAGE, "command": ["env"], "env": env},
            shell("holder", "echo started; exec sleep 3600", env=env),
        ],
    }
    cluster.create_pod("hush", spec)
    cluster.wait_for_log("hush", "holder", "started")

    def env_done() -> Obj | None:
        pod = cluster.pod("hush")
        statuses = (pod or {}).get("status", {}).get("containerStatuses") or []
        done = any(c["name"] == "env" and "terminated" in c["state"] for c in statuses)
        return pod if done else None

    pod = cluster.wait("the env container to finish", env_done)
    # Exactly what the pod spec and a kubelet give, nothing of the agent's own environment.
    variables = dict(line.split("=", 1) for line in cluster.log("hush", "env").splitlines())
    assert variables["HUSH"] == value, cluster.explain_pod(pod)
    assert sorted(variables) == [
        "HOSTNAME",
        "HUSH",
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
        "KUBERNETES_SERVICE_PORT_HTTPS",
        "LANG",
        "PATH",
    ]
    process = procs.read_pid_file(cluster.layout.pod_pids / f"{pod['metadata']['uid']}-holder.pid")
    assert process is not None
    assert procs.is_alive(process)
    environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
    assert f"HUSH={value}".encode() in environ
    leaked = []
    for proc_dir in Path("/proc").iterdir():
        if proc_dir.name.isdigit():
            try:
                if value.encode() in (proc_dir / "cmdline").read_bytes():
                    leaked.append(proc_dir.name)
            except OSError:
                pass  # gone meanwhile
    assert leaked == [], "the Secret's value is in a command line any user can read"
    cluster.delete_pod("hush")


def test_init_containers_finish_under_restart_policy_always(cluster: Cluster) -> None:
    """A failed init container is retried; one that succeeded never runs again."""
    mounts = [{"name": "scratch", "mountPath": "/scratch"}]
    setup = (
        "if [ -f /scratch/once ]; then echo second run;"
        " else touch /scratch/once; echo first run; exit 1; fi"
    )
    spec = {
        "restartPolicy": "Always",
        "initContainers": [shell("setup", setup, volumeMounts=mounts)],
        "containers": [shell("app", "echo app started; exec sleep 3600", volumeMounts=mounts)],
        "volumes": [{"name": "scratch", "emptyDir": {}}],
    }
    cluster.create_pod("always", spec)

    def settled() -> Obj | None:
        pod = cluster.pod("always")
        status = (pod or {}).get("status", {})
        init = status.get("initContainerStatuses") or [{}]
        app = status.get("containerStatuses") or [{}]
        if init[0].get("restartCount", 0) > 1 or "running" in app[0].get("state", {}):
            return pod
        return None

    pod = cluster.wait("the app container to run, or the init container to rerun", settled)
    init = pod["status"]["initContainerStatuses"][0]
    assert init["restartCount"] == 1, cluster.explain_pod(pod)
    assert init["state"]["terminated"]["reason"] == "Completed"
    assert "running" in pod["status"]["containerStatuses"][0]["state"]
    assert cluster.log("always", "setup") == "first run\nsecond run\n"
    cluster.delete_pod("always")


def test_a_recreated_pod_keeps_a_log_of_its_own(cluster: Cluster) -> None:
    for word in ("first", "second"):
        spec = {"restartPolicy": "Never", "containers": [shell("say", f"echo {word}")]}
        cluster.create_pod("again", spec)
        pod = cluster.pod_phase("again", "Succeeded", "Failed")
        assert pod["status"]["phase"] == "Succeeded", cluster.explain_pod(pod)
        cluster.delete_pod("again")
    logs = cli(cluster.layout.state, "logs", cluster.namespace, "again")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == "second\n"
    assert len(list((cluster.layout.logs / cluster.namespace / "again").iterdir())) == 2


def test_a_claimed_volume_keeps_what_one_pod_wrote_for_the_next(cluster: Cluster) -> None:
    """A claim gets a volume of the node (as a provisioner would) that outlives its pods and
    is writable by the pod's fsGroup, so Jobs that keep files (backups) run as in a cluster."""
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "kept"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    cluster.api.post(f"/api/v1/namespaces/{cluster.namespace}/persistentvolumeclaims", claim)
    user = {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001, "runAsNonRoot": True}

    def pod_spec(script: str) -> Obj:
        return {
            "restartPolicy": "Never",
            "securityContext": user,
            "containers": [
                shell(
                    "c",
                    script,
                    volumeMounts=[{"name": "data", "mountPath": "/data"}],
                    securityContext={"readOnlyRootFilesystem": True},
                )
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "kept"}}],
        }

    cluster.create_job("write", pod_spec("id -u > /data/written-by && echo kept > /data/f"))
    assert cluster.job_outcome("write") == "Complete", cluster.explain("write")
    cluster.create_job("read", pod_spec("cat /data/f /data/written-by"))
    assert cluster.job_outcome("read") == "Complete", cluster.explain("read")
    (pod,) = cluster.job_pods("read")
    assert cluster.log(pod["metadata"]["name"], "c").split() == ["kept", "10001"]
    bound = cluster.api.get(f"/api/v1/namespaces/{cluster.namespace}/persistentvolumeclaims/kept")
    assert bound["status"]["phase"] == "Bound"
    volume = cluster.api.get(f"/api/v1/persistentvolumes/{bound['spec']['volumeName']}")
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
