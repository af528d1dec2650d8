"""A value set as a secret stays secret everywhere it lands.

A key that is not a secret by nature (a bucket path, a host) may still be set with
`--secret`: the stack owner decided it must not be read in the state or a preview. The
program puts such values into resource inputs and outputs as plain strings; this marks every
input and output that carries one as secret, so the engine encrypts it and a preview shows
[secret].
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pulumi


def _carries(value: Any, secrets: Collection[str]) -> bool:  # noqa: ANN401 (any JSON value)
    if isinstance(value, str):
        return any(secret in value for secret in secrets)
    if isinstance(value, dict):
        return any(_carries(k, secrets) or _carries(v, secrets) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_carries(v, secrets) for v in value)
    return False


def guarded(value: pulumi.Input[Any], secrets: Collection[str]) -> pulumi.Output[Any]:
    """`value`, made secret when what it resolves to carries one of `secrets`."""
    return pulumi.Output.from_input(value).apply(
        lambda resolved: pulumi.Output.secret(resolved) if _carries(resolved, secrets) else resolved
    )


def keep_secret(secrets: Collection[str]) -> pulumi.ResourceTransformation:
    """A stack transformation that guards every input of every resource."""

    def transform(
        args: pulumi.ResourceTransformationArgs,
    ) -> pulumi.ResourceTransformationResult | None:
        props = {key: guarded(value, secrets) for key, value in (args.props or {}).items()}
        return pulumi.ResourceTransformationResult(props=props, opts=args.opts)

    return transform
