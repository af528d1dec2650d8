"""The Kubernetes namespace the database and its migrations live in."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contract import APP_NAME, TYPE_PREFIX


@dataclass(frozen=True)
class NamespaceArgs:
    name: str
    create: bool
    """False when the namespace is managed elsewhere; the name is then only passed on."""
    retain: bool
    """Leave the namespace in Kubernetes if Pulumi ever deletes it: deleting it deletes the
    database's volumes with it."""


class Namespace(pulumi.ComponentResource):
    """Owns the namespace when asked to, so everything else can depend on one thing."""

    name: pulumi.Output[str]

    def __init__(
        self, name: str, args: NamespaceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}:Namespace", name, None, opts)
        if args.create:
            ns = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=args.name,
                    labels={
                        "app.kubernetes.io/part-of": "tradestream",
                        "app.kubernetes.io/managed-by": "pulumi",
                        "app.kubernetes.io/name": APP_NAME,
                        # Every pod here (the database, the Flyway Job) passes `restricted`.
                        "pod-security.kubernetes.io/enforce": "restricted",
                    },
                ),
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain),
            )
            self.name = ns.metadata.apply(lambda _: args.name)
        else:
            self.name = pulumi.Output.from_input(args.name)
        self.register_outputs({"name": self.name})
