"""Whose passphrase and which salt encrypt a stack's secrets: one decision per stack, the same
for CI and a laptop (README: "Passphrases and salts").

- The machine-local stack (`local`): a random passphrase made on first use and kept with its
  state, and the salt the CLI makes in the workspace copy beside it. Nothing is committed.
- Every other stack is shared. Its passphrase is its own (CI: the secret
  PULUMI_CONFIG_PASSPHRASE of the stack's GitHub environment; a laptop: the team's password
  manager), given as the CLI
  reads it, PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE. Its salt is committed
  in its stack file (`encryptionsalt:`), made once with that passphrase, so that what is set
  with `--secret` in the file opens for CI and every laptop alike. Against a shared backend
  (PULUMI_BACKEND_URL) both are required, else nothing runs. Without one, the stack runs as a
  sandbox of the clone in `.pulumi-state/`: with the stack's passphrase when it is given, else
  with a random one of the clone's, whose salt stays in the workspace copy; such a sandbox
  cannot read what the file holds encrypted.

Pure: the caller reads the stack file and the environment.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

from components.settings import STACK_CONFIG_DIR

PASSPHRASE_VARIABLES: Final = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")
BACKEND_VARIABLE: Final = "PULUMI_BACKEND_URL"
README_SECTION: Final = 'README: "Passphrases and salts"'


class SecretsError(RuntimeError):
    """The stack cannot run with the passphrase and salt at hand; the message says the fix.
    Raised before anything is written or started."""


@dataclass(frozen=True)
class Secrets:
    """How one run of a stack encrypts its secrets."""

    stack: str
    own_passphrase: bool
    """A random passphrase of this machine or clone; False: the stack's own, given in the
    environment."""
    committed_salt: bool
    """The run uses the committed salt and the values committed encrypted; False: the salt the
    workspace copy made, and none of the committed ciphertext."""


def ci_secret(stack: str) -> str:
    """Where CI holds `stack`'s passphrase: a secret of the stack's own GitHub environment."""
    return f"PULUMI_CONFIG_PASSPHRASE of the GitHub environment {stack}"


def salt_command(stack: str, pulumi: str = "pulumi") -> str:
    """The one-time command that writes `stack`'s salt into its stack file: `stack init` in a
    throwaway backend, so that only the file changes, whether or not the shared backend holds
    the stack already."""
    return (
        f'PULUMI_BACKEND_URL="file://$(mktemp -d)" {pulumi} stack init {stack} '
        "--secrets-provider passphrase"
    )


def decide(
    stack: str,
    *,
    salt: str | None,
    encrypted: Collection[str],
    environ: Mapping[str, str],
    machine_local: bool,
    shared_backend: bool,
    pulumi: str = "pulumi",
) -> Secrets:
    """The passphrase and salt of one run of `stack`, whose committed file has `salt` and the
    keys `encrypted` stored encrypted; or SecretsError naming the fix."""
    path = f"{STACK_CONFIG_DIR}/Pulumi.{stack}.yaml"
    if machine_local:
        if encrypted:
            raise SecretsError(
                f"{path} holds values stored encrypted ({', '.join(sorted(encrypted))}), but "
                f"the {stack} stack's passphrase is made on each machine and cannot read them. "
                "Remove them from the file; the local set-up gives the stack its secrets itself."
            )
        return Secrets(stack, own_passphrase=True, committed_salt=False)
    given = any(environ.get(name) for name in PASSPHRASE_VARIABLES)
    if shared_backend and not given:
        raise SecretsError(
            f"{stack} runs against the shared backend in {BACKEND_VARIABLE}, so it needs "
            f"{stack}'s own passphrase, the one its committed salt was made with: set "
            f"PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to it. CI holds it as "
            f"{ci_secret(stack)}; where the team keeps it: {README_SECTION}. "
            "Nothing was run."
        )
    if shared_backend and not salt:
        raise SecretsError(
            f"{path} has no encryptionsalt. The salt of {stack}'s secrets is made once with "
            f"{stack}'s passphrase and committed, so that CI and every laptop encrypt and "
            "decrypt them alike; without it each run would make a salt of its own. Nothing was "
            "run. Make it once, at the repository root with the passphrase in "
            "PULUMI_CONFIG_PASSPHRASE (the backend is a throwaway one, so only the stack file "
            "changes, by that one line), then commit the file:\n"
            f"    {salt_command(stack, pulumi)}"
        )
    if given:
        return Secrets(stack, own_passphrase=False, committed_salt=True)
    if encrypted:
        raise SecretsError(
            f"{path} holds values stored encrypted with {stack}'s passphrase "
            f"({', '.join(sorted(encrypted))}), and no passphrase is given: set "
            f"PULUMI_CONFIG_PASSPHRASE to {stack}'s passphrase ({README_SECTION}). Nothing "
            "was run."
        )
    return Secrets(stack, own_passphrase=True, committed_salt=False)


def passphrase_hint(stack: str, error: str) -> str | None:
    """What to do when the CLI says the passphrase is wrong for the salt it found."""
    if "incorrect passphrase" not in error:
        return None
    return (
        f"the passphrase given does not open the salt {stack} runs with (the committed one in "
        f"{STACK_CONFIG_DIR}/Pulumi.{stack}.yaml, or a sandbox's own): give {stack}'s "
        f"passphrase in PULUMI_CONFIG_PASSPHRASE ({README_SECTION})"
    )
