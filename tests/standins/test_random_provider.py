"""The stand-in for pulumi-random: what the program asks of RandomPassword (pure parts)."""

from __future__ import annotations

import string

from google.protobuf import struct_pb2
from pulumi.runtime.proto import provider_pb2

from standins.random_provider import RandomProvider, generate


def test_a_password_has_its_length_and_only_the_classes_asked_for() -> None:
    password = generate({"length": 32, "special": False})
    assert len(password) == 32
    assert set(password) <= set(string.ascii_letters + string.digits)
    assert generate({"length": 32, "special": False}) != password


def struct(**values: str | float | bool) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(values)
    return result


def test_a_changed_input_replaces_the_password_and_an_unchanged_one_keeps_it() -> None:
    provider = RandomProvider()
    olds = struct(length=32, special=False, result="kept")
    same = provider.Diff(
        provider_pb2.DiffRequest(olds=olds, news=struct(length=32, special=False)), None
    )
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE
    longer = provider.Diff(
        provider_pb2.DiffRequest(olds=olds, news=struct(length=40, special=False)), None
    )
    assert longer.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert list(longer.replaces) == ["length"]
