"""The CloudNativePG operator release, `Cluster` and backups, as plain data (pure)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from components.alert_rules import AlertRule, selector
from components.contract import (
    AdminAccess,
    ClusterTarget,
    DatabaseEndpoint,
    InClusterAdmin,
    ManagedRole,
    ServerAddress,
    Traits,
)
from components.database.bitnami_spec import resources
from components.settings import (
    BackupSettings,
    CnpgBackupCredentials,
    CnpgBackupMethod,
    CnpgSettings,
    DatabaseSettings,
    PostgresSettings,
    Settings,
)

if TYPE_CHECKING:
    import pulumi

OPERATOR_CHART: Final = "cloudnative-pg"
OPERATOR_REPOSITORY: Final = "https://cloudnative-pg.github.io/charts"
API_VERSION: Final = "postgresql.cnpg.io/v1"
PORT: Final = 5432
SUPERUSER: Final = "postgres"
STATUS_PORT: Final = 8000
"""The instance manager's port, which the operator polls."""
METRICS_PORT: Final = 9187
"""The instances' exporter port (named `metrics`), which the PodMonitor scrapes."""
OPERATOR_NAME: Final = "cloudnative-pg"
"""The operator pods' `app.kubernetes.io/name`, as its chart labels them."""
APP_PASSWORD_KEY: Final = "password"  # noqa: S105 (a key of the operator's Secret)
SUPERUSER_PASSWORD_KEY: Final = "password"  # noqa: S105 (a key of the superuser's Secret)


BARMAN_PLUGIN: Final = "barman-cloud.cloudnative-pg.io"
IRSA_ANNOTATION: Final = "eks.amazonaws.com/role-arn"
GKE_ANNOTATION: Final = "iam.gke.io/gcp-service-account"
ACCESS_KEY_ID: Final = "ACCESS_KEY_ID"
"""The keys of the object store's credentials Secret, as the plugin is told to read them."""
ACCESS_SECRET_KEY: Final = "ACCESS_SECRET_KEY"  # noqa: S105 (a key's name)
OBJECT_STORE_API: Final = "barmancloud.cnpg.io/v1"


def traits(settings: Settings) -> Traits:
    method = settings.backup.cnpg_method.value
    timeout = settings.postgres.release_timeout_seconds
    return Traits(
        holds_data=True,
        owner=settings.database.owner,
        record_key="cnpgClusterName",
        record_name=settings.cnpg.cluster_name,
        backup=f"a CloudNativePG Backup ({method}) is taken",
        waits=(
            *(
                (("the operator chart (postgresReleaseTimeoutSeconds)", timeout),)
                if settings.cnpg.install_operator
                else ()
            ),
            ("the Cluster (postgresReleaseTimeoutSeconds)", timeout),
        ),
        alerts=alerts(settings),
        recovered_from=settings.backup.cnpg_recover_from,
    )


PLUGIN_METRICS: Final = BARMAN_PLUGIN.replace(".", "_").replace("-", "_")
"""The prefix of the Barman Cloud plugin's metrics, which the instances' exporter serves."""


def alerts(settings: Settings) -> tuple[AlertRule, ...]:
    """WAL archiving (barman-cloud) and the newest base backup's age, from the instances'
    exporter: the default queries' `pg_stat_archiver` (reported by the primary), and the
    backup timestamps of the plugin (barman-cloud) or of the operator (volume snapshots;
    CloudNativePG 1.26 deprecated its own for plugins, which report theirs). None where the
    cluster takes no backups: the settings refuse alerts there."""
    backup, cnpg, namespace = settings.backup, settings.cnpg, settings.namespace
    archive = cluster_backup(backup, cnpg.cluster_name)
    if archive is None:
        return ()
    instances = selector(namespace=namespace, pod=f"~{cnpg.cluster_name}-[0-9]+")
    rules = []
    if archive.object_store is not None:
        archiver = "cnpg_pg_stat_archiver"
        rules.append(
            AlertRule(
                alert="PostgresWalArchivingFailing",
                expr=(
                    f"increase({archiver}_failed_count{instances}[5m]) > 0 and "
                    f"{archiver}_last_failed_time{instances} > "
                    f"{archiver}_last_archived_time{instances}"
                ),
                for_minutes=settings.alerts.archive_failing_minutes,
                severity="critical",
                summary=f"WAL archiving of {cnpg.cluster_name} is failing in {namespace}",
                description=(
                    "{{ $labels.pod }} has failed to archive WAL to the object store for "
                    f"{settings.alerts.archive_failing_minutes} minutes, with nothing archived "
                    "since: point-in-time recovery stops at the last archived file, and WAL "
                    "piles up on the instance's volume until it is full. Read the plugin "
                    "sidecar's log and the ObjectStore's credentials and path."
                ),
            )
        )
        timestamp = f"{PLUGIN_METRICS}_last_available_backup_timestamp"
    else:
        timestamp = "cnpg_collector_last_available_backup_timestamp"
    hours = settings.alerts.backup_max_age_hours
    rules.append(
        AlertRule(
            alert="PostgresBackupTooOld",
            expr=f"time() - max by (namespace) ({timestamp}{instances}) > {hours * 3600}",
            severity="critical",
            summary=f"The newest backup of {cnpg.cluster_name} is older than {hours}h",
            description=(
                f"No base backup of {cnpg.cluster_name} in {namespace} completed in the last "
                f"{hours} hours (or none ever did): the ScheduledBackup is not running or its "
                "Backups fail (`kubectl get backups -n "
                f"{namespace}`). Recovery replays all WAL since the newest one."
            ),
        )
    )
    return tuple(rules)


def read_only_host(cnpg: CnpgSettings, namespace: str) -> str:
    """The `-ro` Service: the standbys (the primary answers it too while there are none)."""
    return f"{cnpg.cluster_name}-ro.{namespace}.svc.cluster.local"


def app_secret_name(cnpg: CnpgSettings) -> str:
    """The Secret the operator creates for the owner (`username`, `password`, ...)."""
    return f"{cnpg.cluster_name}-app"


def superuser_secret_name(cnpg: CnpgSettings) -> str:
    return f"{cnpg.cluster_name}-superuser-credentials"


def ca_secret_name(cnpg: CnpgSettings) -> str:
    """The operator's CA for the cluster: it signs the server certificate, whose names
    include `<cluster>-rw.<namespace>.svc.cluster.local`."""
    return f"{cnpg.cluster_name}-ca"


def address(cnpg: CnpgSettings, db: DatabaseSettings, namespace: str) -> ServerAddress:
    """The `-rw` Service always points at the current primary, across failovers. Clients
    verify its certificate against the cluster's own CA."""
    host = f"{cnpg.cluster_name}-rw.{namespace}.svc.cluster.local"
    return ServerAddress(host=host, port=PORT, database=db.name, ca_secret=ca_secret_name(cnpg))


def endpoint(cnpg: CnpgSettings, db: DatabaseSettings, namespace: str) -> DatabaseEndpoint:
    return DatabaseEndpoint(
        address=address(cnpg, db, namespace),
        username=db.owner,
        secret_name=app_secret_name(cnpg),
        password_key=APP_PASSWORD_KEY,
    )


def cluster_spec(
    cnpg: CnpgSettings,
    pg: PostgresSettings,
    db: DatabaseSettings,
    *,
    superuser_secret: str | None,
    managed_roles: list[dict[str, Any]] | None = None,
    backup: BackupSettings,
) -> dict[str, Any]:
    """The `Cluster` spec. Superuser access is on only when roles are managed with it."""
    storage: dict[str, Any] = {"size": pg.storage_size}
    if pg.storage_class:
        storage["storageClass"] = pg.storage_class
    spec: dict[str, Any] = {
        "instances": cnpg.instances,
        "imageName": cnpg.image,
        "storage": storage,
        "resources": resources(pg),
        **bootstrap(backup, db, cnpg.cluster_name),
        "enableSuperuserAccess": superuser_secret is not None,
    }
    if superuser_secret is not None:
        spec["superuserSecret"] = {"name": superuser_secret}
    if managed_roles:
        spec["managed"] = {"roles": managed_roles}
    return spec


RECOVERY_SOURCE: Final = "origin"
"""The `externalClusters` entry a recovered Cluster reads its origin's backups from."""


def postgres_time(moment: str) -> str:
    """A recovery target in PostgreSQL's own form, with a numeric offset. The operator 1.27
    rewrites an RFC 3339 time in UTC to `... .000000Z`, which PostgreSQL refuses at startup
    (time zone abbreviations are not loaded yet) and the recovery fails; a time in this form
    is passed on as it is."""
    return datetime.datetime.fromisoformat(moment).isoformat(sep=" ")


def bootstrap(backup: BackupSettings, db: DatabaseSettings, cluster_name: str) -> dict[str, Any]:
    """How the operator makes the Cluster's first instance: an empty database (`initdb`),
    or with `cnpgRecoverFrom` the origin's newest base backup before the target and its WAL
    replayed up to `cnpgRecoveryTargetTime`, read from the same store through this Cluster's
    own ObjectStore (one folder per incarnation: the origin's is only read). The operator
    reads it only when it creates the Cluster. `database` and `owner` name the same
    database and role as `initdb`, so the operator's `-app` Secret is the same."""
    if not backup.cnpg_recover_from:
        return {"bootstrap": {"initdb": {"database": db.name, "owner": db.owner}}}
    recovery: dict[str, Any] = {"source": RECOVERY_SOURCE, "database": db.name, "owner": db.owner}
    if backup.cnpg_recovery_target_time:
        recovery["recoveryTarget"] = {"targetTime": postgres_time(backup.cnpg_recovery_target_time)}
    origin = {
        "name": RECOVERY_SOURCE,
        "plugin": {
            "name": BARMAN_PLUGIN,
            "parameters": {
                "barmanObjectName": object_store_name(cluster_name),
                "serverName": backup.cnpg_recover_from,
            },
        },
    }
    return {"bootstrap": {"recovery": recovery}, "externalClusters": [origin]}


def managed_roles(roles: Sequence[ManagedRole]) -> list[dict[str, Any]]:
    """The roles as the operator's declarative managed roles.

    Every attribute is explicit, so the operator reverts any change made in the database;
    passwords come from each role's credentials Secret. A role dropped from this list is
    left in the database as it is (the operator ignores roles it does not manage)."""
    return [
        {
            "name": role.name,
            "ensure": "present",
            "login": True,
            "superuser": False,
            "createdb": False,
            "createrole": False,
            "replication": False,
            "bypassrls": False,
            "inherit": True,
            "connectionLimit": -1,
            "inRoles": sorted(role.member_of),
            "passwordSecret": {"name": role.secret_name},
        }
        for role in roles
    ]


def pod_monitor(cnpg: CnpgSettings, namespace: str) -> dict[str, Any]:
    """A Prometheus PodMonitor for the instances' exporter port. The operator's own
    `monitoring.enablePodMonitor` is deprecated since CloudNativePG 1.26, which advises
    managing the PodMonitor directly."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": cnpg.cluster_name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"cnpg.io/cluster": cnpg.cluster_name}},
            "podMetricsEndpoints": [{"port": "metrics"}],
        },
    }


def client_label(cnpg: CnpgSettings) -> dict[str, str]:
    """The label a pod needs to reach the instances through the NetworkPolicy below."""
    return {f"{cnpg.cluster_name}-client": "true"}


def network_policy(cnpg: CnpgSettings, namespace: str, *, metrics: bool) -> dict[str, Any]:
    """Ingress to the instances from exactly what must reach them: the other instances
    (replication), pods with the client label (the Flyway Job, applications), the
    operator in its namespace (status and management) and, with `metrics`, any scraper on
    the exporter's port alone (where Prometheus runs differs per cluster; the port serves
    nothing but metrics)."""
    instances = {"matchLabels": {"cnpg.io/cluster": cnpg.cluster_name}}
    clients = {"matchLabels": client_label(cnpg)}
    postgres, status = {"protocol": "TCP", "port": PORT}, {"protocol": "TCP", "port": STATUS_PORT}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{cnpg.cluster_name}-ingress", "namespace": namespace},
        "spec": {
            "podSelector": instances,
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": instances}], "ports": [postgres, status]},
                {
                    "from": [{"podSelector": clients}],
                    "ports": [postgres],
                },
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {
                                    "kubernetes.io/metadata.name": cnpg.operator_namespace
                                }
                            },
                            "podSelector": {
                                "matchLabels": {"app.kubernetes.io/name": OPERATOR_NAME}
                            },
                        }
                    ],
                    "ports": [postgres, status],
                },
                *([{"ports": [{"protocol": "TCP", "port": METRICS_PORT}]}] if metrics else []),
            ],
        },
    }


@dataclass(frozen=True)
class ClusterBackup:
    """The parts of a CloudNativePG Cluster and its neighbours that make backups possible."""

    cluster: dict[str, Any]
    """Merged into the Cluster spec (`plugins` or `backup`, and the service account's
    annotations)."""
    object_store: dict[str, Any] | None
    """The Barman Cloud plugin's ObjectStore (spec only), when that is the method."""
    credentials_secret: str | None = None
    """The Secret of the object store's access keys the program makes (access-keys)."""


def object_store_name(cluster_name: str) -> str:
    return f"{cluster_name}-backups"


def credentials_secret_name(cluster_name: str) -> str:
    """The Secret the program makes from the stack's access keys (access-keys)."""
    return f"{cluster_name}-backup-credentials"


def store_credentials(backup: BackupSettings, cluster_name: str) -> dict[str, Any]:
    """The ObjectStore configuration's credentials: the plugin picks the cloud by which of
    them is given (`s3Credentials`: S3, `googleCredentials`: Google Cloud Storage)."""
    mode = backup.cnpg_credentials
    if mode is CnpgBackupCredentials.WORKLOAD_IDENTITY:
        return {"googleCredentials": {"gkeEnvironment": True}}
    if mode is CnpgBackupCredentials.IAM_ROLE:
        return {"s3Credentials": {"inheritFromIAMRole": True}}
    secret = (
        credentials_secret_name(cluster_name)
        if mode is CnpgBackupCredentials.ACCESS_KEYS
        else backup.cnpg_credentials_secret
    )
    return {
        "s3Credentials": {
            "accessKeyId": {"name": secret, "key": ACCESS_KEY_ID},
            "secretAccessKey": {"name": secret, "key": ACCESS_SECRET_KEY},
        }
    }


def service_account_template(backup: BackupSettings) -> dict[str, Any]:
    """The instances' service account annotation that lends it a cloud identity: the
    plugin's sidecar runs in the instance pods, under that account. IRSA (EKS) for
    iam-role with a role ARN, Workload Identity (GKE) for workload-identity with a Google
    service account; {} otherwise."""
    mode = backup.cnpg_credentials
    annotations = (
        {IRSA_ANNOTATION: backup.cnpg_iam_role_arn}
        if mode is CnpgBackupCredentials.IAM_ROLE and backup.cnpg_iam_role_arn
        else {GKE_ANNOTATION: backup.cnpg_gcp_service_account}
        if mode is CnpgBackupCredentials.WORKLOAD_IDENTITY and backup.cnpg_gcp_service_account
        else {}
    )
    if not annotations:
        return {}
    return {"serviceAccountTemplate": {"metadata": {"annotations": annotations}}}


def cluster_backup(backup: BackupSettings, cluster_name: str) -> ClusterBackup | None:
    """Continuous archiving (barman-cloud) or snapshot support for the Cluster; None when
    the stack configures neither."""
    if backup.cnpg_method is CnpgBackupMethod.BARMAN_CLOUD:
        if not backup.cnpg_destination_path:
            return None
        configuration: dict[str, Any] = {
            "destinationPath": backup.cnpg_destination_path,
            "wal": {"compression": "gzip"},
            "data": {"compression": "gzip"},
        }
        if backup.cnpg_endpoint_url:
            configuration["endpointURL"] = backup.cnpg_endpoint_url
        configuration.update(store_credentials(backup, cluster_name))
        return ClusterBackup(
            cluster={
                **service_account_template(backup),
                "plugins": [
                    {
                        "name": BARMAN_PLUGIN,
                        # WAL goes to the store continuously: recovery to any point in time.
                        "isWALArchiver": True,
                        "parameters": {
                            "barmanObjectName": object_store_name(cluster_name),
                            "serverName": backup.cnpg_server_name or cluster_name,
                        },
                    }
                ],
            },
            object_store={
                "configuration": configuration,
                "retentionPolicy": backup.cnpg_retention,
            },
            credentials_secret=(
                credentials_secret_name(cluster_name)
                if backup.cnpg_credentials is CnpgBackupCredentials.ACCESS_KEYS
                else None
            ),
        )
    if not backup.cnpg_snapshot_class:
        return None
    return ClusterBackup(
        cluster={"backup": {"volumeSnapshot": {"className": backup.cnpg_snapshot_class}}},
        object_store=None,
    )


def scheduled_backup(backup: BackupSettings, cluster_name: str) -> dict[str, Any] | None:
    """The ScheduledBackup's spec: the same kind of backup as before each migration, on
    `cnpgBackupSchedule`, owned by itself so that deleting it keeps the backups. None when
    no schedule is set."""
    if not backup.cnpg_schedule:
        return None
    return {
        **backup_spec(backup, cluster_name),
        "schedule": backup.cnpg_schedule,
        "backupOwnerReference": "self",
        "immediate": False,
    }


ARCHIVING_CONDITION: Final = "ContinuousArchiving"


def cluster_ready(archive: ClusterBackup | None, instances: int) -> str:
    """The Cluster's `pulumi.com/waitFor`, all of whose JSON list must hold: Ready; as many
    ready instances as the spec asks for, since the operator's Ready carries no generation
    and, read right after a change of `instances`, is still the one from before it (the
    backup and Flyway would start while the operator scales); and where it archives WAL,
    the operator's `ContinuousArchiving` condition, since a base backup without the WAL
    after it restores nothing."""
    wanted = ["condition=Ready", f"jsonpath={{.status.readyInstances}}={instances}"]
    if archive is not None and archive.object_store is not None:
        wanted.append(f"condition={ARCHIVING_CONDITION}")
    return json.dumps(wanted)


def backup_spec(backup: BackupSettings, cluster_name: str) -> dict[str, Any]:
    """An on-demand `Backup` of the cluster, by the method its backups are configured for."""
    if backup.cnpg_method is CnpgBackupMethod.BARMAN_CLOUD:
        return {
            "cluster": {"name": cluster_name},
            "method": "plugin",
            "pluginConfiguration": {"name": BARMAN_PLUGIN},
        }
    return {"cluster": {"name": cluster_name}, "method": "volumeSnapshot"}


BACKUP_FAILED: Final = "failed"
BACKUP_DONE: Final = f"jsonpath={{[?@.phase=='completed' || @.phase=='{BACKUP_FAILED}'].phase}}"
"""What `pulumi up` waits for on a `Backup`: its phase once it is either `completed` or
`failed`. The provider's `waitFor` only waits (it has no failure condition), and an
expression of `completed` alone would keep a failed Backup waiting until the timeout; the
program then stops `up` on `failed` (components/jobs/backup.py). RFC 9535 JSONPath, as the
provider parses it: the filter selects the root's `status` member by its phase."""


def backup_target(backup: BackupSettings, cluster_name: str) -> ClusterTarget:
    """The on-demand `Backup` taken before each migration."""
    return ClusterTarget(
        api_version=API_VERSION,
        kind="Backup",
        spec=backup_spec(backup, cluster_name),
        done_when=BACKUP_DONE,
        failed_phase=BACKUP_FAILED,
    )


def admin_access(db: DatabaseSettings, superuser_password: pulumi.Output[str]) -> AdminAccess:
    """The superuser's login for pulumi-postgresql, at the address the stack reaches it by."""
    return AdminAccess(
        host=db.access_host,
        port=db.access_port,
        username=SUPERUSER,
        password=superuser_password,
        database=db.name,
        ssl_mode=db.ssl_mode.value,
    )


def in_cluster_admin(cnpg: CnpgSettings, superuser_secret: str) -> InClusterAdmin:
    """The superuser's Secret and the operand image, for the in-cluster grants Job; the
    operator creates the roles itself."""
    return InClusterAdmin(
        image=cnpg.image,
        username=SUPERUSER,
        secret_name=superuser_secret,
        password_key=SUPERUSER_PASSWORD_KEY,
        creates_roles=False,
    )
