"""A local Kubernetes cluster on this machine: a control plane and a real node.

`python -m standins.cluster start` runs etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, containerd with runc, the kubelet, kube-proxy, a CNI bridge network and
CoreDNS, all built from the Go module proxy (scripts/install-engine.sh), in network and
mount namespaces of the node's own, so several clusters coexist and `stop` leaves nothing
behind on the host. The images it runs are built here (standins.images) and imported.
"""
