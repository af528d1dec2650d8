"""An external database as declared: the admin pulumi-postgresql manages roles as."""

from __future__ import annotations

from components.settings import Flavor
from tests.contract.harness.model import PROVIDER_TYPE, DatabaseSetup, HarnessError
from tests.program import ProgramRun


def _external_setup(run: ProgramRun) -> DatabaseSetup:
    providers = run.of_type(PROVIDER_TYPE)
    if len(providers) != 1:
        raise HarnessError(
            "no in-cluster database, and not one pulumi-postgresql provider to say which "
            f"external one: {[p.name for p in providers]}"
        )
    provider = providers[0].inputs
    return DatabaseSetup(
        flavor=Flavor.EXTERNAL,
        database=provider["database"],
        owner=None,
        admin=provider["username"],
    )
