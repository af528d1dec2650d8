"""Start, stop and inspect one local cluster: a control plane and a real node, on this host.

`start` brings up, in the node's own namespaces (isolation.py): etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, containerd (with runc), the kubelet, kube-proxy,
the volume provisioner, then CoreDNS and the default StorageClass; it forwards a port on the
host's loopback to the API server and writes the admin's kubeconfig. It waits for each part
to be usable (the API server ready, containerd serving, the node Ready, kube-proxy healthy,
the cluster's DNS answering) and prints how long each took. Deadlines only guard against
hangs: a slow machine is waited for.

A cluster whose processes all run and whose node is Ready is left as it is. One that was
partly or wholly killed (no `stop`) is restarted from its state: every process of it that
is left is killed (its namespaces, and with them its mounts, interfaces and rules, go with
the last one), then everything starts again on the same data, as after a reboot.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from standins.cluster import addons, config, forward, isolation, pki, procs
from standins.cluster.api import ApiError, Client, Credentials, kubeconfig_text, now
from standins.cluster.binaries import Binaries
from standins.cluster.layout import (
    CLUSTER_DOMAIN,
    DNS_SERVICE_IP,
    KUBE_PROXY_HEALTH_PORT,
    KUBERNETES_SERVICE_IP,
    MARKER,
    NODE_NAME,
    REPO_ROOT,
    Layout,
    make_private_dir,
    replace_file,
)
from standins.objectstore import PORT as OBJECT_STORE_PORT

DEFAULT_TIMEOUT: Final = 600.0
STOP_GRACE: Final = 3.0
COMPONENTS: Final = (
    "holder",
    "etcd",
    "kube-apiserver",
    "forward-api",
    "kube-controller-manager",
    "kube-scheduler",
    "containerd",
    "kubelet",
    "kube-proxy",
    "provisioner",
    "objectstore",
)
"""In start order; stopped in reverse."""
STANDARD_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""With containerd's directory first: it finds its runc shim on PATH."""
TOOLS: Final = ("unshare", "nsenter", "ip", "iptables", "mount", "openssl")
INSTALL: Final = "bash scripts/install-engine.sh"


class ClusterError(Exception):
    """Something the user must act on; the message says what."""


def _say(message: str) -> None:
    print(f"localcluster: {message}", flush=True)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def check_host(layout: Layout) -> None:
    """What a node needs of this machine, each missing piece named with its fix."""
    if os.geteuid() != 0:
        raise ClusterError("the local cluster runs a real node and needs root (or sudo)")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise ClusterError(
            f"{', '.join(missing)} not found; run: bash scripts/install-system-deps.sh"
        )
    state = str(layout.state.absolute())
    for tree in isolation.PRIVATE_TREES:
        if state == tree or state.startswith(f"{tree}/"):
            raise ClusterError(
                f"the state directory {state} is under {tree}, which the node replaces with "
                "its own; choose another (LOCALCLUSTER_STATE)"
            )


def images() -> list[dict[str, str]]:
    from standins.images.__main__ import read_index  # noqa: PLC0415 (only when starting)

    try:
        return read_index()
    except (OSError, ValueError) as error:
        raise ClusterError(f"the node's images are not built; run: {INSTALL} images") from error


class Starter:
    """One `start`: launches each part in the node's namespaces and waits until it is usable."""

    def __init__(self, layout: Layout, binaries: Binaries, timeout: float) -> None:
        self.layout = layout
        self.binaries = binaries
        self.timeout = timeout
        self.began = time.monotonic()
        self.holder = 0

    def wait(self, what: str, component: str, ready: Callable[[], bool]) -> None:
        """Poll `ready` until true; fail early when `component` exited, late at the deadline."""
        started = time.monotonic()
        pause = threading.Event()
        while not ready():
            log = self.layout.log_file(component)
            if procs.running(self.layout.pid_file(component)) is None:
                raise ClusterError(f"{component} exited; last lines of {log}:\n{_tail(log)}")
            if time.monotonic() - started > self.timeout:
                raise ClusterError(
                    f"{what}: not ready after {self.timeout:.0f} s; {log}:\n{_tail(log)}"
                )
            pause.wait(0.25)
        _say(f"{what} ({time.monotonic() - started:.1f} s)")

    def launch(self, name: str, argv: list[str], *, mount: bool = True) -> None:
        env = {
            "PATH": f"{self.binaries.containerd}:{STANDARD_PATH}",
            "HOME": str(self.layout.state),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
        }
        prefix = isolation.enter(self.holder, mount=mount) if self.holder else []
        procs.spawn(
            prefix + argv,
            self.layout.log_file(name),
            self.layout.pid_file(name),
            env=env,
            cwd=self.layout.state,
        )

    def run(self) -> None:
        layout, bins = self.layout, self.binaries
        keys = config.pki(layout)
        if not keys.complete:
            started = time.monotonic()
            pki.create(keys)
            _say(f"credentials ({time.monotonic() - started:.1f} s)")
        write_configs(layout, bins)
        isolation.make_cgroup_root(layout)

        isolation.ready_file(layout).unlink(missing_ok=True)
        self.launch("holder", isolation.holder_argv(layout, sys.executable))
        self.wait("the node's network and mount namespaces", "holder", self._holder_ready)
        self.launch("etcd", [bins["etcd"], *config.etcd_flags(layout)])
        self.launch("kube-apiserver", [bins["kube-apiserver"], *config.apiserver_flags(layout)])
        api = self._forward_api()
        self.wait("kube-apiserver ready", "kube-apiserver", api.healthy)
        self.launch(
            "kube-controller-manager",
            [bins["kube-controller-manager"], *config.controller_manager_flags(layout)],
        )
        self.launch("kube-scheduler", [bins["kube-scheduler"], *config.scheduler_flags(layout)])
        self.launch(
            "containerd",
            [bins["containerd"], f"--config={config.component_files(layout)['containerd']}"],
        )
        self.wait("containerd serving", "containerd", lambda: self._ctr("version").returncode == 0)
        self._import_images()
        launched = now()
        self.launch("kubelet", [bins["kubelet"], *config.kubelet_flags(layout)])
        self.wait(f"node {NODE_NAME} Ready", "kubelet", lambda: node_ready(api, launched))
        self.launch("kube-proxy", [bins["kube-proxy"], *config.kube_proxy_flags(layout)])
        self.wait(
            "kube-proxy healthy",
            "kube-proxy",
            lambda: isolation.http_ok(self.holder, KUBE_PROXY_HEALTH_PORT, "/healthz"),
        )
        provisioner = [sys.executable, "-m", "standins.cluster", "provisioner"]
        self.launch("provisioner", [*provisioner, "--state", str(layout.state)], mount=False)
        self.launch(
            "objectstore",
            [
                *(sys.executable, "-m", "standins.objectstore"),
                *("--port", str(OBJECT_STORE_PORT), "--state", str(layout.state)),
            ],
            mount=False,
        )
        self.wait(
            "object store answering",
            "objectstore",
            lambda: isolation.http_ok(self.holder, OBJECT_STORE_PORT, "/"),
        )
        self.wait(
            "default namespace usable",
            "kube-controller-manager",
            lambda: _exists(api, "/api/v1/namespaces/default/serviceaccounts/default"),
        )
        for collection, obj in addons.objects():
            api.create_if_missing(collection, obj)
        self.wait(
            f"cluster DNS answering ({DNS_SERVICE_IP})",
            "kubelet",
            lambda: (
                isolation.resolve(
                    self.holder, f"kubernetes.default.svc.{CLUSTER_DOMAIN}", DNS_SERVICE_IP
                )
                == KUBERNETES_SERVICE_IP
            ),
        )
        _say(f"cluster up in {time.monotonic() - self.began:.1f} s")

    def _holder_ready(self) -> bool:
        proc = procs.running(self.layout.pid_file("holder"))
        try:
            ready = int(isolation.ready_file(self.layout).read_text())
        except (OSError, ValueError):
            return False
        if proc is None or proc.pid != ready:
            return False
        self.holder = proc.pid
        return True

    def _forward_api(self) -> Client:
        layout = self.layout
        try:
            port = int(json.loads(layout.ports_file.read_text())["api"])
        except (OSError, ValueError, KeyError, TypeError):
            port = 0
        try:
            found = forward.start(layout, self.holder, "api", config.INTERNAL_API[8:], port)
        except OSError:  # the port of the last start is taken now
            found = forward.start(layout, self.holder, "api", config.INTERNAL_API[8:])
        layout.ports_file.write_text(json.dumps({"api": found.port}))
        keys = config.pki(layout)
        creds = Credentials(
            f"https://127.0.0.1:{found.port}", keys.ca_cert.read_bytes(), keys.admin_token()
        )
        replace_file(layout.kubeconfig, kubeconfig_text(creds))
        return Client(creds, timeout=30)

    def _ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [self.binaries["ctr"], f"--address={self.layout.containerd_socket}", "-n", "k8s.io"]
        return subprocess.run(
            isolation.enter(self.holder) + argv + list(args),
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )

    def _import_images(self) -> None:
        """Every image of the index containerd does not hold yet (it keeps them across
        restarts); each is then checked by name and manifest digest."""
        started = time.monotonic()
        wanted = images()
        listed = self._ctr("images", "ls").stdout
        held = {tuple(line.split()[:3:2]) for line in listed.splitlines()[1:] if line.strip()}
        imported = []
        for image in wanted:
            if (image["name"], image["manifest"]) in held:
                continue
            result = self._ctr(
                "images", "import", "--platform", "linux/amd64", "--snapshotter", "overlayfs",
                image["archive"],
            )  # fmt: skip
            if result.returncode != 0:
                raise ClusterError(f"importing {image['name']}: {result.stderr.strip()}")
            imported.append(image["name"])
        listed = self._ctr("images", "ls").stdout
        held = {tuple(line.split()[:3:2]) for line in listed.splitlines()[1:] if line.strip()}
        absent = [i["name"] for i in wanted if (i["name"], i["manifest"]) not in held]
        if absent:
            raise ClusterError(f"images not listed by containerd after import: {absent}")
        what = f"imported {', '.join(imported)}" if imported else "all present"
        _say(f"images: {what} ({time.monotonic() - started:.1f} s)")


def write_configs(layout: Layout, binaries: Binaries) -> None:
    files = config.component_files(layout)
    texts = {
        "kubelet": config.kubelet_config(layout),
        "kube-proxy": config.kube_proxy_config(layout),
        "kube-scheduler": config.scheduler_config(layout),
        "containerd": config.containerd_config(layout, binaries),
        "cni": config.cni_config(),
    }
    for name, text in texts.items():
        files[name].parent.mkdir(parents=True, exist_ok=True)
        replace_file(files[name], text, 0o644)
    keys = config.pki(layout)
    for user, leaf in (
        ("kubelet", "kubelet-client"),
        ("kube-proxy", "kube-proxy"),
        ("kube-scheduler", "kube-scheduler"),
        ("kube-controller-manager", "kube-controller-manager"),
    ):
        text = config.component_kubeconfig_text(keys, leaf)
        replace_file(config.kubeconfig_path(layout, user), text)


def _exists(api: Client, path: str) -> bool:
    try:
        return api.get_or_none(path) is not None
    except ApiError:
        return False


def node_ready(api: Client, since: str = "") -> bool:
    """Ready, as reported since `since` (a restarted cluster remembers the last report)."""
    try:
        node = api.get_or_none(f"/api/v1/nodes/{NODE_NAME}")
    except ApiError:
        return False
    conditions = (node or {}).get("status", {}).get("conditions") or []
    return any(
        c["type"] == "Ready" and c["status"] == "True" and c.get("lastHeartbeatTime", "") >= since
        for c in conditions
    )


def running_components(layout: Layout) -> dict[str, procs.Tracked | None]:
    return {name: procs.running(layout.pid_file(name)) for name in COMPONENTS}


def healthy(layout: Layout) -> bool:
    """Every component runs, the API server answers through its forward, the node is Ready."""
    if not all(running_components(layout).values()) or not layout.kubeconfig.is_file():
        return False
    api = Client.from_kubeconfig(layout.kubeconfig, timeout=30)
    return api.healthy() and node_ready(api)


def prepare_state(layout: Layout) -> None:
    """The state directory, private from its creation: it holds the CA key and the token."""
    make_private_dir(layout.state)
    (layout.state / MARKER).touch()
    for folder in (layout.run, layout.config, layout.volumes):
        folder.mkdir(parents=True, exist_ok=True)


def start(layout: Layout, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Bring the cluster up, or confirm it is up; ClusterError if it cannot."""
    check_host(layout)
    binaries = Binaries.find()
    if missing := binaries.missing():
        raise ClusterError(f"{', '.join(missing)} missing; run: {INSTALL} node")
    if healthy(layout):
        _say(f"already running (state in {layout.state})")
        _say(f"kubeconfig: {layout.kubeconfig}")
        return
    if isolation.node_processes(layout):
        _say("found a cluster that is not whole (killed without `stop`?): restarting it")
    stop(layout, keep_state=True, quiet=True)
    prepare_state(layout)
    _say(f"starting (state in {layout.state})")
    try:
        Starter(layout, binaries, timeout).run()
    except ApiError as error:
        stop(layout, keep_state=True, quiet=True)
        raise ClusterError(f"the API server refused a request: {error}") from error
    except BaseException:
        stop(layout, keep_state=True, quiet=True)
        raise
    _say(f"kubeconfig: {layout.kubeconfig}")


def stop(layout: Layout, *, keep_state: bool = False, quiet: bool = False) -> None:
    """Kill every process of the cluster and remove its cgroups, then (unless `keep_state`)
    its state directory. Nothing else of it is left: its namespaces went with its processes."""
    found = isolation.node_processes(layout)
    # etcd last, once nothing writes to it; the API server's graceful shutdown waits for
    # requests that no client will finish now, so it is not waited for long.
    others = [c for c in reversed(COMPONENTS) if c != "etcd"]
    left = isolation.kill_node(layout, [others, ["etcd"]], grace=STOP_GRACE)
    if left:
        raise ClusterError(f"processes of the cluster would not exit: {sorted(left)}")
    cgroups = isolation.remove_cgroups(layout)
    if cgroups:
        raise ClusterError(f"cgroups of the cluster could not be removed: {cgroups}")
    if not quiet:
        _say(f"stopped {len(found)} processes" if found else "nothing was running")
    if keep_state:
        return
    if (layout.state / MARKER).is_file():
        shutil.rmtree(layout.state)
        if not quiet:
            _say(f"removed {layout.state}")


def status(layout: Layout) -> bool:
    """Print what runs; True when every component runs and the API server is ready."""
    for name, proc in running_components(layout).items():
        state = f"running (pid {proc.pid})" if proc else "not running"
        print(f"{name}: {state}  log: {layout.log_file(name)}")
    ready = healthy(layout)
    print(f"cluster: {'ready' if ready else 'not ready'}  kubeconfig: {layout.kubeconfig}")
    return ready
