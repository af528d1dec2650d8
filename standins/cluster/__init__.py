"""A local Kubernetes control plane and a node agent that runs pods as host processes.

`python -m standins.cluster start` brings up etcd, kube-apiserver, kube-controller-manager and
the node agent on 127.0.0.1, so the program's Kubernetes objects (Jobs above all) can be
deployed and run for real on a machine with no container runtime and no network.
"""
