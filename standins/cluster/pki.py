"""The cluster's credentials, made once per state directory with the openssl CLI.

A CA; the API server's serving certificate (127.0.0.1 and localhost); etcd's serving (and
peer) certificate and the client certificate etcd requires of the API server, so only
holders of a key from this directory can reach etcd; the service-account signing key
pair; and a random admin bearer token in system:masters. EC P-256 keys: quick to generate
on a loaded machine, and accepted by every component. The directory is private (0700)
from its creation, and the token file is created 0600.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from standins.cluster.layout import make_private_dir, replace_file

SERVICE_ACCOUNT_ISSUER: Final = "https://kubernetes.default.svc.cluster.local"
_EC: Final = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
_LEAF: Final = "basicConstraints = critical, CA:FALSE\n"
_APISERVER_EXTENSIONS: Final = f"""\
{_LEAF}keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, \
DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
"""
_ETCD_SERVER_EXTENSIONS: Final = f"""\
{_LEAF}keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
"""
"""clientAuth too: the same certificate authenticates etcd to its own peer listener."""
_CLIENT_EXTENSIONS: Final = f"""\
{_LEAF}keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
"""


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def etcd_cert(self) -> Path:
        return self.dir / "etcd-server.crt"

    @property
    def etcd_key(self) -> Path:
        return self.dir / "etcd-server.key"

    @property
    def etcd_client_cert(self) -> Path:
        """What the API server (and `start`'s health check) presents to etcd."""
        return self.dir / "apiserver-etcd-client.crt"

    @property
    def etcd_client_key(self) -> Path:
        return self.dir / "apiserver-etcd-client.key"

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
        """Every file exists (a directory made before etcd had certificates lacks some)."""
        files = (
            self.ca_cert,
            self.ca_key,
            self.server_cert,
            self.server_key,
            self.etcd_cert,
            self.etcd_key,
            self.etcd_client_cert,
            self.etcd_client_key,
            self.sa_key,
            self.sa_pub,
            self.tokens,
        )
        return all(f.is_file() for f in files)

    def admin_token(self) -> str:
        return self.tokens.read_text().split(",", 1)[0]


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _sign_leaf(pki: Pki, cert: Path, key: Path, subject: str, extensions: str) -> None:
    """A key and a certificate signed by the CA; the certificate lands last, atomically."""
    d = pki.dir
    stem = cert.stem
    _openssl(
        "req", "-new", *_EC, "-keyout", f"{stem}.key.tmp", "-out", f"{stem}.csr",
        "-subj", subject,
        cwd=d,
    )  # fmt: skip
    (d / f"{stem}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{stem}.csr", "-CA", pki.ca_cert.name, "-CAkey", pki.ca_key.name,
        "-set_serial", str(secrets.randbits(63)), "-days", "3650",
        "-extfile", f"{stem}.ext", "-out", f"{stem}.crt.tmp",
        cwd=d,
    )  # fmt: skip
    os.replace(d / f"{stem}.key.tmp", key)
    os.replace(d / f"{stem}.crt.tmp", cert)
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
        os.replace(d / "ca.key.tmp", pki.ca_key)
        os.replace(d / "ca.crt.tmp", pki.ca_cert)
    leaves = (
        (pki.server_cert, pki.server_key, "/CN=kube-apiserver", _APISERVER_EXTENSIONS),
        (pki.etcd_cert, pki.etcd_key, "/CN=etcd", _ETCD_SERVER_EXTENSIONS),
        (
            pki.etcd_client_cert,
            pki.etcd_client_key,
            "/CN=kube-apiserver-etcd-client",
            _CLIENT_EXTENSIONS,
        ),
    )
    for cert, key, subject, extensions in leaves:
        if not (cert.is_file() and key.is_file()):
            _sign_leaf(pki, cert, key, subject, extensions)
    if not (pki.sa_key.is_file() and pki.sa_pub.is_file()):
        _openssl(
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", "sa.key.tmp",
            cwd=d,
        )  # fmt: skip
        _openssl("pkey", "-in", "sa.key.tmp", "-pubout", "-out", "sa.pub", cwd=d)
        os.replace(d / "sa.key.tmp", pki.sa_key)
    if not pki.tokens.is_file():
        replace_file(pki.tokens, f'{secrets.token_urlsafe(32)},admin,admin,"system:masters"\n')
