"""Each managed role's login, delivered as one Kubernetes Secret of one layout.

Shared by every way roles are managed (pulumi-postgresql, CloudNativePG's managed roles, the
in-cluster grants Job): Flyway reads the migrator's Secret, applications the others, and
CloudNativePG sets each role's password from it (`passwordSecret`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_kubernetes as k8s
from pulumi.resource import create_urn

from components.access import scram
from components.access.privileges import PrivilegeModel
from components.contract import (
    TYPE_PREFIX,
    VERIFIER_KEY,
    InClusterRoles,
    Logins,
    ManagedRole,
    Purpose,
    ServerAddress,
    credentials_secret_name,
    labels,
    login_secret_data,
)
from components.passwords import password

PULUMI_ROLES_TYPE: Final = f"{TYPE_PREFIX}:DatabaseRoles"
"""The component that holds the logins where pulumi-postgresql manages the roles."""
CNPG_RELOAD_LABEL: Final = "cnpg.io/reload"
"""CloudNativePG watches Secrets with this label and re-applies a changed password."""


@dataclass(frozen=True)
class RoleLogin:
    """One role's generated password and the Secret that delivers it."""

    password: pulumi.Output[str]
    secret: k8s.core.v1.Secret
    secret_name: str


def role_logins(
    name: str,
    parent: pulumi.Resource,
    model: PrivilegeModel,
    address: ServerAddress,
    namespace: pulumi.Input[str],
    *,
    operator_reloads: bool = False,
    moved_from: str | None = None,
    verifiers: bool = False,
    protect: bool | None = None,
) -> dict[Purpose, RoleLogin]:
    """A generated password and its credentials Secret per role, children of `parent`.

    `operator_reloads` labels the Secrets for CloudNativePG, which then sets a changed
    password on its own; without the label a change would wait for the next reconciliation.
    `moved_from` is the type of a top-level component of the same name that held these
    logins before (pulumi-postgresql's): they move with their passwords instead of being
    replaced, which would collide on the Secrets' names. `verifiers` adds the password as
    a SCRAM verifier, for an admin that sets it without sending it. `protect`, where given,
    overrides what the passwords and Secrets inherit from `parent`.
    """
    extra = {CNPG_RELOAD_LABEL: "true"} if operator_reloads else {}
    aliases = [pulumi.Alias(parent=create_urn(name, moved_from))] if moved_from else []
    logins: dict[Purpose, RoleLogin] = {}
    for spec in model.roles:
        role = spec.purpose.value
        secret_password = password(
            f"{name}-{role}-password", parent, aliases=aliases, protect=protect
        )
        secret_name = credentials_secret_name(model.database, spec.purpose)
        data = login_secret_data(spec.name, secret_password, address)
        if verifiers:
            data[VERIFIER_KEY] = secret_password.apply(functools.partial(scram.verifier, spec.name))
        secret = k8s.core.v1.Secret(
            f"{name}-{role}-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=secret_name, namespace=namespace, labels={**labels("database"), **extra}
            ),
            type="Opaque",
            string_data=data,
            opts=pulumi.ResourceOptions(parent=parent, aliases=aliases or None, protect=protect),
        )
        logins[spec.purpose] = RoleLogin(secret_password, secret, secret_name)
    return logins


def in_cluster_roles(
    name: str, model: PrivilegeModel, namespace: pulumi.Input[str]
) -> InClusterRoles:
    """The model's roles as the database holds them when managed from inside the cluster:
    their names, Secrets and memberships, and the logins the database component makes as
    its own children (they moved there from pulumi-postgresql's component, with an alias)."""
    member_of: dict[str, list[str]] = {}
    for membership in model.memberships:
        member_of.setdefault(membership.member, []).append(membership.role)

    def make_logins(
        parent: pulumi.Resource,
        address: ServerAddress,
        *,
        operator_reloads: bool,
        verifiers: bool = False,
        protect: bool | None = None,
    ) -> Logins:
        logins = role_logins(
            name,
            parent,
            model,
            address,
            namespace,
            operator_reloads=operator_reloads,
            moved_from=PULUMI_ROLES_TYPE,
            verifiers=verifiers,
            protect=protect,
        )
        secrets = [login.secret for login in logins.values()]
        return Logins(
            secrets=tuple(secrets),
            versions=tuple(s.metadata.apply(lambda m: m.resource_version or "") for s in secrets),
        )

    return InClusterRoles(
        roles=tuple(
            ManagedRole(
                name=role.name,
                secret_name=credentials_secret_name(model.database, role.purpose),
                member_of=tuple(sorted(member_of.get(role.name, []))),
            )
            for role in model.roles
        ),
        make_logins=make_logins,
    )
