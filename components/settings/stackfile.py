"""The one reader of a committed stack file (`stacks/Pulumi.<stack>.yaml`), for every tool.

The program itself gets its config from the Pulumi CLI (`runtime.py`); the tools around it
(deploy, the rehearsal, the review, the migrations lint, the local set-up) read the committed
file here, into the same typed `Settings`, with the same rules. Values are taken as the CLI
would hand them to the program (`false` and `"false"` alike), and what is stored encrypted
(`secure:`) is stood in for: a tool never needs a secret's value, only that it is set.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from components.settings.declarations import PROJECT, STACK_CONFIG_DIR
from components.settings.keys import Settings
from components.settings.parsing import SettingsError, parse_settings

ENCRYPTED: Final = "<encrypted>"
"""Stands for a value stored encrypted (`secure:`), which a tool does not decrypt."""

SALT_KEY: Final = "encryptionsalt"
"""Where the CLI keeps the salt of a stack's passphrase in its stack file."""
FILE_KEYS: Final = frozenset({"config", SALT_KEY, "secretsprovider", "encryptedkey", "environment"})
"""The top-level keys of a stack file the Pulumi CLI reads (its ProjectStack); it ignores
any other silently, so a key meant for `config:` but not indented under it would change
nothing and be refused by no one."""


@dataclass(frozen=True)
class StackFile:
    """A committed stack file, read and checked."""

    stack: str
    path: Path
    values: Mapping[str, str]
    """Every key as the CLI hands it to the program (fully qualified), secure values stood
    in for by ENCRYPTED."""
    secret_keys: frozenset[str]
    settings: Settings
    salt: str | None = None
    """The committed `encryptionsalt:`, made with the stack's passphrase; None when absent."""

    def provider(self, key: str) -> str | None:
        """A provider's key (such as `kubernetes:context`), as set in the file."""
        return self.values.get(key)


def stack_path(root: Path, stack: str) -> Path:
    return root / STACK_CONFIG_DIR / f"Pulumi.{stack}.yaml"


def stack_names(root: Path) -> list[str]:
    """The stacks that have a committed file."""
    folder = root / STACK_CONFIG_DIR
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in folder.glob("Pulumi.*.yaml"))


def read_stack_file(root: Path, stack: str) -> StackFile:
    """`stacks/Pulumi.<stack>.yaml` -> typed settings, or a SettingsError naming the file, the
    line or key, the value and the fix. Secrets that are not set are not required here: a
    tool reads what is committed, and a deploy checks the rest."""
    path = stack_path(root, stack)
    source = f"{STACK_CONFIG_DIR}/{path.name}"
    document = load_document(path, source)
    if problems := misplaced_problems(root, stack):
        raise SettingsError(problems, source)
    stray = {str(key): value for key, value in document.items() if str(key) not in FILE_KEYS}
    if stray:
        raise SettingsError(
            [
                f"{key}: {cli_value(value)[0]!r} is outside `config:`, where the Pulumi CLI "
                f"ignores it (a stack file's top-level keys are {', '.join(sorted(FILE_KEYS))})"
                f"; indent it under `config:` as `  {qualified(key)}: ...`, or delete it"
                for key, value in stray.items()
            ],
            source,
        )
    config = document.get("config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise SettingsError([f"config: is {type(config).__name__}, not a mapping of keys"], source)
    values: dict[str, str] = {}
    secret_keys: set[str] = set()
    written: dict[str, str] = {}
    twice: list[str] = []
    for key, value in config.items():
        name = qualified(str(key))
        if name in written:
            twice.append(
                f"{name}: is set twice, as `{written[name]}` and as `{key}` (a key without "
                "a namespace is the project's); the Pulumi CLI would take the last one "
                "silently: keep one of them"
            )
        written[name] = str(key)
        shown, secret = cli_value(value)
        values[name] = shown
        if secret:
            secret_keys.add(name)
    if twice:
        raise SettingsError(twice, source)
    try:
        settings = parse_settings(values, frozenset(secret_keys), require_secrets=False)
    except SettingsError as error:
        raise SettingsError(error.problems, source) from None
    salt = document.get(SALT_KEY)
    return StackFile(
        stack, path, values, frozenset(secret_keys), settings, str(salt) if salt else None
    )


def misplaced_files(root: Path, stack: str) -> list[Path]:
    """Files named like the stack's file that the Pulumi CLI never reads: beside Pulumi.yaml
    (its `stackConfigDir` is stacks/), ending in `.yml` (the CLI takes Pulumi.yaml's own
    extension), or spelt in another case. What a person writes there changes nothing."""
    wanted = stack_path(root, stack)
    names = {f"pulumi.{stack}.yaml".lower(), f"pulumi.{stack}.yml".lower()}
    found: list[Path] = []
    for folder in (root, root / STACK_CONFIG_DIR):
        if folder.is_dir():
            found.extend(
                f for f in sorted(folder.iterdir()) if f.name.lower() in names and f != wanted
            )
    return found


def misplaced_problems(root: Path, stack: str) -> list[str]:
    """One problem per misplaced file, naming the values it sets that the stack's file does
    not, so that the change is not lost silently."""
    misplaced = misplaced_files(root, stack)
    if not misplaced:
        return []
    path = stack_path(root, stack)
    real = f"{STACK_CONFIG_DIR}/{path.name}"
    committed = (
        {qualified(str(k)): cli_value(v)[0] for k, v in _config(load_document(path, real)).items()}
        if path.exists()
        else {}
    )
    problems = []
    for stray in misplaced:
        name = str(stray.relative_to(root))
        try:
            other = _config(load_document(stray, name))
        except SettingsError:
            other = {}
        lost = [
            f"{qualified(str(key))}: {cli_value(value)[0]!r} "
            f"({real}: {committed.get(qualified(str(key)), '(not set)')!r})"
            for key, value in other.items()
            if committed.get(qualified(str(key))) != cli_value(value)[0]
        ]
        sets = f"; it sets {', '.join(lost)}" if lost else ""
        problems.append(
            f"{name}: the Pulumi CLI does not read this file (it reads {real} alone: "
            "Pulumi.yaml's stackConfigDir, with Pulumi.yaml's extension), so nothing in it "
            f"reaches the stack{sets}. Move the change into {real}, then delete {name}"
        )
    return problems


def _config(document: Mapping[str, Any]) -> Mapping[str, Any]:
    config = document.get("config")
    return config if isinstance(config, dict) else {}


def cli_value(value: object) -> tuple[str, bool]:
    """A stack file's value as the CLI hands it to the program, whether the file quotes it as
    the CLI writes it (`"30"`, `"false"`) or not (`30`, `false`): scalars as strings, objects
    as compact JSON with sorted keys, secure values stood in for; and whether it is stored
    encrypted."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return ENCRYPTED, True
    if isinstance(value, (dict, list)):
        return _json(_stood_in(value)), _has_secure(value)
    if isinstance(value, bool):
        return ("true" if value else "false"), False
    if value is None:
        return "", False
    return str(value), False


def _json(value: object) -> str:
    """JSON as the CLI marshals an object value (Go's encoding/json: sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _has_secure(value: object) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_has_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secure(v) for v in value)
    return False


def _stood_in(value: Any) -> Any:  # noqa: ANN401 (YAML data)
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return ENCRYPTED
        return {k: _stood_in(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stood_in(v) for v in value]
    return value


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{key!r} is set twice (lines {seen[key]} and {line}); keep one of them",
                key_node.start_mark,
            )
        seen[key] = line
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_document(path: Path, source: str | None = None) -> dict[str, Any]:
    """A stack file's YAML, or a SettingsError with the line and column and what is wrong."""
    source = source or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(["the file does not exist"], source) from None
    except UnicodeDecodeError as error:
        raise SettingsError(
            [f"byte {error.start} is not UTF-8; save the file as UTF-8"], source
        ) from None
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as error:
        # Where the broken construct starts (an unclosed bracket), else where it broke.
        mark = error.context_mark or error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = "; ".join(filter(None, (error.context, error.problem))) or "not valid YAML"
        if error.context_mark and error.problem_mark:
            what += f" (at line {error.problem_mark.line + 1})"
        raise SettingsError(
            [f"{where}{what}; fix the YAML (a `key: value` per line under `config:`)"], source
        ) from None
    except yaml.YAMLError as error:
        raise SettingsError([f"not valid YAML: {error}"], source) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise SettingsError(
            [f"the file holds a {type(document).__name__}, not `config:` and its keys"], source
        )
    return document


def project_key(key: str) -> str:
    return f"{PROJECT}:{key}"


def qualified(key: str) -> str:
    """A stack file's key as the CLI reads it: one without a namespace is the project's."""
    return key if ":" in key else project_key(key)
