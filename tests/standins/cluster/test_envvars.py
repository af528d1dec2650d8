"""Container env as a kubelet computes it, and Kubernetes' $(VAR) expansion."""

from __future__ import annotations

import pytest

from standins.cluster.envvars import container_env, expand, expand_all
from standins.cluster.refs import MissingObjectError, PodSetupError
from tests.standins.cluster.fakes import FakeObjects, config_map, pod, secret

VARS = {"A": "alpha", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)", "alpha"),
        ("x-$(A)-y", "x-alpha-y"),
        ("$(A)$(A)", "alphaalpha"),
        ("$$(A)", "$(A)"),  # escaped: literal
        ("$$$(A)", "$alpha"),
        ("$(MISSING)", "$(MISSING)"),  # undefined stays as written
        ("$(EMPTY)!", "!"),
        ("$(A", "$(A"),  # incomplete
        ("cost $5", "cost $5"),
        ("trailing $", "trailing $"),
        ("$A", "$A"),  # shell syntax is not Kubernetes syntax
        ("", ""),
    ],
)
def test_expand_follows_kubernetes_rules(text: str, expected: str) -> None:
    assert expand(text, VARS.get) == expected


def objects() -> FakeObjects:
    return FakeObjects(
        config_maps={"ns/cfg": config_map("cfg", {"HOST": "db", "PORT": "5432", "bad-name!": "x"})},
        secrets={"ns/creds": secret("creds", {"password": "s3cret"})},
    )


def test_env_from_then_env_in_order_with_references_to_earlier_values() -> None:
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "DB_"}],
        "env": [
            {
                "name": "PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}},
            },
            {"name": "URL", "value": "postgres://$(DB_HOST):$(DB_PORT)/$(POD)"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "DB_PORT", "value": "6432"},  # env overrides envFrom
        ],
    }
    env = container_env(pod(name="mypod"), container, objects())
    assert env == {
        "DB_HOST": "db",
        "DB_PORT": "6432",
        "PASSWORD": "s3cret",
        # POD is defined after URL, so it is not expanded there (as in a kubelet).
        "URL": "postgres://db:5432/$(POD)",
        "POD": "mypod",
        "NS": "ns",
    }
    assert expand_all(["echo", "$(URL)", "$$(NS)", "$(NS)"], env) == [
        "echo",
        "postgres://db:5432/$(POD)",
        "$(NS)",
        "ns",
    ]


def test_optional_references_are_skipped_and_required_ones_reported() -> None:
    optional = {
        "name": "c",
        "envFrom": [{"secretRef": {"name": "absent", "optional": True}}],
        "env": [
            {
                "name": "X",
                "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": True}},
            },
            {
                "name": "Y",
                "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k", "optional": True}},
            },
        ],
    }
    assert container_env(pod(), optional, objects()) == {}

    missing_key = {
        "name": "c",
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope"}}}],
    }
    with pytest.raises(MissingObjectError, match='key "nope" not found in ConfigMap "cfg"'):
        container_env(pod(), missing_key, objects())

    missing_secret = {"name": "c", "envFrom": [{"secretRef": {"name": "absent"}}]}
    with pytest.raises(MissingObjectError, match='Secret "absent" not found in namespace "ns"'):
        container_env(pod(), missing_secret, objects())


def test_unsupported_value_sources_fail_clearly() -> None:
    container = {
        "name": "c",
        "env": [{"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}],
    }
    with pytest.raises(
        PodSetupError, match="env CPU: valueFrom \\['resourceFieldRef'\\] is not supported"
    ):
        container_env(pod(), container, objects())
