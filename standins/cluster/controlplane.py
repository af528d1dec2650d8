"""Start, stop and inspect the local control plane: etcd, kube-apiserver,
kube-controller-manager and the node agent, all background processes on 127.0.0.1.

`start` waits for each component to be usable (etcd healthy, the API server ready, the
controllers creating the `default` ServiceAccount, the node Ready) and reports how long
each took; it never treats the mere passing of time as success. Deadlines are generous
because a loaded two-core machine can take minutes, and they only guard against hangs:
a cluster whose processes all run is waited for, never restarted for being slow.

etcd serves TLS only and requires a client certificate from the cluster's CA, which only
the API server (and `start`'s health check) holds: the root node agent runs whatever pods
etcd stores, so no other local user may write to it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import ssl
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from standins.cluster import pki, procs
from standins.cluster.api import (
    ApiError,
    Client,
    Credentials,
    kubeconfig_text,
    now,
    read_kubeconfig,
)
from standins.cluster.layout import (
    NODE_NAME,
    REPO_ROOT,
    Layout,
    cache_dir,
    make_private_dir,
    replace_file,
)

KUBERNETES_VERSION: Final = "1.34.2"
ETCD_VERSION: Final = "3.6.4"
"""Kept in step with scripts/install-engine.sh, which builds these binaries."""
INSTALL_COMMAND: Final = "bash scripts/install-engine.sh control-plane"
COMPONENTS: Final = ("etcd", "kube-apiserver", "kube-controller-manager", "agent")
DEFAULT_TIMEOUT: Final = 600.0
STOP_GRACE: Final = 20.0
READY_POLL: Final = 0.5
MARKER: Final = ".localcluster"
"""Marks a state directory as ours, so `stop` never removes a directory it did not make."""


class ClusterError(Exception):
    """Something the user must act on; the message says what."""


def bin_dir() -> Path:
    return cache_dir() / "bin" / f"kubernetes-v{KUBERNETES_VERSION}-etcd-v{ETCD_VERSION}"


def binary(name: str) -> str:
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        raise ClusterError(f"{path} is missing; run: {INSTALL_COMMAND}")
    return str(path)


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int

    @classmethod
    def load_or_pick(cls, path: Path) -> Ports:
        """The ports of the last start when still free (etcd's data remembers its peer URL)."""
        try:
            previous = cls(**json.loads(path.read_text()))
            if all(procs.port_free(p) for p in asdict(previous).values()):
                return previous
        except (OSError, ValueError, TypeError):
            pass
        ports: list[int] = []
        while len(ports) < 3:
            port = procs.free_port()
            if port not in ports:
                ports.append(port)
        picked = cls(*ports)
        path.write_text(json.dumps(asdict(picked)))
        return picked


def _say(message: str) -> None:
    print(f"localcluster: {message}", flush=True)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Starter:
    """One `start`: launches each component and waits until it is usable."""

    def __init__(self, layout: Layout, timeout: float) -> None:
        self.layout = layout
        self.timeout = timeout
        self.pki = pki.Pki(layout.certs)
        self.began = time.monotonic()

    def wait(self, what: str, component: str, ready: Callable[[], bool]) -> None:
        """Poll `ready` until true; fail early when `component` died, late at the deadline."""
        started = time.monotonic()
        pause = threading.Event()
        while not ready():
            if procs.running(self.layout.pid_file(component)) is None:
                log = self.layout.log_file(component)
                raise ClusterError(f"{component} exited; last lines of {log}:\n{_tail(log)}")
            if time.monotonic() - started > self.timeout:
                log = self.layout.log_file(component)
                raise ClusterError(
                    f"{what}: not ready after {self.timeout:.0f} s; see {log}:\n{_tail(log)}"
                )
            pause.wait(0.25)
        _say(f"{what} ({time.monotonic() - started:.1f} s)")

    def launch(self, component: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        procs.spawn(
            argv,
            self.layout.log_file(component),
            self.layout.pid_file(component),
            env=env,
            cwd=self.layout.state,
        )

    def run(self) -> None:
        bins = {name: binary(name) for name in COMPONENTS[:3]}
        prepare_state(self.layout)
        if not self.pki.complete:
            t = time.monotonic()
            pki.create(self.pki)
            _say(f"credentials generated ({time.monotonic() - t:.1f} s)")
        ports = Ports.load_or_pick(self.layout.ports_file)
        creds = Credentials(
            f"https://127.0.0.1:{ports.apiserver}",
            self.pki.ca_cert.read_bytes(),
            self.pki.admin_token(),
        )
        replace_file(self.layout.kubeconfig, kubeconfig_text(creds))
        api = Client(creds, timeout=30)

        self.launch("etcd", [bins["etcd"], *self.etcd_flags(ports)])
        self.wait(
            f"etcd ready on 127.0.0.1:{ports.etcd_client}",
            "etcd",
            lambda: _etcd_ok(ports, self.pki),
        )
        self.launch("kube-apiserver", [bins["kube-apiserver"], *self.apiserver_flags(ports)])
        self.wait(f"kube-apiserver ready on {creds.server}", "kube-apiserver", api.healthy)
        cm_flags = self.controller_manager_flags()
        self.launch("kube-controller-manager", [bins["kube-controller-manager"], *cm_flags])
        agent_launched = now()
        self.launch("agent", self.agent_argv(), env=_agent_env())
        self.wait(
            "default namespace usable: its ServiceAccount and root CA exist",
            "kube-controller-manager",
            lambda: (
                _exists(api, "/api/v1/namespaces/default/serviceaccounts/default")
                and _exists(api, "/api/v1/namespaces/default/configmaps/kube-root-ca.crt")
            ),
        )
        self.wait(f"node {NODE_NAME} Ready", "agent", lambda: _node_ready(api, agent_launched))
        _say(f"cluster up in {time.monotonic() - self.began:.1f} s")

    def etcd_flags(self, ports: Ports) -> list[str]:
        p = self.pki
        client = f"https://127.0.0.1:{ports.etcd_client}"
        peer = f"https://127.0.0.1:{ports.etcd_peer}"
        return [
            "--name=local",
            f"--data-dir={self.layout.etcd_data}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            "--client-cert-auth=true",
            f"--trusted-ca-file={p.ca_cert}",
            f"--cert-file={p.etcd_cert}",
            f"--key-file={p.etcd_key}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=local={peer}",
            "--peer-client-cert-auth=true",
            f"--peer-trusted-ca-file={p.ca_cert}",
            f"--peer-cert-file={p.etcd_cert}",
            f"--peer-key-file={p.etcd_key}",
            "--unsafe-no-fsync",  # a throwaway cluster: speed over durability
            "--log-level=warn",
        ]

    def apiserver_flags(self, ports: Ports) -> list[str]:
        p = self.pki
        return [
            "--advertise-address=127.0.0.1",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.apiserver}",
            f"--etcd-servers=https://127.0.0.1:{ports.etcd_client}",
            f"--etcd-cafile={p.ca_cert}",
            f"--etcd-certfile={p.etcd_client_cert}",
            f"--etcd-keyfile={p.etcd_client_key}",
            f"--cert-dir={p.dir}",
            f"--tls-cert-file={p.server_cert}",
            f"--tls-private-key-file={p.server_key}",
            f"--client-ca-file={p.ca_cert}",
            f"--token-auth-file={p.tokens}",
            f"--service-account-issuer={pki.SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={p.sa_pub}",
            f"--service-account-signing-key-file={p.sa_key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            # The `kubernetes` Endpoints would name 127.0.0.1, which is not a valid endpoint.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ]

    def controller_manager_flags(self) -> list[str]:
        p = self.pki
        return [
            f"--kubeconfig={self.layout.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",  # nothing needs its metrics or health endpoints
            f"--service-account-private-key-file={p.sa_key}",
            f"--root-ca-file={p.ca_cert}",
            "--use-service-account-credentials=false",
            f"--cluster-signing-cert-file={p.ca_cert}",
            f"--cluster-signing-key-file={p.ca_key}",
            "--profiling=false",
        ]

    def agent_argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "standins.cluster",
            "agent",
            "--state",
            str(self.layout.state),
        ]


def _agent_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def prepare_state(layout: Layout) -> None:
    """The state directory, private from its creation: it holds the CA key and the token."""
    make_private_dir(layout.state)
    (layout.state / MARKER).touch()


def _etcd_ok(ports: Ports, keys: pki.Pki) -> bool:
    """etcd reports itself healthy to a client presenting the API server's certificate."""
    try:
        context = ssl.create_default_context(cafile=str(keys.ca_cert))
        context.load_cert_chain(str(keys.etcd_client_cert), str(keys.etcd_client_key))
    except (OSError, ssl.SSLError):
        return False
    conn = http.client.HTTPSConnection("127.0.0.1", ports.etcd_client, timeout=10, context=context)
    try:
        conn.request("GET", "/health")
        body = conn.getresponse().read()
        return bool(json.loads(body).get("health") == "true")
    except (OSError, http.client.HTTPException, ValueError):
        return False
    finally:
        conn.close()


def _exists(api: Client, path: str) -> bool:
    try:
        return api.get_or_none(path) is not None
    except ApiError:
        return False


def _node_ready(api: Client, since: str) -> bool:
    """Ready, as reported by this start's agent (a restarted cluster remembers the last one)."""
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
    if not all(running_components(layout).values()) or not layout.kubeconfig.is_file():
        return False
    return Client.from_kubeconfig(layout.kubeconfig, timeout=30).healthy()


def _await_ready(layout: Layout, timeout: float) -> bool:
    """True once the API server is ready; False as soon as a component exits.

    Slowness is no reason to restart: past `timeout`, a guard against hangs, ClusterError
    with every component left running.
    """
    try:
        api = Client.from_kubeconfig(layout.kubeconfig, timeout=min(30.0, max(timeout, 1.0)))
    except Exception:  # an unreadable kubeconfig: a fresh start writes a new one
        return False
    started = time.monotonic()
    pause = threading.Event()
    said = False
    while True:
        if not all(running_components(layout).values()):
            return False
        if api.healthy():
            return True
        if time.monotonic() - started > timeout:
            log = layout.log_file("kube-apiserver")
            raise ClusterError(
                f"every component runs but the API server is not ready after {timeout:.0f} s; "
                f"see {log}:\n{_tail(log)}\n(`stop`, then `start`, restarts the cluster)"
            )
        if not said:
            _say("every component runs; waiting for the API server to be ready")
            said = True
        pause.wait(READY_POLL)


def start(layout: Layout, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Bring the cluster up, or confirm it is up; ClusterError if it cannot.

    Components are restarted only when one of them has exited, never for being slow; what
    a failed start launched is stopped again.
    """
    components = running_components(layout)
    if all(components.values()) and layout.kubeconfig.is_file():
        if _await_ready(layout, timeout):
            _say(f"already running (state in {layout.state})")
            _say(f"kubeconfig: {layout.kubeconfig}")
            return
        components = running_components(layout)
    if any(components.values()):
        gone = [name for name, proc in components.items() if proc is None]
        why = f"{', '.join(gone)} not running" if gone else "no readable kubeconfig"
        _say(f"{why}; restarting every component")
        stop(layout, keep_state=True, quiet=True)
    _say(f"starting (state in {layout.state})")
    try:
        Starter(layout, timeout).run()
    except BaseException:
        stop(layout, keep_state=True, quiet=True)
        raise
    _say(f"kubeconfig: {layout.kubeconfig}")


def stop(layout: Layout, *, keep_state: bool = False, quiet: bool = False) -> None:
    """Stop every component and every pod process; remove the state unless asked to keep it."""
    stopped_any = False
    for name in reversed(COMPONENTS):
        proc = procs.running(layout.pid_file(name))
        if proc is None:
            continue
        stopped_any = True
        gone = procs.terminate(proc, STOP_GRACE)
        if not quiet:
            _say(f"stopped {name}" if gone else f"{name} (pid {proc.pid}) would not exit")
    if layout.pod_pids.is_dir():
        for pid_file in layout.pod_pids.glob("*.pid"):
            proc = procs.read_pid_file(pid_file)
            if proc is not None and procs.is_alive(proc):
                procs.terminate(proc, 10.0)
                if not quiet:
                    _say(f"killed pod process {pid_file.stem}")
            pid_file.unlink(missing_ok=True)
    if not stopped_any and not quiet:
        _say("no component was running")
    if keep_state:
        return
    _remove_legacy_shared(layout)
    if (layout.state / MARKER).is_file():
        shutil.rmtree(layout.state, ignore_errors=True)
        if not quiet:
            _say(f"removed {layout.state}")


def _remove_legacy_shared(layout: Layout) -> None:
    """Remove the /var/tmp copy of the Flyway jars earlier versions made: if it is ours.

    Only a real directory owned by us is removed, never a link or anyone else's directory.
    """
    key = hashlib.sha256(str(layout.state.resolve()).encode()).hexdigest()[:12]
    legacy = Path("/var/tmp") / f"localcluster-{key}"  # noqa: S108 (a fixed, checked name)
    try:
        info = os.lstat(legacy)
    except OSError:
        return
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
        shutil.rmtree(legacy, ignore_errors=True)


def status(layout: Layout) -> bool:
    """Print what runs; True when every component runs and the API server is ready."""
    components = running_components(layout)
    for name, proc in components.items():
        state = f"running (pid {proc.pid})" if proc else "not running"
        print(f"{name}: {state}  log: {layout.log_file(name)}")
    ready = healthy(layout)
    server = read_kubeconfig(layout.kubeconfig).server if layout.kubeconfig.is_file() else "-"
    print(f"api: {'ready' if ready else 'not ready'} at {server}  kubeconfig: {layout.kubeconfig}")
    return ready
