"""What a cluster has beside its components: CoreDNS (as kubeadm deploys it) and the default
StorageClass served by the provisioner (pure: the objects, created by the starter).

CoreDNS answers for cluster.local only: the node has no route off the machine, so there is
nothing to forward other names to. It listens on 1053 in its pod and its Service maps 53
to it: a non-root process without capabilities cannot bind 53.
"""

from __future__ import annotations

from typing import Final

from standins.cluster.api import Obj
from standins.cluster.config import COREDNS_IMAGE
from standins.cluster.layout import CLUSTER_DOMAIN, DNS_SERVICE_IP, STORAGE_CLASS
from standins.cluster.provisioner import PROVISIONER

NAMESPACE: Final = "kube-system"
LABELS: Final = {"k8s-app": "kube-dns"}
COREFILE: Final = f""".:1053 {{
    errors
    health {{
        lameduck 5s
    }}
    ready
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
    loop
    reload
    loadbalance
}}
"""


def _meta(name: str, namespace: str | None = NAMESPACE, **extra: object) -> Obj:
    meta: Obj = {"name": name, **extra}
    if namespace:
        meta["namespace"] = namespace
    return meta


def coredns_deployment() -> Obj:
    container = {
        "name": "coredns",
        "image": COREDNS_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": ["-conf", "/etc/coredns/Corefile"],
        "resources": {"requests": {"cpu": "50m", "memory": "70Mi"}, "limits": {"memory": "170Mi"}},
        "ports": [
            {"name": "dns", "containerPort": 1053, "protocol": "UDP"},
            {"name": "dns-tcp", "containerPort": 1053, "protocol": "TCP"},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": 8080},
            "initialDelaySeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 5,
        },
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta("coredns", labels=LABELS),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": LABELS},
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": "coredns",
                    "dnsPolicy": "Default",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "config",
                            "configMap": {
                                "name": "coredns",
                                "items": [{"key": "Corefile", "path": "Corefile"}],
                            },
                        }
                    ],
                },
            },
        },
    }


def objects() -> list[tuple[str, Obj]]:
    """(collection, object) in the order they are created."""
    core = f"/api/v1/namespaces/{NAMESPACE}"
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    return [
        (f"{core}/serviceaccounts", {"metadata": _meta("coredns")}),
        (
            f"{rbac}/clusterroles",
            {
                "metadata": _meta("system:coredns", None),
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["endpoints", "services", "pods", "namespaces"],
                        "verbs": ["list", "watch"],
                    },
                    {
                        "apiGroups": ["discovery.k8s.io"],
                        "resources": ["endpointslices"],
                        "verbs": ["list", "watch"],
                    },
                ],
            },
        ),
        (
            f"{rbac}/clusterrolebindings",
            {
                "metadata": _meta("system:coredns", None),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "system:coredns",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": NAMESPACE}],
            },
        ),
        (f"{core}/configmaps", {"metadata": _meta("coredns"), "data": {"Corefile": COREFILE}}),
        (f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", coredns_deployment()),
        (
            f"{core}/services",
            {
                "metadata": _meta("kube-dns", labels={**LABELS, "kubernetes.io/name": "CoreDNS"}),
                "spec": {
                    "selector": LABELS,
                    "clusterIP": DNS_SERVICE_IP,
                    "ports": [
                        {"name": "dns", "port": 53, "targetPort": 1053, "protocol": "UDP"},
                        {"name": "dns-tcp", "port": 53, "targetPort": 1053, "protocol": "TCP"},
                    ],
                },
            },
        ),
        (
            "/apis/storage.k8s.io/v1/storageclasses",
            {
                "metadata": _meta(
                    STORAGE_CLASS,
                    None,
                    annotations={"storageclass.kubernetes.io/is-default-class": "true"},
                ),
                "provisioner": PROVISIONER,
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "WaitForFirstConsumer",
            },
        ),
    ]
