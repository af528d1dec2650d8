"""The database of record, in one of its flavors. This module is the one place that chooses a
flavor; nothing else in the program branches on it (a test reads the code to keep it so).

Each flavor is one module with its pure spec, and yields what `contract.Database` promises.
A new flavor: its keys and rules in `components/settings/`, one module here, one line below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import pulumi

from components.contract import Database, DatabaseArgs, FlavorKind, Traits
from components.database import bitnami, cloudnative_pg, external
from components.settings import Flavor, Settings

FLAVORS: Final[Mapping[Flavor, FlavorKind]] = {
    Flavor.BITNAMI: bitnami.FLAVOR,
    Flavor.CLOUDNATIVE_PG: cloudnative_pg.FLAVOR,
    Flavor.EXTERNAL: external.FLAVOR,
}


def traits(settings: Settings) -> Traits:
    """What is known of the stack's flavor before anything is deployed."""
    return FLAVORS[settings.database.flavor].traits(settings)


def deploy(name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> Database:
    """The stack's database, as its flavor deploys it."""
    return FLAVORS[args.settings.database.flavor].deploy(name, args, opts)
