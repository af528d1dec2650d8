"""Run the Flyway Job the program declares, for real, against a local PostgreSQL.

Everything comes from the resources the program registers under mocks: the container's image,
command and environment, the projected volume and the ConfigMaps behind it, and how the
database comes to exist, per flavor: the Bitnami image's first start and the release's init
scripts (run as the user the image would run them as), the CloudNativePG operator's initdb, or
an external database owned by the admin role its roles are managed as. Where pulumi-postgresql
manages the roles, its resources are checked to be the privilege model and created with the
statements the provider runs (`provider.py`), as its user; from inside the cluster, the
operator's managed roles and the declared grants Job's exact command do it. `lifecycle.py`
runs `make destroy` and the next `make up` as the database sees them.

Only what cannot exist outside a cluster is substituted: the database host and port (and TLS:
the local server has none, so `sslmode` becomes `disable`), the passwords pods read from
Secrets, the mount point of the volume and the pod's scratch directory. So a green contract test
means the Job as declared works against the database as declared, not against a copy.

    job = declared_job("staging")
    prepared = prepare_database(server, job)
    lay_out_volume(job, tmp / "sql")
    proc = run_job(job, server, tmp / "sql", password=prepared.password)

    model.py           what is read: the declared Job, database set-up and grants
    declared.py        reading the program under mocks; one module per flavor beside it
    bitnami.py, cloudnative_pg.py, external.py
                       how each flavor creates its database and roles, as declared
    database.py        the declared database made real, and the in-cluster grants Job run
    provider.py        what pulumi-postgresql 3.18.2 runs to create and delete its resources
    lifecycle.py       what `make destroy` deletes and the next `make up` creates
    backup.py          the pg_dump Job before Flyway
    flyway.py          the Job's volume, command line and outcome

Also a command line, to try any migration set the same way:

    python -m tests.contract.harness --stack staging --migrations /path/to/migrations
"""

from tests.contract.harness.__main__ import (
    main,
)
from tests.contract.harness.backup import DumpJob
from tests.contract.harness.database import (
    apply_roles,
    initialise_database,
    prepare_database,
    run_grants_job,
)
from tests.contract.harness.declared import (
    declared_job,
    job_from_run,
    program_run,
)
from tests.contract.harness.flyway import (
    job_environment,
    lay_out_volume,
    run_job,
    schema_history,
    volume_files,
)
from tests.contract.harness.model import (
    INITSCRIPTS_PASSWORD_ENV,
    INITSCRIPTS_USER_ENV,
    RELEASE_TYPE,
    DeclaredJob,
    PreparedDatabase,
    role_passwords,
)

__all__ = [
    "INITSCRIPTS_PASSWORD_ENV",
    "INITSCRIPTS_USER_ENV",
    "RELEASE_TYPE",
    "DeclaredJob",
    "DumpJob",
    "PreparedDatabase",
    "apply_roles",
    "declared_job",
    "initialise_database",
    "job_environment",
    "job_from_run",
    "lay_out_volume",
    "main",
    "prepare_database",
    "program_run",
    "role_passwords",
    "run_grants_job",
    "run_job",
    "schema_history",
    "volume_files",
]
