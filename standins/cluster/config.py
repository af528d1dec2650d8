"""Every component's flags and configuration files (pure: text from a layout, nothing run).

All of them run in the node's own network and mount namespaces (isolation.py), so they
listen on that network's loopback and the node's address only, and whatever a component
writes to a fixed path under /run or /var lands in the node's private copies of those.
Only the API server is reachable from the host, through the port forwarded to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import yaml

from standins.cluster.api import component_kubeconfig
from standins.cluster.binaries import Binaries
from standins.cluster.layout import (
    API_PORT,
    BRIDGE,
    CLUSTER_CIDR,
    CLUSTER_DOMAIN,
    DNS_SERVICE_IP,
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    KUBE_PROXY_HEALTH_PORT,
    NODE_IP,
    NODE_NAME,
    POD_CIDR,
    SERVICE_CIDR,
    Layout,
)
from standins.cluster.pki import SERVICE_ACCOUNT_ISSUER, Pki

PAUSE_IMAGE: Final = "registry.k8s.io/pause:3.10.1"
COREDNS_IMAGE: Final = "registry.k8s.io/coredns/coredns:v1.14.7"
"""The node's own images (built by standins.images like the others, never pulled)."""
INTERNAL_API: Final = f"https://127.0.0.1:{API_PORT}"
"""The API server as every component (all inside the node's network) reaches it."""
KUBELET_TUNABLES: Final = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
"""What the kubelet sets these host-wide kernel settings to. The node sees files of ours in
their place holding these values, so the kubelet finds nothing to change on the host."""


def pki(layout: Layout) -> Pki:
    return Pki(layout.certs)


def component_files(layout: Layout) -> dict[str, Path]:
    """The configuration file of each component that reads one."""
    c = layout.config
    return {
        "kubelet": c / "kubelet.yaml",
        "kube-proxy": c / "kube-proxy.yaml",
        "kube-scheduler": c / "kube-scheduler.yaml",
        "containerd": c / "containerd.toml",
        "cni": c / "cni" / "10-local.conflist",
    }


def kubeconfig_path(layout: Layout, user: str) -> Path:
    return layout.config / f"{user}.kubeconfig"


def etcd_flags(layout: Layout) -> list[str]:
    p = pki(layout)
    client = f"https://127.0.0.1:{ETCD_CLIENT_PORT}"
    peer = f"https://127.0.0.1:{ETCD_PEER_PORT}"
    server, key = p.cert("etcd-server"), p.key("etcd-server")
    return [
        "--name=local",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        "--client-cert-auth=true",
        f"--trusted-ca-file={p.ca_cert}",
        f"--cert-file={server}",
        f"--key-file={key}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=local={peer}",
        "--peer-client-cert-auth=true",
        f"--peer-trusted-ca-file={p.ca_cert}",
        f"--peer-cert-file={server}",
        f"--peer-key-file={key}",
        "--listen-metrics-urls=",
        "--unsafe-no-fsync",  # a throwaway cluster: speed over durability
        "--log-level=warn",
    ]


def apiserver_flags(layout: Layout) -> list[str]:
    p = pki(layout)
    return [
        f"--advertise-address={NODE_IP}",  # the `kubernetes` Service's endpoint, for pods
        "--bind-address=0.0.0.0",  # the node's network only: loopback and the node's address
        f"--secure-port={API_PORT}",
        f"--etcd-servers=https://127.0.0.1:{ETCD_CLIENT_PORT}",
        f"--etcd-cafile={p.ca_cert}",
        f"--etcd-certfile={p.cert('apiserver-etcd-client')}",
        f"--etcd-keyfile={p.key('apiserver-etcd-client')}",
        f"--cert-dir={p.dir}",
        f"--tls-cert-file={p.cert('apiserver')}",
        f"--tls-private-key-file={p.key('apiserver')}",
        f"--client-ca-file={p.ca_cert}",
        f"--token-auth-file={p.tokens}",
        # What `kubectl logs` and pods/log need: the API server calls the kubelet.
        f"--kubelet-client-certificate={p.cert('apiserver-kubelet-client')}",
        f"--kubelet-client-key={p.key('apiserver-kubelet-client')}",
        f"--kubelet-certificate-authority={p.ca_cert}",
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={p.sa_pub}",
        f"--service-account-signing-key-file={p.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        "--profiling=false",
    ]


def controller_manager_flags(layout: Layout) -> list[str]:
    p = pki(layout)
    return [
        f"--kubeconfig={kubeconfig_path(layout, 'kube-controller-manager')}",
        "--leader-elect=false",
        "--secure-port=0",  # nothing needs its metrics or health endpoints
        f"--service-account-private-key-file={p.sa_key}",
        f"--root-ca-file={p.ca_cert}",
        "--use-service-account-credentials=true",
        f"--cluster-signing-cert-file={p.ca_cert}",
        f"--cluster-signing-key-file={p.ca_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--profiling=false",
    ]


def scheduler_flags(layout: Layout) -> list[str]:
    return [
        f"--config={component_files(layout)['kube-scheduler']}",
        "--secure-port=0",
        "--profiling=false",
    ]


def scheduler_config(layout: Layout) -> str:
    return _yaml(
        {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig_path(layout, "kube-scheduler"))},
            "leaderElection": {"leaderElect": False},
        }
    )


def containerd_config(layout: Layout, binaries: Binaries) -> str:
    """containerd's images and snapshots under the state directory (kept across restarts);
    its runtime state, runc's and the pods' network namespaces under the node's own /run
    (gone with the node); its socket a file in the state directory, for `ctr` on the host."""
    socket = layout.containerd_socket
    cni = component_files(layout)["cni"].parent
    return f"""version = 3
root = "{layout.containerd_root}"
state = "/run/containerd"
temp = "/run/containerd-tmp"
disabled_plugins = [
  "io.containerd.nri.v1.nri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.differ.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd/opt"

[plugins."io.containerd.image-verifier.v1.bindir"]
  bin_dir = "/var/lib/containerd/image-verifier"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  # Nothing is ever pulled: every image is imported; the sandbox image is pinned.
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{PAUSE_IMAGE}"

[plugins."io.containerd.cri.v1.runtime"]
  # Root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below containerd's.
  restrict_oom_score_adj = true
  cdi_spec_dirs = []
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{binaries["runc"]}"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    use_internal_loopback = true
    bin_dirs = ["{binaries.cni}"]
    conf_dir = "{cni}"
    max_conf_num = 1

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def cni_config() -> str:
    """The pod network: a bridge whose gateway is the node's address (made by the holder
    before any pod exists, and adopted by the plugin), addresses from host-local."""
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "local",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": True,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=1,
    )


def kubelet_config(layout: Layout) -> str:
    p = pki(layout)
    endpoint = f"unix://{layout.containerd_socket}"
    return _yaml(
        {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "tlsCertFile": str(p.cert("kubelet-server")),
            "tlsPrivateKeyFile": str(p.key("kubelet-server")),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(p.ca_cert)},
            },
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": endpoint,
            "imageServiceEndpoint": endpoint,
            # Kept across restarts, as a machine's /var/log is: a finished Job's log is the
            # record of its run. (The rest of the kubelet's files are in the node's /var.)
            "podLogsDir": str(layout.pod_logs),
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{layout.cgroup_name}",
            "cgroupsPerQOS": True,
            "enforceNodeAllocatable": ["pods"],
            "failCgroupV1": False,
            "failSwapOn": False,
            "protectKernelDefaults": False,
            "clusterDNS": [DNS_SERVICE_IP],
            "clusterDomain": CLUSTER_DOMAIN,
            "resolvConf": "",  # pods get the cluster's DNS only: the node has no way out
            "evictionHard": {
                "memory.available": "50Mi",
                "nodefs.available": "1%",
                "nodefs.inodesFree": "1%",
                "imagefs.available": "1%",
                "imagefs.inodesFree": "1%",
            },
            "imageGCHighThresholdPercent": 100,  # images cannot be pulled back: keep them
            "imageGCLowThresholdPercent": 99,
            "localStorageCapacityIsolation": True,
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "shutdownGracePeriod": "0s",
            "serializeImagePulls": False,
            "maxPods": 110,
            "nodeStatusUpdateFrequency": "10s",
        }
    )


def kubelet_flags(layout: Layout) -> list[str]:
    return [
        f"--config={component_files(layout)['kubelet']}",
        f"--kubeconfig={kubeconfig_path(layout, 'kubelet')}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_IP}",
        "--v=1",
    ]


def kube_proxy_config(layout: Layout) -> str:
    return _yaml(
        {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "hostnameOverride": NODE_NAME,
            "clusterCIDR": CLUSTER_CIDR,
            "detectLocalMode": "ClusterCIDR",
            "clientConnection": {"kubeconfig": str(kubeconfig_path(layout, "kube-proxy"))},
            "healthzBindAddress": f"127.0.0.1:{KUBE_PROXY_HEALTH_PORT}",
            "metricsBindAddress": "127.0.0.1:10249",
            "nodePortAddresses": [f"{NODE_IP}/32"],
            "iptables": {"localhostNodePorts": False, "syncPeriod": "10s", "minSyncPeriod": "1s"},
            # Leave the conntrack settings alone: the table size is the host's.
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
        }
    )


def kube_proxy_flags(layout: Layout) -> list[str]:
    return [f"--config={component_files(layout)['kube-proxy']}", "--v=1"]


def _yaml(value: object) -> str:
    return yaml.safe_dump(value, sort_keys=False)


def component_kubeconfig_text(keys: Pki, leaf: str) -> str:
    """A component's kubeconfig: the API server inside the node, the component's certificate."""
    return component_kubeconfig(INTERNAL_API, keys.ca_cert, keys.cert(leaf), keys.key(leaf))
