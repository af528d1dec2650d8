"""The CloudNativePG Cluster of staging and prod, checked by a real API server against the
operator's own CRD at the version the stacks pin (server-side dry run, strict field
validation). The CRD comes from the operator's Go module at test time; nothing is committed.
"""

from __future__ import annotations

from typing import Any

import pytest

from standins.cluster.api import ApiError, Client
from tests.engine.conftest import install_crd
from tests.program import run_program, stack_config

pytestmark = pytest.mark.engine

CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
OPERATOR_MODULE = "github.com/cloudnative-pg/cloudnative-pg"
OPERATOR_FOR_CHART = {"0.26.1": "1.27.1"}
"""The operator release (appVersion) of each chart version the stacks may pin."""
CRD_PATH = "config/crd/bases/postgresql.cnpg.io_clusters.yaml"


def pinned_operator() -> str:
    charts = {
        stack_config(stack).get("tradestream-database:cnpgOperatorChartVersion", "0.26.1")
        for stack in ("staging", "prod")
    }
    unknown = charts - OPERATOR_FOR_CHART.keys()
    assert not unknown, f"add the operator version of chart {unknown} to OPERATOR_FOR_CHART"
    [operator] = {OPERATOR_FOR_CHART[chart] for chart in charts}
    return operator


@pytest.fixture(scope="module")
def cluster_crd(kube: Client) -> dict[str, Any]:
    return install_crd(kube, OPERATOR_MODULE, pinned_operator(), CRD_PATH)


def integral(value: Any) -> Any:
    """Numbers as the engine sends them: 2, not the 2.0 that mocks record."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [integral(item) for item in value]
    return value


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_declared_cluster_passes_the_operators_crd(
    kube: Client, cluster_crd: dict[str, Any], stack: str
) -> None:
    run = run_program(stack)
    cluster = integral(run.one(CLUSTER).inputs)
    namespace = cluster["metadata"]["namespace"]
    if kube.get_or_none(f"/api/v1/namespaces/{namespace}") is None:
        kube.post("/api/v1/namespaces", {"metadata": {"name": namespace}})
    path = f"/apis/postgresql.cnpg.io/v1/namespaces/{namespace}/clusters"
    try:
        accepted = kube.post(f"{path}?dryRun=All&fieldValidation=Strict", cluster)
    except ApiError as error:
        pytest.fail(f"the API server refused {stack}'s Cluster: {error}")
    assert accepted["spec"]["instances"] == cluster["spec"]["instances"]
    # The roles the operator creates, every attribute explicit, as the CRD keeps them.
    assert accepted["spec"]["managed"]["roles"] == cluster["spec"]["managed"]["roles"]
    assert [role["name"] for role in accepted["spec"]["managed"]["roles"]] == [
        "tradestream_migrator",
        "tradestream_app",
        "tradestream_readonly",
    ]
    assert kube.get_or_none(f"{path}/{cluster['metadata']['name']}") is None  # a dry run


@pytest.mark.parametrize(
    ("attribute", "value", "word"),
    [("createDB", False, "createDB"), ("passwordSecret", {"secretName": "x"}, "secretName")],
)
def test_a_managed_role_attribute_the_operator_does_not_know_is_refused(
    kube: Client, cluster_crd: dict[str, Any], attribute: str, value: Any, word: str
) -> None:
    """Strict validation reaches into the managed roles: a misspelling cannot pass silently."""
    cluster = integral(run_program("staging").one(CLUSTER).inputs)
    cluster["spec"]["managed"]["roles"][0][attribute] = value
    namespace = ensure_namespace(kube, cluster["metadata"]["namespace"])
    with pytest.raises(
        ApiError, match="secretName" if attribute == "passwordSecret" else attribute
    ):
        kube.post(
            f"/apis/postgresql.cnpg.io/v1/namespaces/{namespace}/clusters"
            "?dryRun=All&fieldValidation=Strict",
            cluster,
        )


def ensure_namespace(kube: Client, name: str, labels: dict[str, str] | None = None) -> str:
    if kube.get_or_none(f"/api/v1/namespaces/{name}") is None:
        kube.post("/api/v1/namespaces", {"metadata": {"name": name, "labels": labels or {}}})
    return name


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_grants_job_and_the_role_secrets_pass_the_api_server(kube: Client, stack: str) -> None:
    """The in-cluster grants Job, its script and the roles' Secrets, strictly validated; its
    pod also passes the `restricted` Pod Security level the program's namespace enforces."""
    run = run_program(stack)
    namespace = ensure_namespace(
        kube, f"{stack}-grants", {"pod-security.kubernetes.io/enforce": "restricted"}
    )
    job = integral(run.grants_job().inputs)
    [config_map] = run.under("tradestream:database:RoleGrants", "kubernetes:core/v1:ConfigMap")
    secrets = run.of_type("kubernetes:core/v1:Secret")
    objects = [
        ("batch/v1", "Job", "jobs", job, run.grants_job().outputs["metadata"]["name"]),
        ("v1", "ConfigMap", "configmaps", integral(config_map.inputs), "grants-sql"),
        *(("v1", "Secret", "secrets", integral(s.inputs), None) for s in secrets),
    ]
    for api_version, kind, plural, body, name in objects:
        metadata = {**body["metadata"], "namespace": namespace}
        if name is not None:
            metadata["name"] = name
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            kube.post(
                f"{base}/namespaces/{namespace}/{plural}?dryRun=All&fieldValidation=Strict",
                {**body, "apiVersion": api_version, "kind": kind, "metadata": metadata},
            )
        except ApiError as error:
            pytest.fail(f"the API server refused {stack}'s {kind}: {error}")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "grants", "namespace": namespace},
        "spec": job["spec"]["template"]["spec"],
    }
    pods = f"/api/v1/namespaces/{namespace}/pods?dryRun=All&fieldValidation=Strict"
    try:
        kube.post(pods, pod)
    except ApiError as error:
        pytest.fail(f"the grants pod does not pass the restricted level: {error}")
    # The level is enforced here: the same pod keeping its capabilities is refused.
    del pod["spec"]["containers"][0]["securityContext"]["capabilities"]
    with pytest.raises(ApiError, match="restricted"):
        kube.post(pods, pod)


def test_a_field_the_operator_does_not_know_is_refused(
    kube: Client, cluster_crd: dict[str, Any]
) -> None:
    cluster = integral(run_program("staging").one(CLUSTER).inputs)
    cluster["spec"]["instancez"] = 2
    namespace = cluster["metadata"]["namespace"]
    if kube.get_or_none(f"/api/v1/namespaces/{namespace}") is None:
        kube.post("/api/v1/namespaces", {"metadata": {"name": namespace}})
    with pytest.raises(ApiError, match="instancez"):
        kube.post(
            f"/apis/postgresql.cnpg.io/v1/namespaces/{namespace}/clusters"
            "?dryRun=All&fieldValidation=Strict",
            cluster,
        )


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_instances_network_policy_passes_the_api_server(kube: Client, stack: str) -> None:
    policy = integral(
        run_program(stack).one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs
    )
    namespace = policy["metadata"]["namespace"]
    if kube.get_or_none(f"/api/v1/namespaces/{namespace}") is None:
        kube.post("/api/v1/namespaces", {"metadata": {"name": namespace}})
    path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"
    accepted = kube.post(
        f"{path}?dryRun=All&fieldValidation=Strict",
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", **policy},
    )
    assert accepted["spec"]["ingress"] == policy["spec"]["ingress"]


ARN = "arn:aws:iam::123456789012:role/tradestream-backups"
GCP_ACCOUNT = "backups@tradestream-staging.iam.gserviceaccount.com"


@pytest.mark.parametrize(
    ("config", "annotation"),
    [
        (
            {"cnpgBackupCredentials": "iam-role", "cnpgBackupIamRoleArn": ARN},
            {"eks.amazonaws.com/role-arn": ARN},
        ),
        (
            {
                "cnpgBackupDestinationPath": "gs://tradestream-database-backups/staging",
                "cnpgBackupCredentials": "workload-identity",
                "cnpgBackupGcpServiceAccount": GCP_ACCOUNT,
            },
            {"iam.gke.io/gcp-service-account": GCP_ACCOUNT},
        ),
    ],
    ids=["irsa", "workload-identity"],
)
def test_the_instances_service_account_annotation_passes_the_crd(
    kube: Client, cluster_crd: dict[str, Any], config: dict[str, str], annotation: dict[str, str]
) -> None:
    cluster = integral(run_program("staging", config=config).one(CLUSTER).inputs)
    namespace = ensure_namespace(kube, cluster["metadata"]["namespace"])
    accepted = kube.post(
        f"/apis/postgresql.cnpg.io/v1/namespaces/{namespace}/clusters"
        "?dryRun=All&fieldValidation=Strict",
        cluster,
    )
    assert accepted["spec"]["serviceAccountTemplate"]["metadata"]["annotations"] == annotation
