"""The real Pulumi engine, driven through the Automation API.

The program runs inline, inside this Python process, so no Pulumi language host is needed:
only the Pulumi CLI and the kubernetes resource provider. Both are found on PATH, or where
`scripts/install-engine.sh` caches them.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from pulumi import automation as auto

from components.settings import PROJECT, STACK_CONFIG_DIR
from components.settings.stackfile import (
    SALT_KEY,
    cli_value,
    load_document,
    qualified,
    stack_path,
)

ROOT = Path(__file__).resolve().parents[1]
INSTALL_SCRIPT = ROOT / "scripts" / "install-engine.sh"
STACK_DIR = STACK_CONFIG_DIR


class EngineError(RuntimeError):
    """The engine or one of its parts is missing; the message says how to install it."""


@dataclass(frozen=True)
class Engine:
    """The Pulumi CLI, and the kubernetes provider when the CLI should not download one."""

    pulumi: Path
    provider: Path | None

    @property
    def provider_note(self) -> str | None:
        """Why the provider's version may differ from the one the Python SDK asks for."""
        if self.provider is None:
            return None
        match = re.search(r"-v([0-9][^/]*)/", self.provider.as_posix())
        version = match.group(1) if match else "unknown"
        return (
            f"kubernetes provider {version} from {self.provider} (built from the Go module "
            f"proxy); the pinned Python SDK pulumi-kubernetes asks for {_sdk_version()}"
        )


def _sdk_version() -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return version("pulumi-kubernetes")


def cached_path(part: str) -> Path:
    """Where scripts/install-engine.sh puts `part` (pulumi, provider or control-plane)."""
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT), "path", part], capture_output=True, text=True, check=True
    )
    return Path(result.stdout.strip())


def find_engine(*, local_provider: bool) -> Engine:
    """The CLI from PATH or the cache; with `local_provider`, the cached provider too."""
    on_path = shutil.which("pulumi")
    cached = cached_path("pulumi")
    # scripts/install-engine.sh keeps an installed CLI only when it is recent enough.
    pulumi = Path(on_path) if on_path else cached if cached.is_file() else None
    if pulumi is None:
        raise EngineError(
            f"the Pulumi CLI is not installed; run: bash {INSTALL_SCRIPT.relative_to(ROOT)} "
            "pulumi (or install it from https://www.pulumi.com/docs/iac/download-install/)"
        )
    provider = None
    if local_provider:
        provider = cached_path("provider")
        if not provider.is_file():
            raise EngineError(
                "the kubernetes provider is not built; run: "
                f"bash {INSTALL_SCRIPT.relative_to(ROOT)} provider"
            )
    return Engine(pulumi, provider)


def program() -> None:
    """The project's own `__main__.py`, exactly as `pulumi up` would run it."""
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


@dataclass(frozen=True)
class Backend:
    """Where a stack's state lives and the passphrase its secrets are encrypted with."""

    url: str
    passphrase_file: Path | None = None
    """A passphrase made for this backend alone (see `local_folder`); None: the stack's own,
    given in the environment as the CLI reads it (PULUMI_CONFIG_PASSPHRASE or
    PULUMI_CONFIG_PASSPHRASE_FILE)."""

    @classmethod
    def local_folder(cls, folder: Path, stack: str, *, own_passphrase: bool = True) -> Backend:
        """A file backend in `folder`; with `own_passphrase`, a random passphrase per stack kept
        beside it."""
        folder.mkdir(parents=True, exist_ok=True)
        if not own_passphrase:
            return cls(f"file://{folder.resolve()}")
        passphrase = folder / f"{stack}.passphrase"
        if not passphrase.exists():
            fd = os.open(passphrase, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(os.urandom(24).hex())
        return cls(f"file://{folder.resolve()}", passphrase)

    def env(self) -> dict[str, str]:
        """The CLI's environment for this backend. A passphrase of its own is handed over as
        PULUMI_CONFIG_PASSPHRASE, which wins over any passphrase the caller's environment holds
        (for another stack)."""
        env = {"PULUMI_BACKEND_URL": self.url}
        if self.passphrase_file is not None:
            env["PULUMI_CONFIG_PASSPHRASE"] = self.passphrase_file.read_text("utf-8").strip()
        elif given := os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
            # The CLI runs in the workspace copy; a relative path is the caller's.
            env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(Path(given).resolve())
        return env


def prepare_workspace(
    work_dir: Path,
    stack: str,
    overrides: Mapping[str, str] | None = None,
    *,
    committed_salt: bool = False,
) -> Path:
    """A workspace that mirrors the repository (Pulumi.yaml, stacks/) outside it, so that
    running a stack never edits the committed file: the CLI writes into the stack file it
    runs with (its own form of every value, the salt it makes, secrets set later).

    With `committed_salt` (the stack's own passphrase) the copy carries the committed salt
    and the values committed encrypted, and the salt the workspace kept only when none is
    committed. Without it (a passphrase of the workspace's own) the copy keeps the salt the
    workspace made and the secrets set in it, and none of the committed ciphertext, which
    that passphrase cannot read.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "Pulumi.yaml", work_dir / "Pulumi.yaml")
    committed = load_document(stack_path(ROOT, stack), f"{STACK_DIR}/Pulumi.{stack}.yaml")
    target = stack_path(work_dir, stack)
    kept = load_document(target) if target.exists() else {}
    config = {
        key: value
        for key, value in _mapping(committed.get("config")).items()
        if committed_salt or not cli_value(value)[1]
    }
    config.update({qualified(key): str(value) for key, value in (overrides or {}).items()})
    if not committed_salt:
        for key, value in _mapping(kept.get("config")).items():
            if cli_value(value)[1] and key not in config:
                config[key] = value
    document: dict[str, object] = {"config": config}
    salt = (committed.get(SALT_KEY) if committed_salt else None) or kept.get(SALT_KEY)
    if salt:
        document = {SALT_KEY: salt, **document}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return work_dir


def _mapping(value: object) -> dict[str, object]:
    return {str(key): item for key, item in value.items()} if isinstance(value, dict) else {}


def open_stack(
    stack: str,
    work_dir: Path,
    backend: Backend,
    engine: Engine,
    *,
    kubeconfig: Path | None = None,
    plugins: Path | None = None,
) -> auto.Stack:
    """Create or select `stack` in `work_dir`, running the program inline; `plugins`: a
    folder of resource providers found before any other (the machine-local stand-ins)."""
    path = os.environ.get("PATH", "")
    env = {**backend.env(), "PULUMI_SKIP_UPDATE_CHECK": "true"}
    if engine.provider is not None:
        # A provider binary on PATH is used whatever version the SDK asks for.
        path = f"{engine.provider.parent}{os.pathsep}{path}"
        env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
    if plugins is not None:
        path = f"{plugins}{os.pathsep}{path}"
    if path != os.environ.get("PATH", ""):
        env["PATH"] = path
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    options = auto.LocalWorkspaceOptions(
        work_dir=str(work_dir),
        env_vars=env,
        pulumi_command=auto.PulumiCommand(
            root=str(engine.pulumi.parent.parent), skip_version_check=True
        ),
    )
    return auto.create_or_select_stack(
        stack_name=stack, project_name=PROJECT, program=program, opts=options
    )
