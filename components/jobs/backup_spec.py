"""The pg_dump backup taken before every Flyway run, as plain data (pure).

Databases whose operator backs them up (CloudNativePG) say so in their backup target, and
the backup step creates what they describe; the others are dumped by a
`pg_dump --format=custom` Job writing to a volume the program owns. Either way the Flyway Job
waits for it, and a backup that fails stops the migration.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from components.contract import DIGEST_ANNOTATION_PREFIX, DatabaseEndpoint
from components.jobs.libpq import libpq_environment
from components.jobs.pod import TMP_PATH, Container, EnvVar, locked_down_pod
from components.settings import BackupSettings, FlywaySettings

RUN_ANNOTATION: Final = f"{DIGEST_ANNOTATION_PREFIX}/migration-run"
"""On each backup: the migration run it was taken for."""

BACKUP_PATH: Final = "/backups"
TLS_PATH: Final = "/tls"


def wait_for_server(who: str) -> str:
    """Shell that waits for the server as Flyway would (BACKUP_CONNECT_RETRIES times,
    BACKUP_CONNECT_RETRIES_INTERVAL apart); a database that never answers fails `who`."""
    return f"""tries=0
until pg_isready --quiet; do
  tries=$((tries + 1))
  if [ "$tries" -gt "$BACKUP_CONNECT_RETRIES" ]; then
    echo "{who}: $PGHOST:$PGPORT did not accept connections" >&2
    exit 1
  fi
  sleep "$BACKUP_CONNECT_RETRIES_INTERVAL"
done
"""


DUMP_SCRIPT: Final = (
    """set -eu
umask 077
# Wait for the server as Flyway would; a database that never answers fails the backup.
"""
    + wait_for_server("backup")
    + r"""stamp=$(date -u +%Y%m%dT%H%M%SZ)
# Two attempts within a second must not share a name: the second would replace the first.
while [ -e "$BACKUP_DIR/$PGDATABASE-$stamp-$BACKUP_LABEL.dump" ]; do
  sleep 1
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
done
final="$BACKUP_DIR/$PGDATABASE-$stamp-$BACKUP_LABEL.dump"
partial="$BACKUP_DIR/.partial-$stamp.dump"
trap 'rm -f "$partial"' EXIT
pg_dump --format=custom --no-password --file="$partial"
# A dump pg_restore cannot read is no way back: check it before it counts.
pg_restore --list "$partial" > /dev/null
mv "$partial" "$final"
trap - EXIT
echo "backup: wrote $final ($(wc -c < "$final") bytes)"
# Keep the newest BACKUP_RETAIN_COUNT dumps of this database; names sort by time.
ls -1 "$BACKUP_DIR" \
  | grep -E "^$PGDATABASE-[0-9]{8}T[0-9]{6}Z-[0-9a-f]+\.dump\$" \
  | sort -r \
  | tail -n "+$((BACKUP_RETAIN_COUNT + 1))" \
  | while read -r old; do
      rm -f -- "$BACKUP_DIR/$old"
      echo "backup: removed $BACKUP_DIR/$old (keeping $BACKUP_RETAIN_COUNT)"
    done
"""
)
"""POSIX sh: the dump. A dump is written under a temporary name and renamed only once
pg_restore can read it, so a failed run never leaves a file that looks like a backup."""

FRESH_MARKER: Final = ".fresh-dump"
"""On the claim: the dump the backup Job just took, which no Flyway attempt has used yet."""

JOB_SCRIPT: Final = DUMP_SCRIPT + f'echo "$final" > "$BACKUP_DIR/{FRESH_MARKER}"\n'
"""The backup Job: a dump, marked fresh for the first Flyway attempt after it."""

ATTEMPT_SCRIPT: Final = (
    f"""set -eu
marker="$BACKUP_DIR/{FRESH_MARKER}"
if [ -f "$marker" ]; then
  fresh=$(cat "$marker")
  rm -f "$marker"
  if [ -f "$fresh" ]; then
    echo "backup: this Flyway attempt is the first since $fresh was taken"
    exit 0
  fi
fi
echo "backup: an earlier Flyway attempt used the last dump; taking a new one"
"""
    + DUMP_SCRIPT
)
"""Before every Flyway attempt, in Flyway's pod: the backup Job's dump serves the first
attempt after it; every later attempt (a pod the Job retries, a Job the next `up` replaces
after a failure) takes its own, since the applications kept writing. Older dumps are kept
up to `backupRetainCount`."""

LABEL_LENGTH: Final = 12
RESOURCES: Final = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}
"""pg_dump streams table by table; its memory does not grow with the database."""


def claim_name(database: str) -> str:
    """The backup volume's claim: one per database, named so restores can find it."""
    return f"{database.replace('_', '-')}-migration-backups"


def dump_label(migrations_digest: str) -> str:
    """Part of each dump's name: the migration set that was about to be applied."""
    return migrations_digest[:LABEL_LENGTH]


def dump_environment(
    endpoint: DatabaseEndpoint,
    backup: BackupSettings,
    flyway: FlywaySettings,
    label: str,
) -> tuple[EnvVar, ...]:
    """libpq's environment for Flyway's own login (so the dump sees what Flyway changes),
    and the script's settings. The password comes from the Secret, never a literal."""
    return (
        *libpq_environment(
            endpoint.address,
            user=endpoint.username,
            password_secret=endpoint.secret_name,
            password_key=endpoint.password_key,
            tls_path=TLS_PATH,
            application="migration-backup",
        ),
        EnvVar("BACKUP_DIR", BACKUP_PATH),
        EnvVar("BACKUP_LABEL", label),
        EnvVar("BACKUP_RETAIN_COUNT", str(backup.retain_count)),
        EnvVar("BACKUP_CONNECT_RETRIES", str(flyway.connect_retries)),
        EnvVar("BACKUP_CONNECT_RETRIES_INTERVAL", str(flyway.connect_retries_interval)),
        EnvVar("HOME", TMP_PATH),
    )


def dump_job_spec(
    backup: BackupSettings,
    env: tuple[EnvVar, ...],
    *,
    claim: str,
    labels: Mapping[str, str],
    ca_secret: str | None,
) -> dict[str, Any]:
    """The locked-down pod of every Job; the backup volume is the only thing it writes."""
    mounts: list[dict[str, Any]] = [
        {"name": "backups", "mountPath": BACKUP_PATH},
        {"name": "tmp", "mountPath": TMP_PATH},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "backups", "persistentVolumeClaim": {"claimName": claim}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    container = Container(
        name="pg-dump",
        image=backup.image,
        command=("sh", "-c", JOB_SCRIPT),
        env=env,
        resources=RESOURCES,
    )
    return {
        # One retry for a transient failure; the second failure fails the deploy.
        "backoffLimit": 1,
        "activeDeadlineSeconds": backup.timeout_seconds,
        "template": locked_down_pod(
            container, mounts, volumes, labels, ca_secret=ca_secret, tls_path=TLS_PATH
        ),
    }


def attempt_pod_part(
    backup: BackupSettings, env: tuple[EnvVar, ...], *, claim: str, ca_secret: str | None
) -> dict[str, Any]:
    """What Flyway's pod gets so that every attempt has a backup of its own: an init
    container running ATTEMPT_SCRIPT as the backup Job's pod runs its dump (the same
    hardening, login and claim), and the claim's volume. The pod's own `tmp` and `tls`
    volumes serve it too."""
    pod = dump_job_spec(backup, env, claim=claim, labels={}, ca_secret=ca_secret)["template"]
    (container,) = pod["spec"]["containers"]
    container["command"] = ["sh", "-c", ATTEMPT_SCRIPT]
    return {
        "initContainers": [container],
        "volumes": [v for v in pod["spec"]["volumes"] if v["name"] == "backups"],
    }


def claim_spec(backup: BackupSettings) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": backup.volume_size}},
    }
    if backup.storage_class:
        spec["storageClassName"] = backup.storage_class
    return spec


def operator_backup_failure(
    kind: str, name: str, status: Mapping[str, Any] | None, failed_phase: str, urn: str = ""
) -> str | None:
    """Why `up` stops after the operator's backup ended (None: it completed, or its status is
    not known yet, as in a preview). The failed object stays in the stack's state as it is,
    so the next `up` must be told to replace it (`make up` does so by itself)."""
    if not status or status.get("phase") != failed_phase:
        return None
    error = status.get("error") or "the operator recorded no error"
    again = f"`pulumi up --replace '{urn}'`" if urn else "`pulumi up --replace <its URN>`"
    return (
        f"the {kind} {name} before this migration ended in phase {failed_phase}: {error}. "
        "Flyway did not run. Check the Cluster's WAL archiving and the object store "
        "(kubectl describe cluster; the credentials Secret), then run `make up` again: it "
        f"takes a new backup (with the Pulumi CLI: {again})."
    )


def _program_backups(
    resources: Iterable[Mapping[str, Any]],
) -> Iterator[tuple[str, str | None, str | None]]:
    """(URN, kind, phase) of each of the program's backups (marked with RUN_ANNOTATION) in a
    stack's exported state."""
    for resource in resources:
        outputs = resource.get("outputs") or {}
        annotations = (outputs.get("metadata") or {}).get("annotations") or {}
        if RUN_ANNOTATION in annotations:
            phase = (outputs.get("status") or {}).get("phase")
            yield str(resource["urn"]), outputs.get("kind"), phase


def failed_backups(
    resources: Iterable[Mapping[str, Any]], failed_phase: str = "failed"
) -> list[str]:
    """The URNs of the program's backups that a deploy left in state in their failed phase
    (an operator's `Backup`'s is `failed`): the next `up` replaces them, so it backs up
    again."""
    return [urn for urn, _, phase in _program_backups(resources) if phase == failed_phase]


def backups_before_a_failed_attempt(
    resources: Iterable[Mapping[str, Any]], completed_phase: str = "completed"
) -> list[str]:
    """The URNs of the program's operator `Backup`s that completed before a migration attempt
    that then failed: replaced before the retry, so that it runs after a backup of what the
    applications wrote in between (a dump flavor's Flyway pod takes its own backup per
    attempt instead)."""
    return [
        urn
        for urn, kind, phase in _program_backups(resources)
        if kind == "Backup" and phase == completed_phase
    ]
