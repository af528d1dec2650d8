"""The node's dynamic volume provisioner, for its default StorageClass (as rancher's
local-path-provisioner does, without helper pods).

For every PersistentVolumeClaim of the class that is Pending with no volume, once the
scheduler has picked the node (the class binds on first use), it makes a directory under
the state directory's volumes/ and a `local` PersistentVolume for it, pre-bound to the claim
and pinned to the node; the PV controller completes the binding. `local`, not `hostPath`:
the kubelet applies a pod's fsGroup to local volumes. A released volume whose reclaim
policy is Delete is deleted with its directory. Polls the API server every two seconds.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Final

from standins.cluster.api import ApiError, Client, Obj
from standins.cluster.layout import NODE_NAME, STORAGE_CLASS, Layout

PROVISIONER: Final = "localcluster.local/path"
POLL: Final = 2.0


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} provisioner: {message}", flush=True)


def volume_for(claim: Obj, storage_class: Obj, root: Path) -> Obj:
    """The PersistentVolume that serves `claim` (pure)."""
    meta, spec = claim["metadata"], claim["spec"]
    name = f"pvc-{meta['uid']}"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy", "Delete"),
            "storageClassName": storage_class["metadata"]["name"],
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "local": {"path": str(root / name)},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [NODE_NAME],
                                }
                            ]
                        }
                    ]
                }
            },
        },
    }


def reconcile(api: Client, root: Path) -> None:
    classes = {
        sc["metadata"]["name"]: sc
        for sc in api.get("/apis/storage.k8s.io/v1/storageclasses")["items"]
        if sc.get("provisioner") == PROVISIONER
    }
    for claim in api.get("/api/v1/persistentvolumeclaims")["items"]:
        spec = claim["spec"]
        storage_class = classes.get(spec.get("storageClassName") or "")
        if storage_class is None or spec.get("volumeName"):
            continue
        if claim.get("status", {}).get("phase") != "Pending":
            continue
        selected = (claim["metadata"].get("annotations") or {}).get(
            "volume.kubernetes.io/selected-node"
        )
        if storage_class.get("volumeBindingMode") == "WaitForFirstConsumer" and not selected:
            continue
        volume = volume_for(claim, storage_class, root)
        path = Path(volume["spec"]["local"]["path"])
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)  # the pod's fsGroup narrows it on first use
        if api.create_if_missing("/api/v1/persistentvolumes", volume):
            meta = claim["metadata"]
            _log(f"provisioned {path.name} for {meta['namespace']}/{meta['name']}")
    for volume in api.get("/api/v1/persistentvolumes")["items"]:
        annotations = volume["metadata"].get("annotations") or {}
        if annotations.get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
            continue
        released = volume.get("status", {}).get("phase") in ("Released", "Failed")
        if released and volume["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
            path = Path(volume["spec"].get("local", {}).get("path", ""))
            if path.parent == root:
                shutil.rmtree(path, ignore_errors=True)
            api.delete(f"/api/v1/persistentvolumes/{volume['metadata']['name']}")
            _log(f"deleted released {volume['metadata']['name']} and its directory")


def serve(layout: Layout, api: Client) -> int:
    root = layout.volumes
    root.mkdir(parents=True, exist_ok=True)
    _log(f"serving class {STORAGE_CLASS} ({PROVISIONER}); volumes under {root}")
    while True:
        try:
            reconcile(api, root)
        except (ApiError, OSError, KeyError) as error:  # the API server may be restarting
            _log(f"error: {error}")
        time.sleep(POLL)
