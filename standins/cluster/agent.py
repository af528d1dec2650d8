"""The node agent: registers `local-node`, keeps it alive, binds pods to it and runs them.

It stands in for both the scheduler and the kubelet of a one-node cluster: every pod
without a node is bound here, and every pod bound here gets a `PodWorker`. Pods are found
by polling (about once a second), which keeps the agent simple and robust under load: a
failed request is logged and the next round retries it.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Final

from standins.cluster import flywayjars, procs
from standins.cluster.api import MERGE_PATCH, ApiError, Client, Obj, now, now_micro, read_kubeconfig
from standins.cluster.images import HostTools, postgres_bindir
from standins.cluster.layout import NODE_NAME, Layout
from standins.cluster.pods import GRACE_CAP, NodeContext, PodWorker
from standins.cluster.refs import ApiObjects

POLL_INTERVAL: Final = 1.0
HEARTBEAT_INTERVAL: Final = 10.0
LEASE_SECONDS: Final = 40
KUBERNETES_VERSION: Final = "v1.34.2"
NODE_PATH: Final = f"/api/v1/nodes/{NODE_NAME}"
LEASE_PATH: Final = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE_NAME}"


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def _memory_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def node_conditions(since: str, heartbeat: str) -> list[Obj]:
    def condition(kind: str, status: str, reason: str, message: str) -> Obj:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": since,
        }

    return [
        condition("Ready", "True", "KubeletReady", "the local node agent is posting ready status"),
        condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "no memory pressure"),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "no disk pressure"),
        condition("PIDPressure", "False", "KubeletHasSufficientPID", "no PID pressure"),
    ]


def node_object(since: str) -> Obj:
    resources = {"cpu": str(os.cpu_count() or 2), "memory": f"{_memory_kib()}Ki", "pods": "110"}
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch,
            },
        },
        "spec": {},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": node_conditions(since, since),
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": NODE_NAME},
            ],
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": platform.release(),
                "osImage": "local processes",
                "containerRuntimeVersion": "localcluster://1",
                "kubeletVersion": KUBERNETES_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": arch,
            },
        },
    }


class Agent:
    def __init__(self, layout: Layout, api: Client, ctx: NodeContext) -> None:
        self.layout = layout
        self.api = api
        self.ctx = ctx
        self.since = now()
        self.workers: dict[str, PodWorker] = {}
        self.done: set[str] = set()
        """Pods of this node with nothing left to do (finished before, or by a past agent)."""

    # -- the node --

    def register(self) -> None:
        try:
            self.api.post("/api/v1/nodes", node_object(self.since))
            log(f"registered node {NODE_NAME}")
        except ApiError as exc:
            if not exc.conflict:
                raise
        self.api.patch(NODE_PATH + "/status", {"status": node_object(self.since)["status"]})

    def heartbeat(self) -> None:
        """Fresh Ready condition and Lease, so the node lifecycle controller keeps our pods."""
        status = {"status": {"conditions": node_conditions(self.since, now())}}
        try:
            self.api.patch(NODE_PATH + "/status", status)
        except ApiError as exc:
            if not exc.not_found:
                raise
            self.register()
        spec = {
            "holderIdentity": NODE_NAME,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": now_micro(),
        }
        try:
            self.api.patch(LEASE_PATH, {"spec": spec}, MERGE_PATCH)
        except ApiError as exc:
            if not exc.not_found:
                raise
            lease: Obj = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": NODE_NAME},
                "spec": spec,
            }
            self.api.post(LEASE_PATH.rsplit("/", 1)[0], lease)

    def heartbeat_forever(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_INTERVAL):
            try:
                self.heartbeat()
            except Exception as exc:  # keep beating whatever one round hit
                log(f"heartbeat failed, retrying: {exc}")

    # -- the pods --

    def bind(self, pod: Obj) -> None:
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": NODE_NAME},
        }
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding"
        try:
            self.api.post(path, binding)
            log(f"bound pod {meta['namespace']}/{meta['name']}")
        except ApiError as exc:
            if not (exc.conflict or exc.not_found):
                log(f"binding {meta['namespace']}/{meta['name']} failed, retrying: {exc}")

    def _started_before(self, pod: Obj) -> bool:
        """Whether a past agent started this pod's containers (their processes are lost)."""
        status = pod.get("status") or {}
        statuses = (status.get("containerStatuses") or []) + (
            status.get("initContainerStatuses") or []
        )
        return any(
            "running" in s.get("state", {}) or "terminated" in s.get("state", {}) for s in statuses
        )

    def adopt(self, pod: Obj) -> PodWorker | None:
        """A worker for a pod of this node seen for the first time, unless it is done."""
        uid = pod["metadata"]["uid"]
        if uid in self.done:
            return None
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            self.done.add(uid)
            return None
        self.kill_leftovers(uid)
        worker = PodWorker(pod, self.ctx, orphaned=self._started_before(pod))
        self.workers[uid] = worker
        worker.start()
        return worker

    def kill_leftovers(self, uid: str) -> None:
        """Stop what an earlier agent started for the pod (only if it is still that process)."""
        for pid_file in self.layout.pod_pids.glob(f"{uid}-*.pid"):
            proc = procs.read_pid_file(pid_file)
            if proc is not None:
                procs.terminate(proc, GRACE_CAP)
            pid_file.unlink(missing_ok=True)

    def sync(self) -> None:
        pods: list[Obj] = self.api.get("/api/v1/pods")["items"]
        seen: set[str] = set()
        for pod in pods:
            meta, spec = pod["metadata"], pod["spec"]
            seen.add(meta["uid"])
            deleting = meta.get("deletionTimestamp") is not None
            if not spec.get("nodeName"):
                if not deleting and not spec.get("schedulingGates"):
                    self.bind(pod)
                continue
            if spec["nodeName"] != NODE_NAME:
                continue
            worker = self.workers.get(meta["uid"]) or self.adopt(pod)
            if worker is not None and deleting:
                worker.request_delete(float(meta.get("deletionGracePeriodSeconds") or 0))
        for uid, worker in list(self.workers.items()):
            if uid not in seen:
                worker.vanish()
            if not worker.is_alive():
                del self.workers[uid]
                self.done.add(uid)
        self.done &= seen
        self.sweep()
        self.provision()

    def provision(self) -> None:
        """What a cluster's storage provisioner does, for every claim no volume serves yet: a
        volume of this node, bound to the claim, kept after the claim is gone (Retain)."""
        claims: list[Obj] = self.api.get("/api/v1/persistentvolumeclaims")["items"]
        for claim in claims:
            meta, spec = claim["metadata"], claim.get("spec") or {}
            if spec.get("volumeName") or meta.get("deletionTimestamp"):
                continue
            name = f"pvc-{meta['uid']}"
            directory = self.layout.volumes / name
            directory.mkdir(parents=True, exist_ok=True)
            volume: Obj = {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name, "labels": {"localcluster/node": NODE_NAME}},
                "spec": {
                    "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                    "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": spec.get("storageClassName") or "",
                    "volumeMode": spec.get("volumeMode") or "Filesystem",
                    "hostPath": {"path": str(directory), "type": "DirectoryOrCreate"},
                    "claimRef": {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "namespace": meta["namespace"],
                        "name": meta["name"],
                        "uid": meta["uid"],
                    },
                },
            }
            try:
                self.api.post("/api/v1/persistentvolumes", volume)
                log(f"provisioned {name} for claim {meta['namespace']}/{meta['name']}")
            except ApiError as exc:
                if not exc.conflict:
                    raise

    def sweep(self) -> None:
        """Remove what pods that vanished while no worker watched them left behind."""
        if not self.layout.pods.is_dir():
            return
        for pod_dir in self.layout.pods.iterdir():
            if pod_dir.name not in self.workers:
                shutil.rmtree(pod_dir, ignore_errors=True)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.register()
                self.heartbeat()
                break
            except Exception as exc:  # the API server may still be settling
                log(f"registering the node failed, retrying: {exc}")
                stop.wait(POLL_INTERVAL * 2)
        threading.Thread(target=self.heartbeat_forever, args=(stop,), daemon=True).start()
        while not stop.is_set():
            try:
                self.sync()
            except ApiError as exc:
                log(f"listing pods failed, retrying: {exc}")
            except Exception:  # never let one bad object stop the node
                log("sync failed:\n" + traceback.format_exc())
            stop.wait(POLL_INTERVAL)


def main(state: Path) -> int:
    layout = Layout(state)
    creds = read_kubeconfig(layout.kubeconfig)
    api = Client(creds)
    java = flywayjars.java_executable()
    flywayjars.write_launcher(layout.flyway_launcher, java)
    tools = HostTools(java, postgres_bindir(), flywayjars.source_lib, layout.flyway_launcher)
    port = creds.server.rsplit(":", 1)[-1]
    base_env = {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": port,
        "KUBERNETES_SERVICE_PORT_HTTPS": port,
    }
    ctx = NodeContext(api, layout, ApiObjects(api), tools, base_env, log)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log(f"node agent for {NODE_NAME} on {creds.server} (python {sys.version.split()[0]})")
    Agent(layout, api, ctx).run(stop)
    log("node agent stopped")
    return 0
