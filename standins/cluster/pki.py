"""The cluster's credentials, made once per state directory with the openssl CLI.

A CA; the API server's serving certificate (loopback, the node's address and the
`kubernetes` Service); etcd's serving certificate and the client certificate etcd requires
of the API server; the API server's client certificate for the kubelet (logs, exec); the
kubelet's client (system:node:<name>, for the Node authorizer) and serving certificates;
one client certificate per component (kube-proxy, the scheduler, the controller manager);
the service-account signing key pair; and a random admin bearer token in system:masters.
EC P-256 keys: quick to generate on a loaded machine and accepted by every component. The
directory is private (0700) from its creation; keys and the token file are 0600. What
exists is kept, so a restart reuses the credentials the cluster's data was made with.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from standins.cluster.layout import (
    CLUSTER_DOMAIN,
    KUBERNETES_SERVICE_IP,
    NODE_IP,
    NODE_NAME,
    make_private_dir,
    replace_file,
)

SERVICE_ACCOUNT_ISSUER: Final = f"https://kubernetes.default.svc.{CLUSTER_DOMAIN}"
_EC: Final = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
_API_NAMES: Final = (
    f"IP:127.0.0.1, IP:{NODE_IP}, IP:{KUBERNETES_SERVICE_IP}, DNS:localhost, DNS:kubernetes, "
    "DNS:kubernetes.default, DNS:kubernetes.default.svc, "
    f"DNS:kubernetes.default.svc.{CLUSTER_DOMAIN}"
)


@dataclass(frozen=True)
class Leaf:
    """One certificate signed by the CA: `<name>.crt` and `<name>.key`."""

    name: str
    subject: str
    usage: str
    """extendedKeyUsage."""
    names: str = ""
    """subjectAltName, for serving certificates."""


LEAVES: Final = (
    Leaf("apiserver", "/CN=kube-apiserver", "serverAuth", _API_NAMES),
    # clientAuth too: the same certificate authenticates etcd to its own peer listener.
    Leaf("etcd-server", "/CN=etcd", "serverAuth, clientAuth", "IP:127.0.0.1, DNS:localhost"),
    Leaf("apiserver-etcd-client", "/CN=kube-apiserver-etcd-client", "clientAuth"),
    Leaf(
        "apiserver-kubelet-client",
        "/O=system:masters/CN=kube-apiserver-kubelet-client",
        "clientAuth",
    ),
    Leaf("kubelet-client", f"/O=system:nodes/CN=system:node:{NODE_NAME}", "clientAuth"),
    Leaf(
        "kubelet-server",
        f"/O=system:nodes/CN=system:node:{NODE_NAME}",
        "serverAuth",
        f"IP:{NODE_IP}, IP:127.0.0.1, DNS:{NODE_NAME}",
    ),
    Leaf("kube-proxy", "/CN=system:kube-proxy", "clientAuth"),
    Leaf("kube-scheduler", "/CN=system:kube-scheduler", "clientAuth"),
    Leaf("kube-controller-manager", "/CN=system:kube-controller-manager", "clientAuth"),
)


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    @property
    def tokens(self) -> Path:
        return self.dir / "tokens.csv"

    @property
    def complete(self) -> bool:
        files = [self.ca_cert, self.ca_key, self.sa_key, self.sa_pub, self.tokens]
        for leaf in LEAVES:
            files += [self.cert(leaf.name), self.key(leaf.name)]
        return all(f.is_file() for f in files)

    def admin_token(self) -> str:
        return self.tokens.read_text().split(",", 1)[0]


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def extensions(leaf: Leaf) -> str:
    text = "basicConstraints = critical, CA:FALSE\n"
    text += "keyUsage = critical, digitalSignature, keyEncipherment\n"
    text += f"extendedKeyUsage = {leaf.usage}\n"
    if leaf.names:
        text += f"subjectAltName = {leaf.names}\n"
    return text


def _sign(pki: Pki, leaf: Leaf) -> None:
    """A key and a certificate signed by the CA; the certificate lands last, atomically."""
    d, stem = pki.dir, leaf.name
    _openssl(
        "req", "-new", *_EC, "-keyout", f"{stem}.key.tmp", "-out", f"{stem}.csr",
        "-subj", leaf.subject,
        cwd=d,
    )  # fmt: skip
    (d / f"{stem}.ext").write_text(extensions(leaf))
    _openssl(
        "x509", "-req", "-in", f"{stem}.csr", "-CA", pki.ca_cert.name, "-CAkey", pki.ca_key.name,
        "-set_serial", str(secrets.randbits(63)), "-days", "3650",
        "-extfile", f"{stem}.ext", "-out", f"{stem}.crt.tmp",
        cwd=d,
    )  # fmt: skip
    os.chmod(d / f"{stem}.key.tmp", 0o600)
    os.replace(d / f"{stem}.key.tmp", pki.key(stem))
    os.replace(d / f"{stem}.crt.tmp", pki.cert(stem))
    for leftover in (f"{stem}.csr", f"{stem}.ext"):
        (d / leftover).unlink(missing_ok=True)


def create(pki: Pki) -> None:
    """Generate what is missing; existing credentials are kept, so restarts reuse them."""
    d = pki.dir
    make_private_dir(d)
    if not (pki.ca_cert.is_file() and pki.ca_key.is_file()):
        # Everything else was signed by the CA that is gone: start over.
        for path in d.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        _openssl(
            "req", "-x509", *_EC, "-keyout", "ca.key.tmp", "-out", "ca.crt.tmp",
            "-days", "3650", "-subj", "/CN=localcluster-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            cwd=d,
        )  # fmt: skip
        os.chmod(d / "ca.key.tmp", 0o600)
        os.replace(d / "ca.key.tmp", pki.ca_key)
        os.replace(d / "ca.crt.tmp", pki.ca_cert)
    for leaf in LEAVES:
        if not (pki.cert(leaf.name).is_file() and pki.key(leaf.name).is_file()):
            _sign(pki, leaf)
    if not (pki.sa_key.is_file() and pki.sa_pub.is_file()):
        _openssl(
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", "sa.key.tmp",
            cwd=d,
        )  # fmt: skip
        os.chmod(d / "sa.key.tmp", 0o600)
        _openssl("pkey", "-in", "sa.key.tmp", "-pubout", "-out", "sa.pub", cwd=d)
        os.replace(d / "sa.key.tmp", pki.sa_key)
    if not pki.tokens.is_file():
        replace_file(pki.tokens, f'{secrets.token_urlsafe(32)},admin,admin,"system:masters"\n')
