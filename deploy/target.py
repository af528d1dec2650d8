"""Which stack a command runs, and where: the workspace copy, the state backend and passphrase,
the cluster; for `local`, the machine's own cluster and database, started first."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pulumi import automation as auto

from components.settings.stackfile import StackFile
from deploy.engine import ROOT, Backend, Engine, find_engine, open_stack, prepare_workspace
from deploy.kube import Kube
from deploy.passphrase import BACKEND_VARIABLE, decide

if TYPE_CHECKING:
    from types import ModuleType

STATE = ROOT / ".pulumi-state"
LOCAL: Final = "local"
LOCAL_STACKS: Final = (LOCAL, "local-cnpg")
"""The machine-local stacks (standins.localstack.STACKS). Their set-up is imported only to run
it, so the commands CI runs for the other stacks need nothing beyond requirements.txt."""


def local_setup() -> ModuleType:
    """standins.localstack, which needs the stand-ins' own dependencies (psycopg)."""
    from standins import localstack  # noqa: PLC0415

    return localstack


@dataclass(frozen=True)
class Target:
    """A stack ready to run, and how to read its Flyway log."""

    name: str
    stack: auto.Stack
    is_local: bool
    kubeconfig: Path | None = None
    """The local stack's cluster; other stacks use KUBECONFIG and their kubernetes:context."""
    context: str | None = None

    def kube(self) -> Kube:
        return Kube.connect(self.kubeconfig, self.context)


def open_target(
    name: str, *, start: bool, stack_file: StackFile, environ: Mapping[str, str] | None = None
) -> Target:
    """Select the stack in a workspace copy outside the committed files, with the passphrase
    and salt `passphrase.decide` chooses (refused before anything is written or started); for
    `local`, start (or find) its database and cluster when `start`."""
    environ = os.environ if environ is None else environ
    is_local = name in LOCAL_STACKS
    engine = find_engine(local_provider=is_local)
    shared_backend = bool(environ.get(BACKEND_VARIABLE)) and not is_local
    secrets = decide(
        name,
        salt=stack_file.salt,
        encrypted=stack_file.secret_keys,
        environ=environ,
        machine_local=is_local,
        shared_backend=shared_backend,
        pulumi=pulumi_command(engine),
    )
    if is_local:
        local = local_setup()
        state = local.state_dir(name)
        workspace = prepare_workspace(state / "workspace", name)
        kubeconfig = local.start_cluster() if start else local.kubeconfig()
        password = local.prepare(name, stack_file.settings) if start else None
        stack = open_stack(
            name,
            workspace,
            Backend.local_folder(state / "state", name),
            engine,
            kubeconfig=kubeconfig,
            plugins=local.plugins(state),
        )
        if password is not None:
            stack.set_config("migratorPassword", auto.ConfigValue(password, secret=True))
        if engine.provider_note:
            print(f"note: {engine.provider_note}")
        return Target(name, stack, is_local=True, kubeconfig=kubeconfig)
    if shared_backend:
        backend = Backend(environ[BACKEND_VARIABLE])
    else:
        backend = Backend.local_folder(STATE, name, own_passphrase=secrets.own_passphrase)
    # One workspace per passphrase: the salt each keeps belongs to it.
    kind = "own-passphrase" if secrets.own_passphrase else "stack-passphrase"
    workspace = prepare_workspace(
        STATE / "workspaces" / name / kind, name, committed_salt=secrets.committed_salt
    )
    context = stack_file.provider("kubernetes:context")
    return Target(
        name, open_stack(name, workspace, backend, engine), is_local=False, context=context
    )


def pulumi_command(engine: Engine) -> str:
    """How to call the CLI in a command shown to the user: `pulumi` when it is on PATH."""
    return "pulumi" if shutil.which("pulumi") else str(engine.pulumi)
