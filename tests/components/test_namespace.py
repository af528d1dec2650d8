"""The namespace component: created when owned, passed through when not."""

from __future__ import annotations

from collections.abc import Callable

from tests.program import ProgramRun

NAMESPACE = "kubernetes:core/v1:Namespace"


def test_namespace_is_created_with_the_stack_name_and_restricted_pods(
    stack_run: ProgramRun,
) -> None:
    ns = stack_run.one(NAMESPACE).inputs["metadata"]
    assert ns["name"] == stack_run.outputs["namespace"]
    assert ns["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_an_existing_namespace_is_used_not_created(run_stack: Callable[..., ProgramRun]) -> None:
    run = run_stack("dev", config={"createNamespace": "false", "namespace": "shared-db"})
    assert run.of_type(NAMESPACE) == []
    assert run.outputs["namespace"] == "shared-db"
    for resource in run.resources:
        metadata = resource.inputs.get("metadata")
        if resource.custom and isinstance(metadata, dict) and "namespace" in metadata:
            assert metadata["namespace"] == "shared-db"
