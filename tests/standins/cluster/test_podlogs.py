"""Kept logs are per pod uid; a pod's or a Job's name means its newest pod."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from standins.cluster.layout import Layout
from standins.cluster.podlogs import LogsNotFoundError, job_logs, pod_logs
from standins.cluster.pods import POD_RECORD

NS = "ns"


def keep(
    layout: Layout,
    pod: str,
    uid: str,
    created: str,
    logs: dict[str, str],
    *,
    labels: dict[str, str] | None = None,
) -> None:
    """What the agent keeps for one pod: its record and its containers' logs."""
    run = layout.pod_logs(NS, pod, uid)
    run.mkdir(parents=True)
    record = {
        "uid": uid,
        "labels": labels or {},
        "creationTimestamp": created,
        "containers": list(logs),
    }
    (run / POD_RECORD).write_text(json.dumps(record))
    for container, text in logs.items():
        layout.container_log(NS, pod, uid, container).write_text(text)


def test_a_recreated_pod_has_a_log_of_its_own_and_its_name_means_the_newest(
    tmp_path: Path,
) -> None:
    layout = Layout(tmp_path)
    keep(layout, "p", "uid-new", "2026-12-03T01:00:05Z", {"c": "second pod\n"})
    keep(layout, "p", "uid-old", "2026-12-03T01:00:00Z", {"c": "first pod\n"})
    assert pod_logs(layout, NS, "p") == "second pod\n"
    assert pod_logs(layout, NS, "p", "c") == "second pod\n"
    assert pod_logs(layout, NS, "p", uid="uid-old") == "first pod\n"
    with pytest.raises(LogsNotFoundError, match="container 'd'"):
        pod_logs(layout, NS, "p", "d")
    with pytest.raises(LogsNotFoundError, match="pod ns/q"):
        pod_logs(layout, NS, "q")


def test_all_containers_init_first_with_headers(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    keep(layout, "p", "u", "2026-12-03T01:00:00Z", {"setup": "one\n", "app": "two\n"})
    assert pod_logs(layout, NS, "p") == "==> setup <==\none\n==> app <==\ntwo\n"


def test_logs_kept_by_name_only_still_count_as_one_pod(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    legacy = layout.logs / NS / "p"
    legacy.mkdir(parents=True)
    (legacy / POD_RECORD).write_text(
        json.dumps({"uid": "uid-legacy", "creationTimestamp": "2026-12-03T01:00:00Z"})
    )
    (legacy / "c.log").write_text("legacy\n")
    assert pod_logs(layout, NS, "p") == "legacy\n"
    keep(layout, "p", "uid-new", "2026-12-03T02:00:00Z", {"c": "new\n"})
    assert pod_logs(layout, NS, "p") == "new\n"
    assert pod_logs(layout, NS, "p", uid="uid-legacy") == "legacy\n"


def test_a_jobs_newest_pod_is_found_in_the_records_without_the_api(tmp_path: Path) -> None:
    layout = Layout(tmp_path)  # no kubeconfig: the API cannot be asked
    job = {"job-name": "migrate"}
    keep(layout, "migrate-aaaaa", "u1", "2026-12-03T01:00:00Z", {"c": "try 1\n"}, labels=job)
    keep(layout, "migrate-bbbbb", "u2", "2026-12-03T01:00:09Z", {"c": "try 2\n"}, labels=job)
    keep(
        layout,
        "other-ccccc",
        "u3",
        "2026-12-03T01:00:30Z",
        {"c": "other\n"},
        labels={"job-name": "x"},
    )
    assert job_logs(layout, NS, "migrate") == ("migrate-bbbbb", "try 2\n")
    with pytest.raises(LogsNotFoundError, match="no pod of Job ns/nothing"):
        job_logs(layout, NS, "nothing")
