"""How the tools read a Job's end from its conditions (pure)."""

from __future__ import annotations

from deploy.kube import job_ended


def test_a_job_has_ended_only_by_its_true_condition() -> None:
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    assert job_ended(failed, "Failed")
    assert not job_ended(failed, "Complete")
    suspended = {"status": {"conditions": [{"type": "Failed", "status": "False"}]}}
    assert not job_ended(suspended, "Failed")
    assert not job_ended({"status": {"active": 1}}, "Failed")
    assert not job_ended({}, "Complete")
