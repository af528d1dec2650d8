"""One pod's life on the local node: volumes, containers as host processes, status, deletion.

A `PodWorker` thread owns one pod from its start until it is gone from the API: it lays
out the volumes, runs init containers in order and then the containers, reports every
state change, and when the pod is deleted kills what still runs and finishes the deletion
as a kubelet does. Any failure of one pod is reported on that pod and ends its worker only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from standins.cluster import envvars, procs, volumes
from standins.cluster.api import ApiError, Client, Obj
from standins.cluster.images import HostTools, ImageRefusedError, program_for
from standins.cluster.layout import Layout
from standins.cluster.refs import MissingObjectError, ObjectSource, PodSetupError
from standins.cluster.sandbox import Mount, identity_for, launch_spec, launcher_argv
from standins.cluster.status import ContainerStatus, PodStatus

GRACE_CAP: Final = 10.0
"""Longest wait between SIGTERM and SIGKILL, whatever the pod's grace period."""
MISSING_OBJECT_GRACE: Final = 30.0
"""How long a missing ConfigMap, Secret or key may take to appear before the pod fails."""
RETRY_INTERVAL: Final = 2.0
BACKOFF_MAX: Final = 10.0
MESSAGE_TAIL: Final = 2048
POD_RECORD: Final = "pod.json"


@dataclass(frozen=True)
class NodeContext:
    api: Client
    layout: Layout
    objects: ObjectSource
    tools: HostTools
    base_env: dict[str, str]
    """What every container gets before its image's and its own env (the API service)."""
    log: Callable[[str], None]
    python: str = sys.executable
    """Runs `launcher.py`, which starts every container."""


@dataclass(frozen=True)
class Prepared:
    name: str
    spec: dict[str, Any]
    """The launch spec: holds the container's env (Secrets too), so it stays in memory."""
    log: Path
    fallback_to_logs: bool


def effective_policy(pod_policy: str, *, init: bool) -> str:
    """The policy a container runs under: init containers must finish, so never `Always`."""
    if init and pod_policy == "Always":
        return "OnFailure"
    return pod_policy


def restarts(policy: str, code: int) -> bool:
    """Whether a container that exited with `code` runs again under `policy`."""
    return policy == "Always" or (policy == "OnFailure" and code != 0)


def _spec_containers(pod: Obj, key: str) -> list[Obj]:
    found: list[Obj] = pod["spec"].get(key) or []
    return found


def _log_tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - MESSAGE_TAIL))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class _RefusedContainerError(Exception):
    def __init__(self, container: str, error: ImageRefusedError) -> None:
        super().__init__(container)
        self.container = container
        self.error = error


class PodWorker(threading.Thread):
    def __init__(self, pod: Obj, ctx: NodeContext, *, orphaned: bool = False) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.pod = pod
        self.ctx = ctx
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.pod_name: str = meta["name"]
        self.policy: str = pod["spec"].get("restartPolicy") or "Always"
        self.status = PodStatus(
            [
                ContainerStatus(c["name"], c["image"])
                for c in _spec_containers(pod, "initContainers")
            ],
            [ContainerStatus(c["name"], c["image"]) for c in _spec_containers(pod, "containers")],
        )
        for c in self.status.init:
            c.waiting("PodInitializing")
        self._procs: dict[str, procs.Child] = {}
        self._lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._stopping = threading.Event()  # kill everything, start nothing
        self._deleting = threading.Event()
        self._vanished = threading.Event()
        self._settled = threading.Event()  # deleting or vanished: the worker may finish
        self._grace = GRACE_CAP
        self._orphaned = orphaned

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}"

    @property
    def pod_dir(self) -> Path:
        return self.ctx.layout.pods / self.uid

    def _log(self, message: str) -> None:
        self.ctx.log(f"pod {self.namespace}/{self.pod_name}: {message}")

    # -- signals from the agent loop (never block) --

    def request_delete(self, grace: float) -> None:
        if not self._deleting.is_set():
            self._grace = min(max(grace, 0.0), GRACE_CAP)
            self._deleting.set()
            self._settled.set()
            self._stop_processes()

    def vanish(self) -> None:
        if not self._vanished.is_set():
            self._vanished.set()
            self._settled.set()
            self._stop_processes()

    def _stop_processes(self) -> None:
        if not self._stopping.is_set():
            self._stopping.set()
            threading.Thread(target=self._kill_all, name=f"kill-{self.uid}", daemon=True).start()

    def _kill_all(self) -> None:
        """SIGTERM every container, SIGKILL those still there after the grace period.

        Their waiting threads reap them (and kill what they left behind), so a group is
        only signalled here while its leader is unreaped, hence still ours.
        """
        with self._lock:
            running = list(self._procs.values())
        for child in running:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        for child in running:
            if not child.exited.wait(max(0.0, deadline - time.monotonic())):
                child.signal_group(signal.SIGKILL)

    # -- the pod's life --

    def run(self) -> None:
        try:
            self._live()
        except Exception as exc:  # one bad pod must never take the agent down
            self._log("internal error:\n" + traceback.format_exc())
            with contextlib.suppress(Exception):
                self._fail("NodeAgentError", f"the local node agent failed to run the pod: {exc}")
        self._stop_processes()
        if not self._vanished.is_set():
            self._settled.wait()
        self._finish()

    def _live(self) -> None:
        prepared = self._set_up()
        if prepared is None:
            return
        init = {p.name: p for p in prepared if p.name in {c.name for c in self.status.init}}
        init_policy = effective_policy(self.policy, init=True)
        for status in self.status.init:
            code = self._run_container(init[status.name], status, init_policy)
            if code != 0 or self._stopping.is_set():
                self._conclude()
                return
        with self.status.lock:
            self.status.initialized = True
        threads = [
            threading.Thread(
                target=self._run_container, args=(p, self.status.container(p.name), self.policy)
            )
            for p in prepared
            if p.name not in init
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._conclude()

    def _set_up(self) -> list[Prepared] | None:
        """Everything before the first process starts; None when the pod cannot start."""
        if self._orphaned:
            self._fail("NodeAgentRestarted", "the node agent restarted while the pod ran")
            return None
        if os.geteuid() != 0:
            self._fail("NodeAgentNotRoot", "the node agent needs root to mount pod volumes")
            return None
        self._record()
        self.publish()
        try:
            self._check_images()
            return self._prepare()
        except _RefusedContainerError as exc:
            self._fail(exc.error.reason, str(exc.error), culprit=exc.container)
        except ImageRefusedError as exc:
            self._fail(exc.reason, str(exc))
        except PodSetupError as exc:
            self._fail("CreateContainerConfigError", str(exc))
        return None

    def _record(self) -> None:
        """Keep who the pod was next to its logs, so they can be found after it is gone."""
        meta = self.pod["metadata"]
        record = {
            "uid": self.uid,
            "labels": meta.get("labels") or {},
            "creationTimestamp": meta.get("creationTimestamp"),
            "containers": [c.name for c in [*self.status.init, *self.status.main]],
        }
        path = self.ctx.layout.pod_logs(self.namespace, self.pod_name, self.uid) / POD_RECORD
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")

    def _check_images(self) -> None:
        """Refuse the pod before anything runs when one of its images cannot run here."""
        for c in _spec_containers(self.pod, "initContainers") + _spec_containers(
            self.pod, "containers"
        ):
            try:
                program_for(c["image"], c.get("command"), c.get("args"), self.ctx.tools)
            except ImageRefusedError as exc:
                raise _RefusedContainerError(c["name"], exc) from exc

    def _prepare(self) -> list[Prepared] | None:
        """Volumes, env and argv of every container; missing references are retried a while."""
        first_missing: float | None = None
        last_message = ""
        while not self._stopping.is_set():
            try:
                return self._prepare_once()
            except MissingObjectError as exc:
                first_missing = first_missing or time.monotonic()
                if time.monotonic() - first_missing > MISSING_OBJECT_GRACE:
                    raise
                if str(exc) != last_message:
                    last_message = str(exc)
                    self._log(f"waiting: {exc}")
                    with self.status.lock:
                        for c in self.status.main:
                            c.waiting("ContainerCreating", str(exc))
                    self.publish()
            except ApiError as exc:
                self._log(f"retrying volume and env setup: {exc}")
            self._settled.wait(RETRY_INTERVAL)
        return None

    def _prepare_once(self) -> list[Prepared]:
        vols = self.pod_dir / "volumes"
        shutil.rmtree(vols, ignore_errors=True)
        vols.mkdir(parents=True)
        fs_group = (self.pod["spec"].get("securityContext") or {}).get("fsGroup")
        for volume in self.pod["spec"].get("volumes") or []:
            volumes.set_up(volume, self.pod, self.ctx.objects, vols / volume["name"], fs_group)
        init = _spec_containers(self.pod, "initContainers")
        return [
            self._prepare_container(c, vols)
            for c in init + _spec_containers(self.pod, "containers")
        ]

    def _prepare_container(self, c: Obj, vols: Path) -> Prepared:
        own_env = envvars.container_env(self.pod, c, self.ctx.objects)
        command = envvars.expand_all(c.get("command") or [], own_env)
        args = envvars.expand_all(c.get("args") or [], own_env)
        program = program_for(c["image"], command or None, args or None, self.ctx.tools)
        env = {**self.ctx.base_env, "HOSTNAME": self.pod_name, **program.image_env, **own_env}
        # The image's files first: at the same depth, the pod's own volumes win.
        mounts = [
            *program.mounts,
            *(self._mount(m, vols, own_env) for m in c.get("volumeMounts") or []),
        ]
        spec = launch_spec(
            program.argv,
            env,
            mounts,
            workdir=c.get("workingDir") or "/",
            identity=identity_for(self.pod, c),
        )
        log = self.ctx.layout.container_log(self.namespace, self.pod_name, self.uid, c["name"])
        fallback = c.get("terminationMessagePolicy") == "FallbackToLogsOnError"
        return Prepared(c["name"], spec, log, fallback)

    def _mount(self, m: Obj, vols: Path, env: dict[str, str]) -> Mount:
        source = vols / m["name"]
        if not source.is_dir():
            raise PodSetupError(f"volumeMount {m['name']!r}: no volume of that name in the pod")
        # A claimed volume links to its host directory; the mount must stay inside that.
        root = source.resolve() if source.is_symlink() else vols.resolve()
        sub = m.get("subPath") or envvars.expand(m.get("subPathExpr") or "", env.get)
        if sub:
            if sub.startswith("/") or ".." in PurePosixPath(sub).parts:
                raise PodSetupError(f"volumeMount {m['name']!r}: invalid subPath {sub!r}")
            source = (source / sub).resolve()
            if not source.is_relative_to(root):
                raise PodSetupError(f"volumeMount {m['name']!r}: subPath {sub!r} leaves the volume")
            if not source.exists():
                source.mkdir(parents=True)
        read_only = bool(m.get("readOnly"))
        return Mount(str(source.resolve()), m["mountPath"], read_only, within=str(root))

    def _run_container(self, prep: Prepared, status: ContainerStatus, policy: str) -> int | None:
        """Run a container until it is done under `policy`; its last exit code."""
        backoff = 1.0
        while True:
            code = self._run_once(prep, status)
            if code is None or self._stopping.is_set():
                return code
            if not restarts(policy, code):
                return code
            with self.status.lock:
                status.waiting("CrashLoopBackOff", f"back-off {backoff:g}s restarting {prep.name}")
            self.publish()
            if self._settled.wait(backoff):
                return code
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _run_once(self, prep: Prepared, status: ContainerStatus) -> int | None:
        pid_file = self.ctx.layout.pod_pids / f"{self.uid}-{prep.name}.pid"
        prep.log.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if self._stopping.is_set():
                return None
            try:
                proc = self._spawn(prep, pid_file)
            except OSError as exc:
                with self.status.lock:
                    status.start("")
                    status.terminate(128, "StartError", f"could not start: {exc}")
                self.publish()
                return 128
            self._procs[prep.name] = proc
        with self.status.lock:
            status.start(f"localcluster://{self.uid}/{prep.name}/{proc.pid}")
        self.publish()
        code = proc.wait()  # also kills what the container left in its process group
        pid_file.unlink(missing_ok=True)
        with self._lock:
            self._procs.pop(prep.name, None)
        code = 128 - code if code < 0 else code
        message = _log_tail(prep.log) if prep.fallback_to_logs and code != 0 else ""
        with self.status.lock:
            status.terminate(code, "Completed" if code == 0 else "Error", message)
        self.publish()
        return code

    def _spawn(self, prep: Prepared, pid_file: Path) -> procs.Child:
        """Start the launcher with the spec in an anonymous in-memory file it inherits.

        The launcher itself gets an empty environment: only the container program gets the
        container's, and neither ever appears in a command line.
        """
        spec_fd = os.memfd_create("localcluster-spec", os.MFD_CLOEXEC)
        try:
            with open(spec_fd, "wb", closefd=False) as spec:
                spec.write(json.dumps(prep.spec).encode())
            os.lseek(spec_fd, 0, os.SEEK_SET)
            return procs.spawn(
                launcher_argv(self.ctx.python, spec_fd),
                prep.log,
                pid_file,
                env={},
                cwd=Path("/"),
                pass_fds=(spec_fd,),
            )
        finally:
            os.close(spec_fd)

    def _conclude(self) -> None:
        """The pod's final phase from its containers' last exit codes."""
        with self.status.lock:
            if self.status.terminal:
                return
            codes = [c.exit_code for c in [*self.status.init, *self.status.main]]
            for c in [*self.status.init, *self.status.main]:
                if c.exit_code is None:
                    c.terminate(
                        137, "ContainerStatusUnknown", "the container was not run to completion"
                    )
            ok = all(code == 0 for code in codes)
            self.status.finish("Succeeded" if ok else "Failed")
        self.publish()

    def _fail(self, reason: str, message: str, *, culprit: str | None = None) -> None:
        """Fail the pod; `culprit` names the one container at fault, else all share it."""
        self._log(f"failed: {message}")
        with self.status.lock:
            for c in [*self.status.init, *self.status.main]:
                if "terminated" in c.state:
                    continue
                if culprit is None or c.name == culprit:
                    c.terminate(128, reason, message)
                else:
                    c.terminate(128, "NotStarted", f"not started: container {culprit!r} cannot run")
            self.status.finish("Failed", reason, message)
        self.publish()

    def publish(self) -> None:
        """Write the status (read, apply, PUT /status) until it lands or the pod is gone."""
        with self._publish_lock:
            while not self._vanished.is_set():
                try:
                    pod = self.ctx.api.get(self.path)
                    if pod["metadata"]["uid"] != self.uid:
                        self.vanish()
                        return
                    with self.status.lock:
                        self.status.apply(pod)
                    self.ctx.api.put(self.path + "/status", pod)
                    return
                except ApiError as exc:
                    if exc.not_found:
                        self.vanish()
                        return
                    if exc.status == 422:  # invalid: retrying cannot help
                        self._log(f"status rejected: {exc}")
                        return
                    if not exc.conflict:
                        self._log(f"status update failed, retrying: {exc}")
                        self._vanished.wait(RETRY_INTERVAL)

    def _finish(self) -> None:
        """Clean the pod's directory; for a deleted pod, finish the deletion (grace 0)."""
        shutil.rmtree(self.pod_dir, ignore_errors=True)
        if not self._deleting.is_set() or self._vanished.is_set():
            return
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": self.uid},
        }
        while True:
            try:
                self.ctx.api.delete(self.path, body)
                return
            except ApiError as exc:
                if exc.not_found or exc.conflict:
                    return
                self._log(f"delete failed, retrying: {exc}")
                if self._vanished.wait(RETRY_INTERVAL):
                    return
