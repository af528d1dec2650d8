"""The control plane's configuration, checked without starting it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from localcluster import controlplane, pki
from localcluster.api import Credentials, kubeconfig_text, read_kubeconfig
from localcluster.controlplane import Ports, Starter
from localcluster.layout import REPO_ROOT, Layout


def test_versions_match_the_install_script() -> None:
    script = (REPO_ROOT / "scripts" / "install-engine.sh").read_text()
    assert re.search(
        rf"^KUBERNETES_VERSION={re.escape(controlplane.KUBERNETES_VERSION)}$", script, re.M
    )
    assert re.search(rf"^ETCD_VERSION={re.escape(controlplane.ETCD_VERSION)}$", script, re.M)
    assert controlplane.bin_dir().name == "kubernetes-v1.34.2-etcd-v3.6.4"


def test_every_listener_is_on_loopback(tmp_path: Path) -> None:
    starter = Starter(Layout(tmp_path), timeout=1)
    flags = [
        *starter.etcd_flags(Ports(2379, 2380, 6443)),
        *starter.apiserver_flags(Ports(2379, 2380, 6443)),
        *starter.controller_manager_flags(),
    ]
    addresses = [f for f in flags if re.search(r"(url|address|servers)s?=", f)]
    assert addresses
    for flag in addresses:
        assert re.search(r"=(https?://)?127\.0\.0\.1(:\d+)?$", flag), flag
    assert "--secure-port=0" in starter.controller_manager_flags()


def test_ports_are_reused_while_free(tmp_path: Path) -> None:
    first = Ports.load_or_pick(tmp_path / "ports.json")
    assert len({first.etcd_client, first.etcd_peer, first.apiserver}) == 3
    assert Ports.load_or_pick(tmp_path / "ports.json") == first


def test_kubeconfig_round_trips(tmp_path: Path) -> None:
    creds = Credentials("https://127.0.0.1:6443", b"-----BEGIN CERTIFICATE-----\n", "tok")
    path = tmp_path / "kubeconfig"
    path.write_text(kubeconfig_text(creds))
    assert read_kubeconfig(path) == creds


def test_credentials_serve_loopback_and_grant_system_masters(tmp_path: Path) -> None:
    keys = pki.Pki(tmp_path / "certs")
    pki.create(keys)
    text = subprocess.run(
        ["openssl", "x509", "-in", str(keys.server_cert), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "IP Address:127.0.0.1" in text
    assert "DNS:localhost" in text
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(keys.ca_cert), str(keys.server_cert)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    token, user, uid, groups = keys.tokens.read_text().strip().split(",", 3)
    assert len(token) >= 32
    assert (user, uid, groups) == ("admin", "admin", '"system:masters"')
    assert keys.admin_token() == token
