"""Runs the real Pulumi program under mocks and records everything it registers.

`MockResourceArgs` does not carry resource options, so a `MockMonitor` subclass keeps
each `RegisterResource` request: parent, dependencies, timeouts, replacement options and
the wire form of the inputs, where secrets are still wrapped and can be told apart.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import runpy
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.settings import get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.settings import PROJECT, Settings, declared_keys, required_secrets
from components.settings.stackfile import cli_value, load_document, read_stack_file, stack_path

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "staging", "prod")
SECRET_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270"
MOCK_CONFIG_SECRETS = {
    "adminPassword": "cfg-admin-Pa55word-7f3a",
    "ownerPassword": "cfg-owner-Pa55word-91bc",
    "replicationPassword": "cfg-repl-Pa55word-c0de",
    "migratorPassword": "cfg-migrator-Pa55word-5e1f",
    "cnpgBackupAccessKeyId": "AKIACFGBACKUPKEY7Q2W",
    "cnpgBackupSecretAccessKey": "cfg-backup-Secret-Key-3d9e",
}


NAMES: dict[str, str] = {
    "databaseName": "tradestream",
    "databaseOwner": "tradestream_owner",
    "postgresReleaseName": "tradestream-postgresql",
    "cnpgClusterName": "tradestream-pg",
    "cnpgImage": "ghcr.io/cloudnative-pg/postgresql:17.6",
    "postgresImageRepository": "bitnamilegacy/postgresql",
    "postgresImageTag": "17.6.0-debian-12-r4",
}
"""The names and images tests spell out ("tradestream_migrator", "tradestream-pg-rw"), set
over a stack file's own, so such an assertion holds whatever a stack file names them."""


def names_for(stack: str, flavor: str | None = None) -> dict[str, str]:
    """NAMES as far as the flavor reads them (the stack file's, unless `flavor` switches it):
    the program refuses a key only another flavor reads."""
    chosen = flavor or stack_settings(stack).database.flavor.value
    keys = declared_keys()
    return {
        key: value
        for key, value in NAMES.items()
        if (readers := keys[key].spec.flavors) is None or chosen in {f.value for f in readers}
    }


CLOUDNATIVE_PG: dict[str, str] = {
    "databaseFlavor": "cloudnative-pg",
    # A cluster is only deployed with a way to back it up before migrations.
    "cnpgBackupMethod": "volume-snapshot",
    "cnpgBackupSnapshotClass": "csi-snapshots",
}
"""Config that turns the dev stack into a CloudNativePG one."""


@dataclass(frozen=True)
class Recorded:
    """One registered resource, as the engine would have received it."""

    urn: str
    type: str
    name: str
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    """What the provider stand-in returned, e.g. a generated name."""
    wire: dict[str, Any]
    """Inputs as sent: secrets appear as signature-wrapped objects."""
    parent: str
    dependencies: tuple[str, ...]
    delete_before_replace: bool
    protect: bool
    retain_on_delete: bool
    custom_timeouts: dict[str, str]
    replace_on_changes: tuple[str, ...]
    ignore_changes: tuple[str, ...]
    replace_with: tuple[str, ...]
    replacement_trigger: Any
    aliases: tuple[dict[str, Any], ...] = ()
    """Alias specs as sent: where the resource was known before."""
    provider: str = ""
    """The provider reference (`<provider URN>::<id>`) where one was given explicitly."""


@dataclass
class ProgramRun:
    stack: str
    resources: list[Recorded] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    secret_values: set[str] = field(default_factory=set)
    """Every password the run saw (mock-generated or configured), for leak scans."""
    error: BaseException | None = None
    namespace: dict[str, Any] = field(default_factory=dict)
    """The program's globals after it ran: its components, for tests of what they expose."""

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Recorded:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {[r.name for r in found]}"
        return found[0]

    def under(self, component: str, type_: str) -> list[Recorded]:
        """The `type_` resources whose parent is a `component` (a type token)."""
        parents = {r.urn for r in self.resources if r.type == component}
        return [r for r in self.of_type(type_) if r.parent in parents]

    def one_under(self, component: str, type_: str) -> Recorded:
        found = self.under(component, type_)
        assert len(found) == 1, f"expected one {type_} under {component}, found {found}"
        return found[0]

    def migration_config_maps(self) -> list[Recorded]:
        return self.under("tradestream:database:MigrationJob", "kubernetes:core/v1:ConfigMap")

    def flyway_job(self) -> Recorded:
        """The migration Job (the grants and backup Jobs are other components')."""
        return self.one_under("tradestream:database:MigrationJob", "kubernetes:batch/v1:Job")

    def grants_job(self) -> Recorded:
        return self.one_under("tradestream:database:RoleGrants", "kubernetes:batch/v1:Job")

    def by_urn(self, urn: str) -> Recorded:
        return next(r for r in self.resources if r.urn == urn)

    def named(self, name: str) -> Recorded:
        return next(r for r in self.resources if r.name == name)


class _Mocks(pulumi.runtime.Mocks):
    """Provider stand-ins: return what a provider computes, never what the test expects."""

    def __init__(self, run: ProgramRun) -> None:
        self._run = run

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            password = f"gen-{args.name}-{len(self._run.secret_values):04d}-Zq8"
            self._run.secret_values.add(password)
            state["result"] = password
        elif args.typ.startswith("kubernetes:") and not (state.get("metadata") or {}).get("name"):
            # Auto-naming, as the provider does it: the resource name and a random suffix
            # (here derived from the inputs, so runs compare).
            suffix = hashlib.sha256(repr(sorted(args.inputs.items())).encode()).hexdigest()[:8]
            state["metadata"] = {**(state.get("metadata") or {}), "name": f"{args.name}-{suffix}"}
        elif args.typ == "kubernetes:helm.sh/v3:Release":
            state["status"] = {
                "name": args.inputs.get("name", args.name),
                "namespace": args.inputs.get("namespace", "default"),
                "status": "deployed",
                "version": 1,
            }
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: _Mocks, run: ProgramRun) -> None:
        super().__init__(mocks)
        self._run = run

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            timeouts = request.customTimeouts
            trigger = json_format.MessageToDict(request.replacement_trigger)
            self._run.resources.append(
                Recorded(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    custom=request.custom,
                    inputs=unwrap_secrets(rpc.deserialize_properties(request.object)),
                    outputs=unwrap_secrets(rpc.deserialize_properties(response.object)),
                    wire=json_format.MessageToDict(request.object),
                    parent=request.parent,
                    dependencies=tuple(request.dependencies),
                    delete_before_replace=request.deleteBeforeReplace,
                    protect=request.protect,
                    retain_on_delete=request.retainOnDelete,
                    custom_timeouts={
                        k: v
                        for k, v in {
                            "create": timeouts.create,
                            "update": timeouts.update,
                            "delete": timeouts.delete,
                        }.items()
                        if v
                    },
                    replace_on_changes=tuple(request.replaceOnChanges),
                    ignore_changes=tuple(request.ignoreChanges),
                    replace_with=tuple(request.replace_with),
                    replacement_trigger=trigger if trigger != {} else None,
                    aliases=tuple(json_format.MessageToDict(a) for a in request.aliases),
                    provider=request.provider,
                )
            )
        return response


def stack_settings(stack: str) -> Settings:
    """A committed stack file's settings, as every tool reads them: what a test of that file
    compares with, rather than a value copied from it."""
    return read_stack_file(ROOT, stack).settings


def stack_config(stack: str, root: Path = ROOT) -> dict[str, str]:
    """A stack file's config as the CLI hands it to the program, read as every tool reads it
    (the quoted form the CLI writes, `"30"`, `"false"`, and objects alike); a secure value is
    stood in for, and a run gets its secrets from `secrets` (see `run_program`)."""
    return {key: value for key, (value, _) in _stack_file(stack, root).items()}


def _stack_file(stack: str, root: Path) -> dict[str, tuple[str, bool]]:
    """Every key of a stack file: its value as the CLI hands it over, and whether it is stored
    encrypted (`secure:`, or an object holding such values)."""
    config = load_document(stack_path(root, stack)).get("config") or {}
    return {str(key): cli_value(value) for key, value in config.items()}


def _resolve(value: Any) -> tuple[Any, bool]:
    output = value if isinstance(value, pulumi.Output) else pulumi.Output.from_input(value)
    resolved = _sync_await(output.future())
    return resolved, bool(_sync_await(output.is_secret()))


def run_program(
    stack: str,
    config: Mapping[str, str | None] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> ProgramRun:
    """Run `__main__.py` for a stack file, with `config` overrides (None removes a key).

    Without `secrets`, the run gets stand-ins for the secrets the stack calls for, as an
    operator would have set them with `pulumi config set --secret`. A value the file stores
    encrypted stays a secret, stood in for.
    """
    read = _stack_file(stack, ROOT)
    values = for_flavor(
        {key: value for key, (value, _) in read.items()}, (config or {}).get("databaseFlavor")
    )
    for key, value in (config or {}).items():
        fq = f"{PROJECT}:{key}"
        if value is None:
            values.pop(fq, None)
        else:
            values[fq] = value
    overridden = {f"{PROJECT}:{key}" for key in config or {}}
    encrypted = {key for key, (_, secret) in read.items() if secret and key not in overridden}
    return run_config(stack, values, secrets, encrypted=encrypted)


def for_flavor(values: dict[str, str], flavor: str | None) -> dict[str, str]:
    """A stack file's values as a user switching it to `flavor` leaves them: without the keys
    only the other flavors read (the program refuses those)."""
    if flavor is None:
        return values
    keys = declared_keys()
    kept = {}
    for fq, value in values.items():
        k = keys.get(fq.removeprefix(f"{PROJECT}:"))
        readers = k.spec.flavors if k is not None else None
        if readers is None or flavor in {f.value for f in readers}:
            kept[fq] = value
    return kept


def run_config(
    stack: str,
    values: Mapping[str, str],
    secrets: Mapping[str, str] | None = None,
    *,
    encrypted: Iterable[str] = (),
) -> ProgramRun:
    """Run `__main__.py` as stack `stack` with exactly `values` (fully-qualified keys), read
    from no stack file; `secrets` as in `run_program`; `encrypted`: more fully-qualified keys
    handed over as secrets, as the CLI does for values it stores encrypted."""
    values = dict(values)
    if secrets is None:
        secrets = {k: MOCK_CONFIG_SECRETS[k] for k in required_secrets(values)}
    secret_keys = [f"{PROJECT}:{k}" for k in secrets]
    secret_keys += [key for key in encrypted if key in values and key not in secret_keys]
    values.update({f"{PROJECT}:{k}": v for k, v in secrets.items()})
    run = ProgramRun(stack=stack, secret_values=set(secret_leaves(secrets.values())))
    contextvars.Context().run(_run_isolated, run, values, secret_keys)
    return run


def secret_leaves(values: Iterable[str]) -> Iterator[str]:
    """Every secret string for leak scans: a value itself, or each value of an object secret
    (set with `--secret --path`, handed over as JSON)."""
    for value in values:
        try:
            document = json.loads(value)
        except ValueError:
            document = None
        if isinstance(document, dict):
            yield from (str(leaf) for leaf in document.values())
        else:
            yield value


def _run_isolated(run: ProgramRun, values: dict[str, str], secret_keys: list[str]) -> None:
    mocks = _Mocks(run)
    pulumi.runtime.set_mocks(
        mocks,
        project=PROJECT,
        stack=run.stack,
        preview=False,
        monitor=_RecordingMonitor(mocks, run),
    )
    pulumi.runtime.set_all_config(values, secret_keys)

    def program() -> None:
        run.namespace = runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    try:
        _sync_await(run_pulumi_func(program))
    except Exception as error:  # handed to the test to assert on
        run.error = error
        return
    stack = get_root_resource()
    assert stack is not None
    for name, value in getattr(stack, "outputs", {}).items():
        resolved, is_secret = _resolve(value)
        run.outputs[name] = resolved
        if is_secret:
            run.secret_outputs.add(name)


def is_secret(wire: Any) -> bool:
    return isinstance(wire, dict) and wire.get(SECRET_SIG) == _SECRET_VALUE


def unwrap_secrets(value: Any) -> Any:
    """The plain value behind any secret wrappers, for assertions on content."""
    if is_secret(value):
        return unwrap_secrets(value.get("value"))
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def plain_strings(wire: Any) -> Iterator[str]:
    """Every string in a wire value that is NOT inside a secret wrapper."""
    if isinstance(wire, dict):
        if is_secret(wire):
            return
        for key, value in wire.items():
            yield str(key)
            yield from plain_strings(value)
    elif isinstance(wire, list):
        for item in wire:
            yield from plain_strings(item)
    elif isinstance(wire, str):
        yield wire
