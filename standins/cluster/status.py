"""A pod's status as the node agent reports it: container states, conditions, phase.

The agent owns the fields a kubelet owns and nothing else; `apply` writes them into a pod
object just read, so conditions others set (DisruptionTarget, say) are kept.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Final

from standins.cluster.api import Obj, now

HOST_IP: Final = "127.0.0.1"
OWN_CONDITIONS: Final = ("Initialized", "ContainersReady", "Ready")


@dataclass
class ContainerStatus:
    name: str
    image: str
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    restart_count: int = 0
    container_id: str = ""

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def exit_code(self) -> int | None:
        terminated = self.state.get("terminated")
        return None if terminated is None else int(terminated["exitCode"])

    def _retire(self) -> None:
        """A terminated run becomes the last state once the container is restarted."""
        if "terminated" in self.state:
            self.last_state = self.state
            self.restart_count += 1

    def waiting(self, reason: str, message: str = "") -> None:
        self._retire()
        self.state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}

    def start(self, container_id: str) -> None:
        self._retire()
        self.container_id = container_id
        self.state = {"running": {"startedAt": now()}}

    def terminate(self, code: int, reason: str, message: str = "") -> None:
        started = self.state.get("running", {}).get("startedAt") or now()
        terminated: Obj = {
            "exitCode": code,
            "reason": reason,
            "startedAt": started,
            "finishedAt": now(),
        }
        if message:
            terminated["message"] = message
        if self.container_id:
            terminated["containerID"] = self.container_id
        self.state = {"terminated": terminated}

    def to_k8s(self) -> Obj:
        status: Obj = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.running,
            "started": self.running,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


class PodStatus:
    """Thread-safe: container threads update it, one publisher reads it."""

    def __init__(self, init: list[ContainerStatus], main: list[ContainerStatus]) -> None:
        self.lock = threading.Lock()
        self.init = init
        self.main = main
        self.final_phase: str | None = None
        self.reason = ""
        self.message = ""
        self.initialized = not init
        self.start_time = now()
        self._transitions: dict[str, tuple[str, str]] = {}

    @property
    def terminal(self) -> bool:
        return self.final_phase is not None

    @property
    def phase(self) -> str:
        """Pending until the init containers succeeded and a container started, then Running."""
        if self.final_phase is not None:
            return self.final_phase
        started = any(c.running or c.exit_code is not None for c in self.main)
        return "Running" if self.initialized and started else "Pending"

    def container(self, name: str) -> ContainerStatus:
        return next(c for c in [*self.init, *self.main] if c.name == name)

    def finish(self, phase: str, reason: str = "", message: str = "") -> None:
        self.final_phase, self.reason, self.message = phase, reason, message

    def _condition(self, kind: str, ok: bool, reason: str) -> Obj:
        status = "True" if ok else "False"
        previous = self._transitions.get(kind)
        if previous is None or previous[0] != status:
            self._transitions[kind] = (status, now())
        condition: Obj = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": self._transitions[kind][1],
        }
        if not ok and reason:
            condition["reason"] = reason
        return condition

    def apply(self, pod: Obj) -> None:
        """Write the agent's fields into `pod` (a fresh read of it), keeping the rest."""
        ready = bool(self.main) and all(c.running for c in self.main) and not self.terminal
        ours = [
            self._condition("Initialized", self.initialized, "ContainersNotInitialized"),
            self._condition("ContainersReady", ready, "ContainersNotReady"),
            self._condition("Ready", ready, "ContainersNotReady"),
        ]
        status: Obj = pod.setdefault("status", {})
        others = [c for c in status.get("conditions") or [] if c.get("type") not in OWN_CONDITIONS]
        if not any(c.get("type") == "PodScheduled" for c in others):  # the Binding sets it
            others.append(self._condition("PodScheduled", True, ""))
        status["conditions"] = ours + others
        status["phase"] = self.phase
        status["hostIP"] = HOST_IP
        status["hostIPs"] = [{"ip": HOST_IP}]
        status["podIP"] = HOST_IP
        status["podIPs"] = [{"ip": HOST_IP}]
        status["startTime"] = self.start_time
        status["containerStatuses"] = [c.to_k8s() for c in self.main]
        if self.init:
            status["initContainerStatuses"] = [c.to_k8s() for c in self.init]
        for key, value in (("reason", self.reason), ("message", self.message)):
            if value:
                status[key] = value
            else:
                status.pop(key, None)
