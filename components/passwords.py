"""One way to come by a password: configured as a secret, or generated into state."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_random as random

from components.settings import Secret


def password(
    resource_name: str,
    parent: pulumi.Resource,
    configured: Secret | None = None,
    aliases: Sequence[pulumi.Alias] = (),
    protect: bool | None = None,
) -> pulumi.Output[str]:
    """The configured secret if there is one, else a generated password kept secret in state.

    Alphanumeric only: the value lands in JDBC URLs and shell scripts unescaped. `aliases`
    keep a generated password when it moves to another parent; `protect`, where given,
    overrides the parent's protection.
    """
    if configured is not None:
        return pulumi.Output.secret(configured.reveal())
    generated = random.RandomPassword(
        resource_name,
        length=32,
        special=False,
        opts=pulumi.ResourceOptions(parent=parent, aliases=list(aliases) or None, protect=protect),
    )
    result: pulumi.Output[str] = pulumi.Output.secret(generated.result)
    return result
