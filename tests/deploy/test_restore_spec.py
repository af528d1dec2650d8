"""Which dump `make restore` lists and picks, and the pod it runs in (pure)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from components.jobs.backup_spec import BACKUP_PATH
from deploy.maintenance import maintenance_job
from deploy.restore_spec import LIST_COMMAND, Dump, choose, default_dump, parse_listing

OLD = "tradestream-20261201T080000Z-0123456789ab.dump"
NEW = "tradestream-20261203T095900Z-ba9876543210.dump"
KEPT = "tradestream-20261203T110000Z-before-restore.dump"
OTHER = "tradestream_audit-20261204T000000Z-0123456789ab.dump"


def listed(tmp_path: Path, files: dict[str, bytes]) -> str:
    """LIST_COMMAND as the pod runs it, on a folder standing for the claim."""
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    shell, flag, script = LIST_COMMAND
    script = script.replace(BACKUP_PATH, str(tmp_path))
    return subprocess.run([shell, flag, script], capture_output=True, text=True, check=True).stdout


def test_the_listing_names_every_dump_with_its_size_oldest_first(tmp_path: Path) -> None:
    text = listed(
        tmp_path,
        {NEW: b"12345", OLD: b"1", KEPT: b"", ".partial-20261203T095900Z.dump": b"x", "x": b""},
    )
    assert parse_listing(text) == [Dump(OLD, 1), Dump(NEW, 5), Dump(KEPT, 0)]


def test_an_empty_claim_lists_nothing(tmp_path: Path) -> None:
    assert parse_listing(listed(tmp_path, {})) == []


def test_the_default_is_the_newest_dump_before_a_migration_of_this_database() -> None:
    dumps = [Dump(OLD, 1), Dump(NEW, 1), Dump(KEPT, 1), Dump(OTHER, 1)]
    assert default_dump(dumps, "tradestream") == Dump(NEW, 1)
    assert choose(dumps, "tradestream", None) == Dump(NEW, 1)
    assert choose(dumps, "tradestream_audit", None) == Dump(OTHER, 1)


def test_a_named_dump_is_taken_as_named_even_one_a_restore_kept() -> None:
    dumps = [Dump(OLD, 1), Dump(NEW, 1), Dump(KEPT, 1)]
    assert choose(dumps, "tradestream", OLD) == Dump(OLD, 1)
    assert choose(dumps, "tradestream", f"/backups/{KEPT}") == Dump(KEPT, 1)


def test_a_dump_that_is_not_there_is_named() -> None:
    why = choose([Dump(OLD, 1)], "tradestream", NEW)
    assert isinstance(why, str)
    assert NEW in why
    why = choose([Dump(KEPT, 1)], "tradestream", None)
    assert isinstance(why, str)
    assert "no dump of tradestream" in why


def test_the_restore_pod_is_the_backup_jobs_pod_with_the_dump_named() -> None:
    deployed = {
        "metadata": {"name": "db-backup-dump-1", "namespace": "ns", "labels": {"a": "b"}},
        "spec": {
            "template": {
                "metadata": {"labels": {"job-name": "x", "db-client": "true"}},
                "spec": {
                    "initContainers": [{"name": "pg-dump"}],
                    "securityContext": {"runAsNonRoot": True},
                    "containers": [
                        {
                            "name": "pg-dump",
                            "command": ["old"],
                            "env": [{"name": "A", "value": "1"}],
                        }
                    ],
                },
            }
        },
    }
    job = maintenance_job(
        deployed, "restore", ["sh"], deadline_seconds=60, extra_env={"RESTORE_DUMP": NEW}
    )
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"]["db-client"] == "true"
    assert "job-name" not in pod["metadata"]["labels"]
    assert pod["spec"]["securityContext"] == {"runAsNonRoot": True}
    assert "initContainers" not in pod["spec"]  # one command, not the attempt's backup
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["sh"]
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "RESTORE_DUMP", "value": NEW}]
    assert job["spec"]["backoffLimit"] == 0
