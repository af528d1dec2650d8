"""Raw stack config -> `Settings`, or every problem at once, each naming its key (pure).

Config values arrive as strings, exactly as the Pulumi CLI hands them to the program, and
are parsed strictly: an explicit `false` or `0` is a value, never "unset".
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from components.migrations.placeholders import name_problem as placeholder_name_problem
from components.settings.backup_rules import backup_secret_checks, required_backup_secrets
from components.settings.declarations import INT32_MAX, PROJECT, Secret
from components.settings.keys import DeclaredKey, Settings, declared_keys
from components.settings.rules import (
    credential_checks,
    cross_checks,
    placeholder_checks,
    required_secret_keys,
)

_T = TypeVar("_T")


def _parse_structured(
    key: str, raw: str, *, secret: bool, stored_secret: bool
) -> tuple[Any, list[str]]:
    """An object key's value and problems, refusing plain text where a secret is required
    (and a secret where the values are shown in the Job)."""
    fq = f"{PROJECT}:{key}"
    value, found = _parse_map(key, raw, secret=secret)
    if secret and not stored_secret:
        return None, [
            f"{fq}.{n}: is stored in plain text; set it with "
            f"`pulumi config set --secret --path '{key}.{n}' <value>`"
            for n, _ in value or (("<name>", ""),)
        ]
    if not secret and stored_secret:
        return None, [
            f"{fq}: holds a secret value; secret placeholders belong in "
            "flywaySecretPlaceholders: `pulumi config set --secret --path "
            "'flywaySecretPlaceholders.<name>' <value>`, then `pulumi config rm --path "
            f"'{key}.<name>'`"
        ]
    return value, found


def _parse_map(key: str, raw: str, *, secret: bool) -> tuple[Any, list[str]]:
    """An object config value (JSON, as the CLI passes it) -> sorted (name, value) pairs.

    Secret values are never shown in a message, only their names."""
    fq = f"{PROJECT}:{key}"
    example = f"pulumi config set{' --secret' if secret else ''} --path '{key}.<name>' <value>"
    try:
        document = json.loads(raw) if raw.strip() else {}
    except ValueError:
        document = None
    if not isinstance(document, dict):
        shown = "the value" if secret else json.dumps(raw)
        return None, [f"{fq}: {shown} is not an object of placeholder names to strings; {example}"]
    problems: list[str] = []
    seen: dict[str, str] = {}
    for name, value in sorted(document.items()):
        shown = "" if secret else f" = {json.dumps(value)}"
        if not isinstance(value, str):
            # `config set --path` stores 3 or true typed unless told `--type string`.
            command = example.replace("<name>", name)
            if not secret:
                command = command.replace("--path", "--type string --path")
                if isinstance(value, (bool, int, float)):
                    command = command.replace("<value>", json.dumps(value))
            problems.append(
                f"{fq}.{name}{shown}: must be a string: quote it in the stack file, or set it "
                f"with `{command}`"
            )
        if (problem := placeholder_name_problem(name)) is not None:
            fixed = re.sub(r"[^A-Za-z0-9_]", "_", name.encode("ascii", "replace").decode()) or "x"
            problems.append(
                f"{fq}.{name}{shown}: {json.dumps(name)} {problem}; rename the placeholder, "
                f"e.g. to {fixed!r}, in the migrations and in the stack file"
            )
        if (other := seen.setdefault(name.lower(), name)) != name:
            problems.append(
                f"{fq}.{name}: is the same placeholder as {other!r} (Flyway ignores case in "
                "placeholder names); keep one of them"
            )
    pairs = tuple((name, Secret(v) if secret else v) for name, v in sorted(document.items()))
    return (None if problems else pairs), problems


class SettingsError(ValueError):
    """Bad stack config; lists every problem, one per line, each naming its key."""

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        count = len(self.problems)
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"invalid stack configuration{where} ({count} problem{'s' * (count != 1)}):\n{lines}"
        )


def describe(k: DeclaredKey) -> str:
    t = k.type
    if t is bool:
        return "true or false"
    if t is int:
        if k.spec.maximum is not None:
            return f"an integer from {k.spec.minimum or 0} to {k.spec.maximum}"
        return f"an integer >= {k.spec.minimum}" if k.spec.minimum is not None else "an integer"
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return "one of " + ", ".join(m.value for m in t)
    if k.spec.pattern_hint:
        return k.spec.pattern_hint
    return "a string"


def _parse_value(k: DeclaredKey, raw: str) -> tuple[Any, str | None]:  # noqa: PLR0911 (one exit per type)
    """Parse one raw config string; returns (value, problem)."""
    t = k.type
    shown = json.dumps(raw)
    if t is bool:
        if raw in ("true", "false"):
            return raw == "true", None
        return None, f"{shown} is not {describe(k)}"
    if t is int:
        try:
            value = int(raw, 10)
        except ValueError:
            return None, f"{shown} is not {describe(k)}"
        if k.spec.minimum is not None and value < k.spec.minimum:
            return None, f"{shown} is out of range: must be {describe(k)}"
        if k.spec.maximum is not None and value > k.spec.maximum:
            return None, f"{shown} is out of range: must be {describe(k)}"
        if value > INT32_MAX:
            return None, (
                f"{shown} is out of range: must be {describe(k)} and at most {INT32_MAX}, "
                "the largest a Kubernetes field takes"
            )
        return value, None
    if isinstance(t, type) and issubclass(t, enum.Enum):
        for member in t:
            if member.value == raw:
                return member, None
        return None, f"{shown} is not allowed: must be {describe(k)}"
    if k.spec.pattern is not None and not re.match(k.spec.pattern, raw):
        return None, f"{shown} is not {describe(k)}"
    if k.spec.check is not None and (problem := k.spec.check(raw)) is not None:
        return None, f"{shown} {problem}"
    return raw, None


def _parse_secret(
    fq: str, name: str, raw: str, secret_keys: frozenset[str]
) -> tuple[Secret | None, str | None]:
    if fq not in secret_keys:
        return None, (
            f"{fq}: is stored in plain text; set it with "
            f"`pulumi config set --secret {name} <value>`"
        )
    if raw == "":
        return None, f"{fq}: is empty; set it with `pulumi config set --secret {name}`"
    return Secret(raw), None


def parse_settings(
    values: Mapping[str, str],
    secret_keys: frozenset[str] = frozenset(),
    *,
    require_secrets: bool = True,
) -> Settings:
    """Build `Settings` from raw config (fully-qualified keys -> strings, as the CLI passes).

    Keys of other namespaces (providers such as `kubernetes:`) are ignored; an unknown key in
    this project's namespace is an error, since it is almost always a typo. Without
    `require_secrets` (tools that read a committed stack file, whose secrets may be set
    elsewhere) a secret the settings call for may be missing.
    """
    keys = declared_keys()
    prefix = f"{PROJECT}:"
    problems: list[str] = _foreign_namespaces(values)
    parsed: dict[str, Any] = {}
    secret_values: set[str] = set()
    for fq, raw in sorted(values.items()):
        if not fq.startswith(prefix):
            continue
        name = fq[len(prefix) :]
        k = keys.get(name)
        if k is None:
            close = difflib.get_close_matches(name, keys, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "see the configuration reference"
            problems.append(f"{fq}: unknown key; {hint} (remove it with `pulumi config rm {name}`)")
            continue
        if k.spec.structured:
            value, found = _parse_structured(
                name, raw, secret=k.spec.secret, stored_secret=fq in secret_keys
            )
            problems.extend(found)
            parsed.update({} if found else {name: value})
            continue
        if k.spec.secret:
            secret, problem = _parse_secret(fq, name, raw, secret_keys)
            problems.extend([problem] if problem else [])
            parsed.update({name: secret} if secret else {})
            continue
        if not isinstance(raw, str):
            problems.append(f"{fq}: {json.dumps(raw)} must be {describe(k)}")
            continue
        value, problem = _parse_value(k, raw)
        if problem is not None:
            if fq in secret_keys:  # set as a secret: never shown, even when wrong
                problem = problem.replace(json.dumps(raw), "the value (set as a secret)")
            problems.append(f"{fq}: {problem} (default: {show_default(k)})")
        else:
            parsed[name] = value
            if fq in secret_keys and raw:
                secret_values.add(raw)
    problems.extend(
        f"{prefix}{name}: is not set; every stack sets it, since a default could touch another "
        f"stack's resources (`pulumi config set {name} <value> --stack <stack>`; "
        f"{describe(k)})"
        for name, k in keys.items()
        if k.spec.required and name not in parsed and not any(name in p for p in problems)
    )
    if problems:
        raise SettingsError(problems)
    settings = dataclasses.replace(
        _build(Settings, parsed),
        explicit=frozenset(parsed),
        secret_values=frozenset(secret_values),
    )
    problems.extend(cross_checks(settings))
    problems.extend(credential_checks(settings, require=require_secrets))
    problems.extend(backup_secret_checks(settings, require=require_secrets))
    problems.extend(placeholder_checks(settings))
    if problems:
        raise SettingsError(problems)
    return settings


def _foreign_namespaces(values: Mapping[str, str]) -> list[str]:
    """Keys whose namespace is a near miss of this project's: the CLI hands them to nobody, so
    the setting would be silently ignored."""
    problems = []
    for fq in sorted(values):
        namespace, _, name = fq.rpartition(":")
        if namespace and namespace != PROJECT:
            ratio = difflib.SequenceMatcher(None, namespace, PROJECT).ratio()
            if ratio >= 0.8:
                problems.append(
                    f"{fq}: {namespace!r} is not this project's namespace ({PROJECT!r}), so "
                    f"the value would be ignored; rename the key to '{PROJECT}:{name}'"
                )
    return problems


def required_secrets(values: Mapping[str, str]) -> frozenset[str]:
    """The secret keys a stack's config calls for: an operator's checklist before a deploy."""
    keys, prefix = declared_keys(), f"{PROJECT}:"
    parsed: dict[str, Any] = {}
    for fq, raw in values.items():
        k = keys.get(fq.removeprefix(prefix))
        if fq.startswith(prefix) and k is not None and not k.spec.secret and not k.spec.structured:
            value, problem = _parse_value(k, raw)
            if problem is None:
                parsed[k.spec.key] = value
    settings = _build(Settings, parsed)
    return frozenset(required_secret_keys(settings)[0] | required_backup_secrets(settings))


def show_default(k: DeclaredKey) -> str:
    d = k.default
    if isinstance(d, enum.Enum):
        return str(d.value)
    if isinstance(d, bool):
        return "true" if d else "false"
    return json.dumps(d) if isinstance(d, str) else str(d)


def _build(cls: type[_T], parsed: Mapping[str, Any]) -> _T:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        spec = f.metadata.get("spec")
        if f.metadata.get("derived"):
            continue
        if spec is None:
            kwargs[f.name] = _build(hints[f.name], parsed)
        elif spec.key in parsed:
            kwargs[f.name] = parsed[spec.key]
    return cls(**kwargs)
