"""An external database as declared: the admin its roles are managed as, by pulumi-postgresql
from where `pulumi up` runs, or by the grants Job from inside the cluster."""

from __future__ import annotations

from components.settings import Flavor
from tests.contract.harness.model import (
    GRANTS_COMPONENT,
    JOB_TYPE,
    PROVIDER_TYPE,
    DatabaseSetup,
    HarnessError,
)
from tests.program import ProgramRun


def _external_setup(run: ProgramRun) -> DatabaseSetup:
    providers = run.of_type(PROVIDER_TYPE)
    jobs = run.under(GRANTS_COMPONENT, JOB_TYPE)
    if len(providers) == 1 and not jobs:
        provider = providers[0].inputs
        return DatabaseSetup(
            flavor=Flavor.EXTERNAL,
            database=provider["database"],
            owner=None,
            admin=provider["username"],
        )
    if len(jobs) == 1 and not providers:
        [container] = jobs[0].inputs["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        return DatabaseSetup(
            flavor=Flavor.EXTERNAL, database=env["PGDATABASE"], owner=None, admin=env["PGUSER"]
        )
    raise HarnessError(
        "no in-cluster database, and neither one pulumi-postgresql provider nor one grants Job "
        f"to say which external one: {[p.name for p in providers]}, {[j.name for j in jobs]}"
    )
