"""The pod status the agent writes: phase, container states, and conditions it owns."""

from __future__ import annotations

from typing import Any

from standins.cluster.status import ContainerStatus, PodStatus


def test_phase_follows_init_containers_then_containers() -> None:
    status = PodStatus(
        [ContainerStatus("init", "postgres:17")], [ContainerStatus("main", "postgres:17")]
    )
    assert status.phase == "Pending"
    status.init[0].start("id-1")
    status.init[0].terminate(0, "Completed")
    status.initialized = True
    assert status.phase == "Pending"
    status.main[0].start("id-2")
    assert status.phase == "Running"
    status.main[0].terminate(3, "Error")
    status.finish("Failed")
    assert status.phase == "Failed"
    assert status.main[0].exit_code == 3


def test_a_restart_keeps_the_last_state_and_counts() -> None:
    container = ContainerStatus("c", "postgres:17")
    container.start("a")
    container.terminate(1, "Error")
    container.start("b")
    k8s = container.to_k8s()
    assert k8s["restartCount"] == 1
    assert k8s["lastState"]["terminated"]["exitCode"] == 1
    assert "running" in k8s["state"]
    assert k8s["ready"] is True


def test_apply_keeps_conditions_set_by_others_and_the_binding() -> None:
    pod: dict[str, Any] = {
        "status": {
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "T0"},
                {"type": "DisruptionTarget", "status": "True"},
                {"type": "Ready", "status": "Unknown"},
            ]
        }
    }
    status = PodStatus([], [ContainerStatus("c", "postgres:17")])
    status.main[0].start("x")
    status.apply(pod)
    conditions = {c["type"]: c for c in pod["status"]["conditions"]}
    assert conditions["PodScheduled"]["lastTransitionTime"] == "T0"
    assert conditions["DisruptionTarget"]["status"] == "True"
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Initialized"]["status"] == "True"
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["podIP"] == "127.0.0.1"
