"""`make preview`/`make up` refuse a change that would delete or replace the protected
database before the engine starts, naming the key and the deliberate way on."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pulumi import automation as auto

from components.settings import parse_settings
from deploy.__main__ import main, refuse_protected_changes
from deploy.target import Target
from tests.program import stack_config, stack_settings

DEPLOYED = {
    "namespace": "tradestream-staging",
    "databaseFlavor": "cloudnative-pg",
    "databaseResourceName": "tradestream-pg",
}
URN = "urn:pulumi:staging::tradestream-database::kubernetes:postgresql.cnpg.io/v1:Cluster::x"


@dataclass
class RecordedStack:
    """What the check reads from a stack besides the last deploy's outputs: its state."""

    protected: bool = True

    def export_stack(self) -> auto.Deployment:
        return auto.Deployment(deployment={"resources": [{"urn": URN, "protect": self.protected}]})


def refusal(*, released: bool = False, **changes: str) -> str | None:
    config = stack_config("staging")
    deployed = {
        "namespace": DEPLOYED["namespace"],
        "cnpgClusterName": DEPLOYED["databaseResourceName"],
        "protectDatabase": "true",
        **changes,
    }
    config.update({f"tradestream-database:{key}": value for key, value in deployed.items()})
    stack = RecordedStack(protected=not released)
    target = Target("staging", stack, is_local=False)  # type: ignore[arg-type]
    settings = parse_settings(config, require_secrets=False)
    return refuse_protected_changes(target, settings, DEPLOYED)


def test_a_renamed_cluster_is_refused_with_the_key_and_the_way_on() -> None:
    message = refusal(cnpgClusterName="tradestream-pg2")
    assert message is not None
    assert "cnpgClusterName (deployed: tradestream-pg) changed" in message
    assert "Nothing was changed" in message
    assert f"pulumi state unprotect --stack staging --yes '{URN}'" in message
    assert "make unprotect STACK=staging" in message


def test_a_replacement_goes_on_once_the_protection_is_released_on_purpose() -> None:
    # What the refusal tells to do: the engine then only forgets what is retained on delete.
    assert refusal(cnpgClusterName="tradestream-pg2", released=True) is None


def test_unchanged_or_unprotected_stacks_go_ahead() -> None:
    assert refusal() is None
    assert (
        refusal(cnpgClusterName="tradestream-pg2", protectDatabase="false", disposable="true")
        is None
    )


def test_the_namespace_command_reads_the_stack_file(capsys: pytest.CaptureFixture[str]) -> None:
    for stack in ("prod", "staging"):
        assert main(["namespace", stack]) == 0
        assert capsys.readouterr().out == f"{stack_settings(stack).namespace}\n"
