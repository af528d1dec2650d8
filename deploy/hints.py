"""What to do about the failures Flyway reports in words a deployer may not connect to a
setting. Shown under Flyway's log when a deploy fails."""

from __future__ import annotations

import re

_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r'database "([^"]+)" does not exist'),
        "The database {0!r} does not exist on the server. An external database must exist "
        "before the first deploy: its administrator creates it (CREATE DATABASE {0}), or "
        "databaseName names the one that exists.",
    ),
    (
        re.compile(r'password authentication failed for user "([^"]+)"'),
        "The server refused the password of {0!r}. Set the password the database has for "
        "it: migratorPassword (databaseRolesManagedBy dba), or adminPassword.",
    ),
    (
        re.compile(r"Connection to ([^ ]+) refused"),
        "Nothing accepts connections at {0}. Check databaseAccessHost and "
        "databaseAccessPort, and that the server is up and reachable from the cluster.",
    ),
    (
        re.compile(r"pg_dump: error: .*permission denied for (?:table|sequence) (\S+)"),
        "The backup before the migration could not read {0}, so Flyway did not run. The "
        "backup logs in as Flyway does: make the migrator own what it migrates (ALTER TABLE "
        "... OWNER TO the migrator) or grant it SELECT, then deploy again.",
    ),
    (
        re.compile(r"No value provided for placeholder: \$\{([^}]*)\}"),
        "A migration uses the placeholder ${{{0}}}, which has no value. Give it one "
        "(pulumi config set --path 'flywayPlaceholders.{0}' <value>, or with --secret under "
        "flywaySecretPlaceholders), or set flywayPlaceholderReplacement false.",
    ),
    (
        re.compile(r"Failed to populate value for default placeholder: \$\{([^}]*)\}"),
        "${{{0}}} is not one of Flyway's built-in placeholders (flyway:defaultSchema, "
        "flyway:user, flyway:database, flyway:timestamp, flyway:filename, "
        "flyway:workingDirectory, flyway:table, flyway:environment).",
    ),
)


def hints(log: str) -> list[str]:
    """One line of advice per known failure found in Flyway's log, in the order known."""
    found = []
    for pattern, advice in _HINTS:
        match = pattern.search(log)
        if match:
            found.append(advice.format(*match.groups()))
    return found
