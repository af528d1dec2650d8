"""The committed stack files are in the form the Pulumi CLI writes: `pulumi stack init` and
`pulumi config set KEY SAME_VALUE` leave each of them as committed, for every key, so that a
one-key change is a one-line diff. And every tool reads each value as the CLI hands it to the
program.

The real CLI (the one `make` uses) runs in a project of the test's own: a copy of Pulumi.yaml
and of each committed stack file with its salt stripped, a file backend and a passphrase of
the test's. The keys come from the files, so the test holds for whatever the stacks hold; an
object is set leaf by leaf with `--path` and the leaf's type. A secure value cannot be set to
the same value (only the stack's own passphrase reads it, and the CLI encrypts with a fresh
nonce each time): it must survive the other keys' `config set` byte for byte, then it is set
again with `--secret` to a stand-in, and only its ciphertext may change.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.settings.declarations import STACK_CONFIG_DIR
from components.settings.stackfile import cli_value, load_document, read_stack_file, stack_names
from deploy.engine import ROOT, find_engine
from tests import cli_form

pytestmark = pytest.mark.engine

SALT = re.compile(r"^encryptionsalt:.*\n?", re.MULTILINE)
CIPHERTEXT = re.compile(r"(\bsecure: )\S+")
STAND_IN = "stand-in-for-a-secret"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

FILES = {
    name: stack_path.read_text(encoding="utf-8")
    for name, stack_path in (
        (name, ROOT / STACK_CONFIG_DIR / f"Pulumi.{name}.yaml") for name in stack_names(ROOT)
    )
}
"""Every committed stack file, and the example of tests/cli_form.py that the readers' tests
use, by stack name."""
CASES = [*((name, name, text) for name, text in FILES.items())]
CASES.append(("cli_form", cli_form.STACK, cli_form.TEXT))


def without_salt(text: str) -> str:
    return SALT.sub("", text)


@dataclass(frozen=True)
class Setting:
    """One `pulumi config set` that stores a key (or an object's leaf) as the file has it."""

    key: str
    value: str
    path: bool = False
    type: str | None = None
    secret: bool = False

    def args(self, stack: str) -> list[str]:
        flags = ["--path"] * self.path + ["--secret"] * self.secret
        if self.type is not None:
            flags += ["--type", self.type]
        return ["config", "set", "--stack", stack, *flags, "--", self.key, self.value]

    def shown(self, stack: str) -> str:
        return "pulumi " + " ".join(_quote(arg) for arg in self.args(stack) if arg != "--")


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w:./@=-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def settings_of(config: dict[str, Any]) -> list[Setting]:
    """The commands that set every key of `config` to the value it holds."""
    found: list[Setting] = []
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            found.append(Setting(key, STAND_IN, secret=True))
        elif isinstance(value, (dict, list)):
            found += [
                _leaf(f"{key}{path}", leaf) for path, leaf in _leaves(value) if leaf is not None
            ]
        else:
            found.append(Setting(key, cli_value(value)[0]))
    return found


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and set(value) != {"secure"}:
        for name, item in value.items():
            part = f".{name}" if IDENTIFIER.fullmatch(str(name)) else f"[{json.dumps(str(name))}]"
            yield from _leaves(item, path + part)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def _leaf(key: str, leaf: Any) -> Setting:
    """With --path the CLI types "true" and "30" itself, so each leaf says its type."""
    if isinstance(leaf, dict):
        return Setting(key, STAND_IN, path=True, secret=True)
    if isinstance(leaf, bool):
        return Setting(key, "true" if leaf else "false", path=True, type="bool")
    if isinstance(leaf, int):
        return Setting(key, str(leaf), path=True, type="int")
    if isinstance(leaf, float):
        return Setting(key, repr(leaf), path=True, type="float")
    return Setting(key, str(leaf), path=True, type="string")


@dataclass
class Project:
    """A project of the test's own where the real CLI runs one stack."""

    root: Path
    stack: str
    env: dict[str, str]
    pulumi: Path

    @property
    def stack_file(self) -> Path:
        return self.root / STACK_CONFIG_DIR / f"Pulumi.{self.stack}.yaml"

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [str(self.pulumi), "--non-interactive", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert done.returncode == 0, f"pulumi {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def text(self) -> str:
        return without_salt(self.stack_file.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pulumi() -> Path:
    return find_engine(local_provider=False).pulumi


def init(tmp_path: Path, pulumi: Path, stack: str, text: str) -> Project:
    """The project, with the stack created in it as `pulumi stack init` does."""
    (tmp_path / STACK_CONFIG_DIR).mkdir(parents=True)
    (tmp_path / "Pulumi.yaml").write_bytes((ROOT / "Pulumi.yaml").read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env |= {
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "round-trip",
        "PULUMI_HOME": str(tmp_path / "home"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
    }
    (tmp_path / "state").mkdir()
    project = Project(tmp_path, stack, env, pulumi)
    project.stack_file.write_text(without_salt(text), encoding="utf-8")
    project.run("stack", "init", stack)
    return project


def diff(name: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), name, "as the CLI wrote"
    )
    return "".join(lines)


@pytest.mark.parametrize(
    ("stack", "text"), [(s, t) for _, s, t in CASES], ids=[c[0] for c in CASES]
)
def test_init_and_config_set_of_every_key_leave_the_file_as_committed(
    tmp_path: Path, pulumi: Path, stack: str, text: str
) -> None:
    name = f"{STACK_CONFIG_DIR}/Pulumi.{stack}.yaml"
    committed = without_salt(text)
    project = init(tmp_path, pulumi, stack, text)
    assert project.text() == committed, (
        f"`pulumi stack init {stack}` rewrites {name}; commit the form the CLI writes "
        f"(numbers and booleans quoted):\n{diff(name, committed, project.text())}"
    )
    config = load_document(project.stack_file).get("config") or {}
    settings = settings_of(config)
    set_keys = {s.key.split(".")[0].split("[")[0] for s in settings}
    assert set_keys == set(config), f"keys no command sets: {set(config) - set_keys}"
    for setting in (s for s in settings if not s.secret):
        project.run(*setting.args(stack))
        assert project.text() == committed, (
            f"`{setting.shown(stack)}` rewrites {name}; commit the form the CLI writes:\n"
            f"{diff(name, committed, project.text())}"
        )
    masked = CIPHERTEXT.sub(r"\1<ciphertext>", committed)
    for setting in (s for s in settings if s.secret):
        project.run(*setting.args(stack))
        now = CIPHERTEXT.sub(r"\1<ciphertext>", project.text())
        assert now == masked, (
            f"`{setting.shown(stack)}` moves or reshapes a secret of {name}:\n"
            f"{diff(name, masked, now)}"
        )


@pytest.mark.parametrize(
    ("stack", "text"), [(s, t) for _, s, t in CASES], ids=[c[0] for c in CASES]
)
def test_the_tools_read_every_value_as_the_cli_hands_it_to_the_program(
    tmp_path: Path, pulumi: Path, stack: str, text: str
) -> None:
    project = init(tmp_path, pulumi, stack, text)
    handed: dict[str, dict[str, Any]] = json.loads(
        project.run("config", "--json", "--stack", stack)
    )
    read = read_stack_file(project.root, stack)
    assert set(read.values) <= set(handed)
    for key, value in read.values.items():
        cli = handed[key]
        assert (key in read.secret_keys) == cli["secret"], key
        if cli["secret"]:
            continue
        if "objectValue" in cli:
            assert json.loads(value) == cli["objectValue"], key
        assert value == cli["value"], (
            f"{key}: the tools read {value!r}, the CLI hands {cli['value']!r}"
        )
