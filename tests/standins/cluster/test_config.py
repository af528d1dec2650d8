"""The cluster's configuration, checked without starting it: what each component listens on,
where it writes, and who may talk to whom."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from standins.cluster import addons, config, isolation, pki
from standins.cluster.binaries import Binaries, installed
from standins.cluster.layout import NODE_IP, NODE_NAME, REPO_ROOT, Layout
from standins.cluster.provisioner import volume_for
from standins.clusterdb import ClusterDatabaseError, Location, objects

BINARIES = Binaries(Path("/k8s"), Path("/containerd"), Path("/runc"), Path("/cni"))


def test_the_binaries_are_where_the_install_script_builds_them_by_version() -> None:
    versions = dict(
        line.split()
        for line in subprocess.run(
            ["bash", str(REPO_ROOT / "scripts/install-engine.sh"), "versions"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    )
    found = Binaries.find()
    assert found.kubernetes.name == (
        f"kubernetes-v{versions['kubernetes']}-etcd-v{versions['etcd']}"
    )
    assert found.containerd.name == f"containerd-v{versions['containerd']}"
    assert found.runc.name == f"runc-v{versions['runc']}"
    assert found.cni.name == f"cni-plugins-v{versions['cni-plugins']}"
    assert installed("coredns").name == f"coredns-v{versions['coredns']}"
    assert found["kubelet"] == str(found.kubernetes / "kubelet")
    assert found["runc"] == str(found.runc / "runc")


def _paths(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [p for item in value.values() for p in _paths(item)]
    if isinstance(value, list):
        return [p for item in value for p in _paths(item)]
    return [value] if isinstance(value, str) and value.startswith("/") else []


def test_everything_the_runtime_writes_is_in_the_state_or_the_nodes_own_trees(
    tmp_path: Path,
) -> None:
    """containerd's files are in the state directory, or in the /run and /var the node
    replaces with its own: no fixed host path (/opt/containerd, /etc/cni...) is touched."""
    layout = Layout(tmp_path)
    parsed = tomllib.loads(config.containerd_config(layout, BINARIES))
    assert parsed["root"] == str(layout.containerd_root)
    allowed = (str(tmp_path), *isolation.PRIVATE_TREES, "/k8s", "/containerd", "/runc", "/cni")
    for path in _paths(parsed):
        assert path.startswith(allowed), path
    runtime = parsed["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["containerd"]["runtimes"]["runc"]["options"]["BinaryName"] == "/runc/runc"
    assert runtime["restrict_oom_score_adj"] is True


def test_the_kubelet_gets_its_own_cgroup_root_and_no_host_dns(tmp_path: Path) -> None:
    first = yaml.safe_load(config.kubelet_config(Layout(tmp_path / "a")))
    second = yaml.safe_load(config.kubelet_config(Layout(tmp_path / "b")))
    assert first["cgroupRoot"] != second["cgroupRoot"]
    assert first["cgroupRoot"] == f"/{Layout(tmp_path / 'a').cgroup_name}"
    assert first["resolvConf"] == ""
    assert first["authentication"]["anonymous"]["enabled"] is False
    assert first["readOnlyPort"] == 0
    assert first["address"] == NODE_IP
    assert first["imageGCHighThresholdPercent"] == 100  # nothing can be pulled back


def test_the_kubelet_finds_the_kernel_settings_it_wants_in_the_nodes_own_files() -> None:
    """It would set these host-wide (kernel.panic among them); the node shows it copies."""
    assert set(config.KUBELET_TUNABLES) == {
        "vm/overcommit_memory",
        "vm/panic_on_oom",
        "kernel/panic",
        "kernel/panic_on_oops",
        "kernel/keys/root_maxkeys",
        "kernel/keys/root_maxbytes",
    }


def test_etcd_listens_on_loopback_and_demands_the_api_servers_certificate(
    tmp_path: Path,
) -> None:
    layout = Layout(tmp_path)
    etcd = config.etcd_flags(layout)
    for flag in etcd:
        if re.search(r"-urls=", flag) and flag.split("=", 1)[1]:
            assert re.fullmatch(r"--[a-z-]+=https://127\.0\.0\.1:\d+", flag), flag
    assert "--client-cert-auth=true" in etcd
    assert "--peer-client-cert-auth=true" in etcd
    apiserver = config.apiserver_flags(layout)
    keys = config.pki(layout)
    assert f"--etcd-certfile={keys.cert('apiserver-etcd-client')}" in apiserver
    assert f"--kubelet-client-certificate={keys.cert('apiserver-kubelet-client')}" in apiserver
    assert "--authorization-mode=Node,RBAC" in apiserver
    assert f"--advertise-address={NODE_IP}" in apiserver


def test_kube_proxy_leaves_the_hosts_conntrack_settings_and_ports_alone(tmp_path: Path) -> None:
    proxy = yaml.safe_load(config.kube_proxy_config(Layout(tmp_path)))
    assert proxy["conntrack"]["maxPerCore"] == 0
    assert proxy["nodePortAddresses"] == [f"{NODE_IP}/32"]
    assert proxy["iptables"]["localhostNodePorts"] is False


def test_each_component_logs_in_with_its_own_certificate(tmp_path: Path) -> None:
    keys = pki.Pki(tmp_path / "certs")
    pki.create(keys)
    assert keys.complete
    subjects = {}
    for leaf in pki.LEAVES:
        text = subprocess.run(
            ["openssl", "x509", "-noout", "-subject", "-nameopt", "RFC2253", "-ext",
             "subjectAltName", "-in", str(keys.cert(leaf.name))],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        subjects[leaf.name] = text
        assert keys.key(leaf.name).stat().st_mode & 0o077 == 0
    assert f"CN=system:node:{NODE_NAME},O=system:nodes" in subjects["kubelet-client"]
    assert f"IP Address:{NODE_IP}" in subjects["apiserver"]
    assert "IP Address:10.96.0.1" in subjects["apiserver"]
    kubeconfig = yaml.safe_load(config.component_kubeconfig_text(keys, "kube-proxy"))
    assert kubeconfig["users"][0]["user"]["client-certificate"] == str(keys.cert("kube-proxy"))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == config.INTERNAL_API
    before = keys.cert("apiserver").read_bytes()
    pki.create(keys)  # a restart keeps what the cluster's data was made with
    assert keys.cert("apiserver").read_bytes() == before


def test_a_claim_gets_a_local_volume_pinned_to_the_node(tmp_path: Path) -> None:
    claim = {
        "metadata": {"name": "data", "namespace": "ns", "uid": "1234"},
        "spec": {"resources": {"requests": {"storage": "1Gi"}}},
    }
    storage_class = {"metadata": {"name": "local-path"}, "reclaimPolicy": "Delete"}
    volume = volume_for(claim, storage_class, tmp_path)
    assert volume["spec"]["local"]["path"] == str(tmp_path / "pvc-1234")
    assert volume["spec"]["claimRef"]["uid"] == "1234"
    term = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"][0]["values"] == [NODE_NAME]


def test_coredns_answers_for_the_cluster_only_without_any_capability() -> None:
    assert "forward" not in addons.COREFILE
    pod = addons.coredns_deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_the_local_database_location_is_a_service_of_the_cluster() -> None:
    found = Location.from_host("postgres.local-database.svc.cluster.local")
    assert (found.service, found.namespace) == ("postgres", "local-database")
    assert found.host == "postgres.local-database.svc.cluster.local"
    for wrong in ("127.0.0.1", "db.example.com", "localhost"):
        with pytest.raises(ClusterDatabaseError, match=r"<service>\.<namespace>\.svc"):
            Location.from_host(wrong)


def test_the_local_database_runs_locked_down_with_its_data_on_a_claim() -> None:
    created = dict(objects(Location("postgres", "db"), "localhost/postgres:15", "pw"))
    statefulset = created["/apis/apps/v1/namespaces/db/statefulsets"]
    pod = statefulset["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    container = pod["containers"][0]["securityContext"]
    assert container["readOnlyRootFilesystem"] is True
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    secret = created["/api/v1/namespaces/db/secrets"]
    assert secret["stringData"]["POSTGRES_PASSWORD"] == "pw"
