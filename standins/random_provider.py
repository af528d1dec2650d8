"""A stand-in for the pulumi-random resource provider, NOT the product: RandomPassword only.

The Go module proxy refuses pulumi-random, so nothing that generates a password (the role
logins of in-cluster role management) could run on the real engine here. This plugin speaks
the provider protocol the engine speaks to every resource provider (gRPC, its port printed
on stdout) and implements what the program asks of pulumi-random: `RandomPassword` with a
length and which classes of characters, replaced when an input changes, kept otherwise.
The engine marks `result` secret as the SDK declares it.

    PATH=<dir with pulumi-resource-random> pulumi up   # see `launcher`
"""

# ruff: noqa: N802 (the provider protocol names its methods)
from __future__ import annotations

import secrets
import string
import sys
import uuid
from collections.abc import Mapping
from concurrent import futures
from pathlib import Path
from typing import Any, Final

import grpc  # type: ignore[import-untyped]
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

VERSION: Final = "4.21.4"
"""The version the pinned pulumi-random SDK asks for."""
RESOURCE_TYPE: Final = "random:index/randomPassword:RandomPassword"
SPECIAL: Final = "!@#$%&*()-_=+[]{}<>:?"
"""pulumi-random's default special characters."""
REPO_ROOT: Final = Path(__file__).resolve().parents[1]


Context = Any
"""grpc.ServicerContext (grpc ships no type hints)."""


def _props(struct: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(struct)


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(dict(values))
    return result


def generate(inputs: Mapping[str, Any]) -> str:
    """A password as pulumi-random makes one: `length` characters of the enabled classes."""
    classes = [
        (string.ascii_uppercase, inputs.get("upper", True)),
        (string.ascii_lowercase, inputs.get("lower", True)),
        (string.digits, inputs.get("numeric", inputs.get("number", True))),
        (inputs.get("overrideSpecial") or SPECIAL, inputs.get("special", True)),
    ]
    alphabet = "".join(chars for chars, enabled in classes if enabled)
    if not alphabet:
        raise ValueError("RandomPassword with every class of characters disabled")
    return "".join(secrets.choice(alphabet) for _ in range(int(inputs.get("length", 16))))


class RandomProvider(provider_pb2_grpc.ResourceProviderServicer):
    def GetPluginInfo(self, request: empty_pb2.Empty, context: Context) -> plugin_pb2.PluginInfo:
        return plugin_pb2.PluginInfo(version=VERSION)

    def CheckConfig(
        self, request: provider_pb2.CheckRequest, context: Context
    ) -> provider_pb2.CheckResponse:
        return provider_pb2.CheckResponse(inputs=request.news)

    def DiffConfig(
        self, request: provider_pb2.DiffRequest, context: Context
    ) -> provider_pb2.DiffResponse:
        return provider_pb2.DiffResponse()

    def Configure(
        self, request: provider_pb2.ConfigureRequest, context: Context
    ) -> provider_pb2.ConfigureResponse:
        return provider_pb2.ConfigureResponse(acceptSecrets=True, supportsPreview=True)

    def Check(
        self, request: provider_pb2.CheckRequest, context: Context
    ) -> provider_pb2.CheckResponse:
        if request.type != RESOURCE_TYPE:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"the stand-in has no {request.type}")
        return provider_pb2.CheckResponse(inputs=request.news)

    def Diff(
        self, request: provider_pb2.DiffRequest, context: Context
    ) -> provider_pb2.DiffResponse:
        olds, news = _props(request.olds), _props(request.news)
        changed = sorted(
            k
            for k in set(olds) | set(news)
            if k != "result" and k in news and olds.get(k) != news.get(k)
        )
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME
            if changed
            else provider_pb2.DiffResponse.DIFF_NONE,
            replaces=changed,
            diffs=changed,
            deleteBeforeReplace=False,
        )

    def Create(
        self, request: provider_pb2.CreateRequest, context: Context
    ) -> provider_pb2.CreateResponse:
        inputs = _props(request.properties)
        outputs = dict(inputs)
        if not request.preview:
            outputs["result"] = generate(inputs)
        return provider_pb2.CreateResponse(id=str(uuid.uuid4()), properties=_struct(outputs))

    def Read(
        self, request: provider_pb2.ReadRequest, context: Context
    ) -> provider_pb2.ReadResponse:
        return provider_pb2.ReadResponse(
            id=request.id, properties=request.properties, inputs=request.inputs
        )

    def Update(
        self, request: provider_pb2.UpdateRequest, context: Context
    ) -> provider_pb2.UpdateResponse:
        return provider_pb2.UpdateResponse(properties=request.olds)

    def Delete(self, request: provider_pb2.DeleteRequest, context: Context) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    def Cancel(self, request: empty_pb2.Empty, context: Context) -> empty_pb2.Empty:
        return empty_pb2.Empty()


def serve() -> None:
    """Serve on a free loopback port and print it, as the engine expects of a plugin."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(RandomProvider(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    server.wait_for_termination()


def launcher(directory: Path) -> Path:
    """Write `pulumi-resource-random` into `directory`: put it first on the engine's PATH."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pulumi-resource-random"
    path.write_text(
        "#!/bin/sh\n"
        f'cd "{REPO_ROOT}" && exec "{sys.executable}" -m standins.random_provider "$@"\n',
        encoding="utf-8",
    )
    path.chmod(0o755)
    return path


if __name__ == "__main__":
    serve()
