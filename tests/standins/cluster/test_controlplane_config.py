"""The control plane's configuration, checked without starting it."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

from standins.cluster import controlplane, pki
from standins.cluster.api import Credentials, kubeconfig_text, read_kubeconfig
from standins.cluster.controlplane import Ports, Starter
from standins.cluster.layout import REPO_ROOT, Layout, replace_file

PORTS = Ports(2379, 2380, 6443)


def test_versions_match_the_install_script() -> None:
    script = (REPO_ROOT / "scripts" / "install-engine.sh").read_text()
    assert re.search(
        rf"^KUBERNETES_VERSION={re.escape(controlplane.KUBERNETES_VERSION)}$", script, re.M
    )
    assert re.search(rf"^ETCD_VERSION={re.escape(controlplane.ETCD_VERSION)}$", script, re.M)
    assert controlplane.bin_dir().name == "kubernetes-v1.34.2-etcd-v3.6.4"


def test_every_listener_is_on_loopback(tmp_path: Path) -> None:
    starter = Starter(Layout(tmp_path), timeout=1)
    etcd = starter.etcd_flags(PORTS)
    apiserver = starter.apiserver_flags(PORTS)
    controller_manager = starter.controller_manager_flags()
    # Present, not merely well-formed when present: dropping one would listen on all addresses.
    for flag in (
        "--listen-client-urls=https://127.0.0.1:2379",
        "--advertise-client-urls=https://127.0.0.1:2379",
        "--listen-peer-urls=https://127.0.0.1:2380",
        "--initial-advertise-peer-urls=https://127.0.0.1:2380",
    ):
        assert flag in etcd, flag
    for flag in ("--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"):
        assert flag in apiserver, flag
    assert "--etcd-servers=https://127.0.0.1:2379" in apiserver
    assert "--bind-address=127.0.0.1" in controller_manager
    assert "--secure-port=0" in controller_manager
    addresses = [
        f
        for f in [*etcd, *apiserver, *controller_manager]
        if re.search(r"(url|address|servers)s?=", f)
    ]
    for flag in addresses:
        assert re.search(r"=(https?://)?127\.0\.0\.1(:\d+)?$", flag), flag


def test_etcd_demands_a_client_certificate_only_the_apiserver_holds(tmp_path: Path) -> None:
    starter = Starter(Layout(tmp_path), timeout=1)
    keys = starter.pki
    etcd = starter.etcd_flags(PORTS)
    for flag in (
        "--client-cert-auth=true",
        f"--trusted-ca-file={keys.ca_cert}",
        f"--cert-file={keys.etcd_cert}",
        f"--key-file={keys.etcd_key}",
        "--peer-client-cert-auth=true",
        f"--peer-trusted-ca-file={keys.ca_cert}",
        f"--peer-cert-file={keys.etcd_cert}",
        f"--peer-key-file={keys.etcd_key}",
    ):
        assert flag in etcd, flag
    assert not [f for f in etcd if "http://" in f]
    apiserver = starter.apiserver_flags(PORTS)
    for flag in (
        f"--etcd-cafile={keys.ca_cert}",
        f"--etcd-certfile={keys.etcd_client_cert}",
        f"--etcd-keyfile={keys.etcd_client_key}",
    ):
        assert flag in apiserver, flag


def test_ports_are_reused_while_free(tmp_path: Path) -> None:
    first = Ports.load_or_pick(tmp_path / "ports.json")
    assert len({first.etcd_client, first.etcd_peer, first.apiserver}) == 3
    assert Ports.load_or_pick(tmp_path / "ports.json") == first


def test_kubeconfig_round_trips(tmp_path: Path) -> None:
    creds = Credentials("https://127.0.0.1:6443", b"-----BEGIN CERTIFICATE-----\n", "tok")
    path = tmp_path / "kubeconfig"
    path.write_text(kubeconfig_text(creds))
    assert read_kubeconfig(path) == creds


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


def test_credentials_serve_loopback_and_grant_system_masters(tmp_path: Path) -> None:
    keys = pki.Pki(tmp_path / "certs")
    pki.create(keys)
    assert keys.complete
    for cert in (keys.server_cert, keys.etcd_cert):
        text = openssl("x509", "-in", str(cert), "-noout", "-text").stdout
        assert "IP Address:127.0.0.1" in text
        assert "DNS:localhost" in text
        verify = openssl("verify", "-purpose", "sslserver", "-CAfile", str(keys.ca_cert), str(cert))
        assert verify.returncode == 0, verify.stderr
    client = openssl(
        "verify", "-purpose", "sslclient", "-CAfile", str(keys.ca_cert), str(keys.etcd_client_cert)
    )
    assert client.returncode == 0, client.stderr
    token, user, uid, groups = keys.tokens.read_text().strip().split(",", 3)
    assert len(token) >= 32
    assert (user, uid, groups) == ("admin", "admin", '"system:masters"')
    assert keys.admin_token() == token


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_are_private_from_the_start(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "state")
    controlplane.prepare_state(layout)
    assert mode(layout.state) == 0o700
    keys = pki.Pki(layout.certs)
    pki.create(keys)
    assert mode(keys.dir) == 0o700
    for secret in (keys.tokens, keys.ca_key, keys.server_key, keys.etcd_key, keys.sa_key):
        assert mode(secret) == 0o600, secret

    os.chmod(layout.state, 0o755)  # noqa: S103 (as an earlier version left it)
    controlplane.prepare_state(layout)
    assert mode(layout.state) == 0o700

    layout.kubeconfig.write_text("old")
    os.chmod(layout.kubeconfig, 0o644)
    replace_file(layout.kubeconfig, "new")
    assert layout.kubeconfig.read_text() == "new"
    assert mode(layout.kubeconfig) == 0o600
    assert [p.name for p in layout.state.iterdir() if p.name.endswith(".tmp")] == []


def test_missing_credentials_are_added_and_existing_ones_kept(tmp_path: Path) -> None:
    keys = pki.Pki(tmp_path / "certs")
    pki.create(keys)
    before = {p.name: p.read_bytes() for p in keys.dir.iterdir()}
    for path in (keys.etcd_cert, keys.etcd_key, keys.etcd_client_cert, keys.etcd_client_key):
        path.unlink()  # as in a directory made before etcd had certificates
    assert not keys.complete
    pki.create(keys)
    assert keys.complete
    after = {p.name: p.read_bytes() for p in keys.dir.iterdir()}
    assert sorted(after) == sorted(before)
    kept = ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "sa.key", "tokens.csv")
    assert all(after[name] == before[name] for name in kept)
    assert after["etcd-server.crt"] != before["etcd-server.crt"]
