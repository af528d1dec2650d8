"""The keys of the database flavors: the Bitnami release and the CloudNativePG cluster (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from components.settings.declarations import (
    DNS_LABEL,
    IMAGE_TAG,
    IN_CLUSTER,
    QUANTITY,
    SEMVER,
    Architecture,
    Flavor,
    check_cluster_name,
    check_cnpg_image,
    check_release_name,
    setting,
)


@dataclass(frozen=True)
class CnpgSettings:
    """The CloudNativePG operator and cluster (databaseFlavor cloudnative-pg)."""

    install_operator: bool = setting(
        "cnpgInstallOperator",
        True,
        "Install the operator chart (false: the cluster already runs the operator). Not "
        "with cnpgBackupMethod barman-cloud: the program installs no Barman Cloud plugin "
        "(nor the cert-manager it needs); the platform installs all three.",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    operator_chart_version: str = setting(
        "cnpgOperatorChartVersion",
        "0.26.1",
        "Pinned version of the cloudnative-pg operator chart.",
        pattern=SEMVER,
        pattern_hint="an exact chart version such as 0.26.1",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    operator_namespace: str = setting(
        "cnpgOperatorNamespace",
        "cnpg-system",
        "Namespace of the operator release.",
        pattern=DNS_LABEL,
        pattern_hint="a DNS label (lower-case letters, digits, '-')",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cluster_name: str = setting(
        "cnpgClusterName",
        "tradestream-pg",
        "Name of the Cluster; its Services are <name>-rw, -ro and -r.",
        pattern=DNS_LABEL,
        pattern_hint="a DNS label (lower-case letters, digits, '-')",
        check=check_cluster_name,
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    instances: int = setting(
        "cnpgInstances",
        3,
        "PostgreSQL instances (one primary, the rest standbys).",
        minimum=1,
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    image: str = setting(
        "cnpgImage",
        "ghcr.io/cloudnative-pg/postgresql:17.6",
        "PostgreSQL operand image; its tag starts with the major version (17.6, 17.6-bookworm).",
        flavors=[Flavor.CLOUDNATIVE_PG],
        check=check_cnpg_image,
    )


@dataclass(frozen=True)
class PostgresSettings:
    """The Bitnami PostgreSQL release; storage and resources size cloudnative-pg too."""

    release_name: str = setting(
        "postgresReleaseName",
        "tradestream-postgresql",
        "Helm release name; the Service is named after it.",
        pattern=DNS_LABEL,
        pattern_hint="a DNS label (lower-case letters, digits, '-')",
        check=check_release_name,
        flavors=[Flavor.BITNAMI],
    )
    chart_repository: str = setting(
        "postgresChartRepository",
        "oci://registry-1.docker.io/bitnamicharts/postgresql",
        "Chart reference of the Bitnami PostgreSQL chart (OCI).",
        flavors=[Flavor.BITNAMI],
    )
    chart_version: str = setting(
        "postgresChartVersion",
        "16.7.27",
        "Pinned Bitnami PostgreSQL chart version.",
        pattern=SEMVER,
        pattern_hint="an exact chart version such as 16.7.27",
        flavors=[Flavor.BITNAMI],
    )
    image_registry: str = setting(
        "postgresImageRegistry",
        "docker.io",
        "Registry of the PostgreSQL image.",
        flavors=[Flavor.BITNAMI],
    )
    image_repository: str = setting(
        "postgresImageRepository",
        "bitnamilegacy/postgresql",
        "Repository of the PostgreSQL image (Bitnami moved versioned images to bitnamilegacy).",
        flavors=[Flavor.BITNAMI],
    )
    image_tag: str = setting(
        "postgresImageTag",
        "17.6.0-debian-12-r4",
        "Pinned tag of the PostgreSQL image.",
        pattern=IMAGE_TAG,
        pattern_hint="an image tag",
        flavors=[Flavor.BITNAMI],
    )
    architecture: Architecture = setting(
        "postgresArchitecture",
        Architecture.STANDALONE,
        "standalone (one primary) or replication (primary plus read replicas).",
        flavors=[Flavor.BITNAMI],
    )
    read_replicas: int = setting(
        "postgresReadReplicas",
        0,
        "Read replicas when postgresArchitecture is replication.",
        minimum=0,
        flavors=[Flavor.BITNAMI],
    )
    storage_size: str = setting(
        "postgresStorageSize",
        "8Gi",
        "Persistent volume size of each PostgreSQL instance.",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 8Gi",
        flavors=IN_CLUSTER,
    )
    storage_class: str = setting(
        "postgresStorageClass",
        "",
        "Storage class; empty uses the cluster's default.",
        flavors=IN_CLUSTER,
    )
    cpu_request: str = setting(
        "postgresCpuRequest",
        "250m",
        "CPU request.",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 250m",
        flavors=IN_CLUSTER,
    )
    memory_request: str = setting(
        "postgresMemoryRequest",
        "512Mi",
        "Memory request.",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 512Mi",
        flavors=IN_CLUSTER,
    )
    cpu_limit: str = setting(
        "postgresCpuLimit",
        "1",
        "CPU limit.",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 1",
        flavors=IN_CLUSTER,
    )
    memory_limit: str = setting(
        "postgresMemoryLimit",
        "1Gi",
        "Memory limit.",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 1Gi",
        flavors=IN_CLUSTER,
    )
    metrics_enabled: bool = setting(
        "postgresMetricsEnabled", False, "Run the Prometheus exporter sidecar.", flavors=IN_CLUSTER
    )
    network_policy_enabled: bool = setting(
        "postgresNetworkPolicyEnabled",
        True,
        "Restrict ingress to PostgreSQL to the instances, the operator and pods labelled "
        "<release or cluster>-client (the Flyway Job carries the label). With "
        "postgresMetricsEnabled, the exporter's port 9187 (and only it) is open to any scraper.",
        flavors=IN_CLUSTER,
    )
    release_timeout_seconds: int = setting(
        "postgresReleaseTimeoutSeconds",
        600,
        "How long Helm waits for the release before rolling back (atomic).",
        minimum=1,
        flavors=IN_CLUSTER,
    )
