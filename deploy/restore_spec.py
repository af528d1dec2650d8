"""Restoring a pg_dump taken before a migration, as plain data (pure): the command that lists
the dumps, the one that restores one, and which dump is meant when none is named.

Both run in a pod made from the stack's own backup Job (deploy/maintenance.py): its image (the
pg_dump that wrote the dumps, so pg_restore reads them), its login (Flyway's), the claim that
holds the dumps and the locked-down security context of every pod of the program.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from components.jobs.backup_spec import BACKUP_PATH, wait_for_server

LIST_COMMAND: Final = (
    "sh",
    "-c",
    f'cd "{BACKUP_PATH}" && for f in *.dump; do '
    'if [ -f "$f" ]; then echo "dump: $(wc -c < "$f") $f"; fi; done',
)
"""Every dump on the claim with its size in bytes, one `dump: <size> <name>` line each
(POSIX sh and wc only: whatever the backup image's ls is)."""

DUMP_ENV: Final = "RESTORE_DUMP"
"""The restore pod's variable naming the dump to restore (a name on the claim)."""

_DUMP: Final = re.compile(r"^(?P<database>.+)-(?P<stamp>\d{8}T\d{6}Z)-(?P<label>[0-9a-f]+)\.dump$")
"""A dump the backup before a migration wrote: `<database>-<UTC time>-<migrations digest>`."""
_KEPT: Final = re.compile(r"^(?P<database>.+)-(?P<stamp>\d{8}T\d{6}Z)-before-restore\.dump$")
"""What a restore kept of the database it replaced."""


@dataclass(frozen=True)
class Dump:
    """One file on the backup claim."""

    name: str
    size: int

    @property
    def before_migration(self) -> bool:
        return _DUMP.match(self.name) is not None

    @property
    def before_restore(self) -> bool:
        return _KEPT.match(self.name) is not None


def parse_listing(text: str) -> list[Dump]:
    """The dumps `LIST_COMMAND` printed, oldest first (names sort by time)."""
    dumps: list[Dump] = []
    for line in text.splitlines():
        fields = line.strip().split(" ", 2)
        if len(fields) == 3 and fields[0] == "dump:" and fields[1].isdigit():
            dumps.append(Dump(fields[2], int(fields[1])))
    return sorted(dumps, key=lambda d: d.name)


def default_dump(dumps: list[Dump], database: str) -> Dump | None:
    """The dump taken before the last migration run: the newest the backup wrote for this
    database (never what a restore kept)."""
    mine = [
        (m["stamp"], d.name, d)
        for d in dumps
        if (m := _DUMP.match(d.name)) is not None and m["database"] == database
    ]
    return max(mine)[2] if mine else None


def choose(dumps: list[Dump], database: str, wanted: str | None) -> Dump | str:
    """The dump to restore, or why there is none."""
    if wanted:
        name = wanted.rsplit("/", 1)[-1]
        found = [d for d in dumps if d.name == name]
        if not found:
            return f"no dump named {name!r} on the backup claim; the dumps are listed above"
        return found[0]
    chosen = default_dump(dumps, database)
    if chosen is None:
        return f"no dump of {database} on the backup claim: no migration has been backed up yet"
    return chosen


# The restore, run by `sh -c` in the pod. POSIX sh: the images' /bin/sh may be dash.
#
# 1. The dump must be readable and hold no large objects (pg_restore restores those in
#    transactions of their own, which would end ours).
# 2. What is there now is dumped first, under a name no restore ever picks by default.
# 3. The dump's tables are read once: each table's COPY header, its row count and the SHA-256
#    of its rows in the dump's order.
# 4. One psql session, one transaction: the login's own objects are dropped (so what a bad
#    migration created goes too), the dump is restored over the rest, and every table is read
#    back in the same transaction: a freshly loaded table reads back in the order it was
#    loaded, so its rows hash exactly as in the dump. Any difference raises an error before
#    COMMIT, and psql (ON_ERROR_STOP) leaves without committing: nothing changes.
RESTORE_SCRIPT: Final = (
    r"""set -eu
umask 077
dump="$BACKUP_DIR/$RESTORE_DUMP"
work="$HOME/restore"
mkdir -p "$work"
if [ ! -f "$dump" ]; then
  echo "restore: no dump $RESTORE_DUMP in $BACKUP_DIR" >&2
  exit 1
fi
pg_restore --list "$dump" > "$work/toc"
if grep -Eq '^[0-9]+; [0-9]+ [0-9]+ (BLOB|BLOBS|LARGE OBJECT) ' "$work/toc"; then
  echo "restore: $RESTORE_DUMP holds large objects, which pg_restore restores in" \
    "transactions of their own; restore it by hand (pg_restore --single-transaction)" >&2
  exit 1
fi
"""  # noqa: S608 (shell that writes psql's input, not a query built from data)
    + wait_for_server("restore")
    + r"""stamp=$(date -u +%Y%m%dT%H%M%SZ)
# Never over an earlier one: restoring what a restore kept, in the same second, would
# otherwise replace the very dump being restored.
while [ -e "$BACKUP_DIR/$PGDATABASE-$stamp-before-restore.dump" ]; do
  sleep 1
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
done
kept="$BACKUP_DIR/$PGDATABASE-$stamp-before-restore.dump"
pg_dump --format=custom --no-password --file="$kept.partial"
mv "$kept.partial" "$kept"
echo "restore: the database as it was before this restore: $kept"
pg_restore --data-only --file=- "$dump" | awk -v dir="$work" '
  /^COPY .* FROM stdin;$/ {
    n++; rows = 0; inside = 1
    head = $0; sub(/ FROM stdin;$/, "", head)
    print head > (dir "/table." n); close(dir "/table." n)
    hash = "sha256sum > " dir "/hash." n; printf "" | hash
    next
  }
  inside && $0 == "\\." {
    close(hash); print rows > (dir "/rows." n); close(dir "/rows." n); inside = 0; next
  }
  inside { print | hash; rows++ }
'
{
  cat <<'SQL'
SET client_min_messages = warning;
BEGIN;
DO $restore$
DECLARE
  me oid := (SELECT oid FROM pg_roles WHERE rolname = current_user);
  statements text[];
  statement text;
BEGIN
  -- Everything this login owns, named once before anything is dropped.
  SELECT array_agg(s ORDER BY rank, s) INTO statements FROM (
    SELECT 1 AS rank, format('DROP SCHEMA IF EXISTS %I CASCADE', nspname) AS s
      FROM pg_namespace WHERE nspowner = me AND nspname <> 'public'
       AND nspname !~ '^pg_' AND nspname <> 'information_schema'
    UNION ALL
    SELECT 2, format('DROP EXTENSION IF EXISTS %I CASCADE', extname)
      FROM pg_extension WHERE extowner = me
    UNION ALL
    SELECT CASE WHEN c.relkind IN ('v', 'm') THEN 3 WHEN c.relkind = 'S' THEN 5 ELSE 4 END,
           format('DROP %s IF EXISTS %s CASCADE',
                  CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                    WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                  c.oid::regclass)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relowner = me AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
       AND NOT c.relispartition
       AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                         AND d.objid = c.oid AND d.deptype = 'e')
    UNION ALL
    SELECT 6, format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure)
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE p.proowner = me AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                         AND d.objid = p.oid AND d.deptype = 'e')
    UNION ALL
    SELECT 7, format('DROP %s IF EXISTS %s CASCADE',
                     CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype)
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE t.typowner = me AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
       AND (t.typtype IN ('e', 'd', 'r')
            OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                         AND d.objid = t.oid AND d.deptype = 'e')
  ) owned;
  FOREACH statement IN ARRAY coalesce(statements, '{}') LOOP
    EXECUTE statement;
  END LOOP;
  -- This login's default privileges would add grants to every object the restore creates;
  -- the dump re-creates them, after its objects, as a fresh database would get them.
  SELECT array_agg(format('ALTER DEFAULT PRIVILEGES FOR ROLE %I %s REVOKE ALL ON %s FROM %s',
           current_user,
           CASE WHEN a.defaclnamespace = 0 THEN ''
                ELSE format('IN SCHEMA %I', (SELECT nspname FROM pg_namespace
                                             WHERE oid = a.defaclnamespace)) END,
           CASE a.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES'
             WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END,
           CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                ELSE quote_ident((SELECT rolname FROM pg_roles WHERE oid = a.grantee)) END))
    INTO statements
    FROM (SELECT defaclnamespace, defaclobjtype, (aclexplode(defaclacl)).grantee
            FROM pg_default_acl WHERE defaclrole = me) a
   WHERE a.grantee <> me;
  FOREACH statement IN ARRAY coalesce(statements, '{}') LOOP
    EXECUTE statement;
  END LOOP;
END
$restore$;
\o /dev/null
SQL
  if ! pg_restore --clean --if-exists --file=- "$dump"; then
    echo "DO \$\$ BEGIN RAISE EXCEPTION 'restore: pg_restore could not read the dump'; END \$\$;"
  fi
  cat <<'SQL'
\o
SET synchronize_seqscans = off;
SET DateStyle = ISO;
SET IntervalStyle = postgres;
SET extra_float_digits = 3;
SQL
  n=0
  while [ -f "$work/table.$((n + 1))" ]; do
    n=$((n + 1))
    head=$(cat "$work/table.$n")
    table=${head#COPY }
    table=${table%% (*}
    want_rows=$(cat "$work/rows.$n")
    want_hash=$(cut -c1-64 "$work/hash.$n")
    printf '%s TO STDOUT \\g |sha256sum > %s/got.%s\n' "$head" "$work" "$n"
    printf '\\set got `cut -c1-64 %s/got.%s`\n' "$work" "$n"
    printf "SELECT count(*) AS rows, :'got' = '%s' AND count(*) = %s AS same FROM %s \\\\gset\n" \
      "$want_hash" "$want_rows" "$table"
    printf '\\if :same\n'
    printf "\\\\echo 'restore: %s: ':rows' rows, sha256 %s, as in the dump'\n" \
      "$table" "$want_hash"
    printf '\\else\n'
    printf "\\\\echo 'restore: %s differs from the dump: ':rows' rows, sha256 ':got'" \
      "$table"
    printf "; the dump has %s rows, sha256 %s'\n" "$want_rows" "$want_hash"
    printf "DO \$\$ BEGIN RAISE EXCEPTION %s; END \$\$;\n" \
      "'restore: the restored data differs from the dump'"
    printf '\\endif\n'
    case "$table" in
      *.flyway_schema_history)
        printf '\\echo restore: the history Flyway will read:\n'
        printf "SELECT installed_rank, version, description, success FROM %s ORDER BY 1;\n" \
          "$table"
        ;;
    esac
  done
  echo 'COMMIT;'
} | psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 --pset pager=off
echo "restore: $RESTORE_DUMP restored into $PGDATABASE in one transaction, every table checked"
"""
)
