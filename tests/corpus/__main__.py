"""Run the bad-input corpus as a person would meet it: `make preview` in a copy of the
repository, one case at a time, and read what the terminal shows.

    python -m tests.corpus [--engine] [--only NAME] [FILE]

Every case must be refused (non-zero exit), show each of its expected words (the key or file,
the value, the fix or what is allowed), and show no Python traceback. With --engine each case
is also run through the program on the real Pulumi engine (the Automation API, without the
make wrapper's early check), so the program itself is seen to refuse it: what holds under a
plain `pulumi preview`. The copy has a history and a stack file of the corpus's own
(`corpus`), so the corpus does not depend on this repository's migrations or stacks.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from components.settings import SettingsError
from components.settings.stackfile import load_document

ROOT: Final = Path(__file__).resolve().parents[2]
CORPUS: Final = Path(__file__).with_name("bad-inputs.yaml")
PREFIX: Final = "tradestream-database:"
STACK: Final = "corpus"
MIGRATIONS: Final = "database/migrations"

HISTORY: Final = {
    "V01__create_things.sql": "CREATE TABLE things (id bigint PRIMARY KEY);\n",
    "V02__add_name.sql": "ALTER TABLE things ADD COLUMN name text;\n",
    "V03__index_name.sql": "CREATE INDEX things_name ON things (name);\n",
    "R__things_view.sql": "CREATE OR REPLACE VIEW things_view AS SELECT id, name FROM things;\n",
}
"""The corpus's own released history."""

FLAVORS: Final[Mapping[str, Mapping[str, str]]] = {
    "external": {
        "databaseFlavor": "external",
        "databaseRolesManagedBy": "dba",
        "databaseAccessHost": "127.0.0.1",
        "databaseAccessPort": "55999",
        "databaseSslMode": "disable",
    },
    "bitnami": {"databaseFlavor": "bitnami", "databaseRolesManagedBy": "none"},
    "cloudnative-pg": {
        "databaseFlavor": "cloudnative-pg",
        "databaseRolesManagedBy": "none",
        "cnpgInstallOperator": "false",
        "cnpgBackupMethod": "volume-snapshot",
        "cnpgBackupSnapshotClass": "csi",
    },
}
COMMON: Final = {
    "namespace": "corpus",
    "protectDatabase": "false",
    "disposable": "true",
    "flywayConnectRetries": "5",
    "flywayConnectRetriesInterval": "2",
}


@dataclass
class Outcome:
    name: str
    mode: str
    ok: bool
    why: str
    seconds: float


class Copy:
    """The repository as a user has it, with the corpus's history and stack file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        for relative in filter(None, listed.split("\0")):
            source = ROOT / relative
            if source.is_file() and not relative.startswith(MIGRATIONS + "/"):
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, root / relative)
        for shared in (".venv", ".cache"):
            if (ROOT / shared).exists():
                (root / shared).symlink_to(ROOT / shared)
        self.migrations = root / MIGRATIONS
        self.strays: list[Path] = []
        self.reset_migrations()

    def reset_migrations(self) -> None:
        shutil.rmtree(self.migrations, ignore_errors=True)
        self.migrations.mkdir(parents=True)
        for name, text in HISTORY.items():
            (self.migrations / name).write_text(text, encoding="utf-8")
        subprocess.run(
            [sys.executable, "-m", "components.migrations", "lock", str(self.migrations)],
            cwd=self.root,
            capture_output=True,
            check=True,
        )

    @property
    def stack_file(self) -> Path:
        return self.root / "stacks" / f"Pulumi.{STACK}.yaml"

    def apply(self, case: Mapping[str, Any]) -> None:
        """Write the case's stack file and migrations."""
        config: dict[str, Any] = {
            **COMMON,
            **FLAVORS[case.get("flavor", "external")],
            **case.get("set", {}),
        }
        for key in case.get("remove", []):
            config.pop(key, None)
        document: dict[str, Any] = {"config": {PREFIX + k: v for k, v in config.items()}}
        document["config"].update(case.get("raw_keys", {}))
        for key in case.get("secure", {}):
            document["config"][PREFIX + key] = {"secure": "v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
        if "raw_bytes" in case:
            self.stack_file.write_bytes(base64.b64decode(case["raw_bytes"]))
        elif "raw" in case:
            self.stack_file.write_text(case["raw"], encoding="utf-8")
        else:
            self.stack_file.write_text(yaml.safe_dump(document, sort_keys=False), "utf-8")
        self.reset_migrations()
        for name in case.get("remove_files", []):
            (self.migrations / name).unlink()
        for name, text in case.get("files", {}).items():
            (self.migrations / name).parent.mkdir(parents=True, exist_ok=True)
            (self.migrations / name).write_text(text, encoding="utf-8")
        for name, data in case.get("binary_files", {}).items():
            (self.migrations / name).write_bytes(base64.b64decode(data))
        for name, target in case.get("links", {}).items():
            (self.migrations / name).symlink_to(target)
        for stray in self.strays:
            stray.unlink(missing_ok=True)
        # Files beside the stack's own, such as a stack file where the CLI does not look.
        self.strays = [self.root / name.format(stack=STACK) for name in case.get("beside", {})]
        for stray, text in zip(self.strays, case.get("beside", {}).values(), strict=True):
            stray.write_text(text, encoding="utf-8")

    def make_preview(self) -> tuple[int, str]:
        proc = subprocess.run(
            ["make", "--no-print-directory", "preview", f"STACK={STACK}"],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            env={**os.environ, "NO_COLOR": "1"},
            timeout=600,
        )
        return proc.returncode, proc.stdout

    def engine_preview(self, state: Path) -> tuple[int, str]:
        """The program alone on the real engine, run from the copy (see `preview_on_engine`)."""
        python = str(self.root / ".venv" / "bin" / "python")
        proc = subprocess.run(
            [python, "-m", "tests.corpus", "--on-engine", str(state)],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            timeout=600,
        )
        return proc.returncode, proc.stdout


def preview_on_engine(state: Path) -> int:
    """A preview of the corpus stack through the Automation API, without the make wrapper:
    the stack's required secrets are set as a deploy would set them; the engine's errors are
    printed as deploy prints them."""
    from pulumi import automation as auto  # noqa: PLC0415 (only this mode needs the engine)

    from components.settings import required_secrets  # noqa: PLC0415
    from components.settings.stackfile import cli_value, stack_path  # noqa: PLC0415
    from deploy.diagnostics import Diagnostics, explain  # noqa: PLC0415
    from deploy.engine import (  # noqa: PLC0415
        Backend,
        find_engine,
        open_stack,
        prepare_workspace,
    )

    work = prepare_workspace(state / "workspace", STACK)
    backend = Backend.local_folder(state / "state", STACK)
    stack = open_stack(STACK, work, backend, find_engine(local_provider=True))
    config = load_document(stack_path(work, STACK)).get("config") or {}
    values = {key: cli_value(value)[0] for key, value in config.items()}
    given = {key.rpartition(":")[2] for key in values}
    for key in required_secrets(values) - given:
        stack.set_config(key, auto.ConfigValue("corpus-Secret-1", secret=True))
    seen = Diagnostics()
    try:
        stack.preview(on_event=seen)
    except auto.errors.CommandError as error:
        print("\n".join(explain(error, seen)))
        return 1
    return 0


def judge(case: Mapping[str, Any], code: int, output: str) -> str:
    """Empty when the case was refused as it must be; else why not."""
    if code == 0:
        return "accepted"
    if "Traceback" in output:
        return "a traceback was shown"
    missing = [word for word in case["expect"] if str(word) not in output]
    return f"missing {json.dumps(missing)}" if missing else ""


def engine_can_read(copy: Copy, case: Mapping[str, Any]) -> bool:
    """The CLI reads the stack file itself: a file that is no mapping of keys (bad YAML, a
    key set twice, a list) and encrypted stand-ins are the make wrapper's to refuse."""
    if "raw_bytes" in case or "secure" in case:
        return False
    try:
        document = load_document(copy.stack_file)
    except SettingsError:
        return False
    return isinstance(document.get("config", {}), dict)


def run(cases: Sequence[Mapping[str, Any]], *, engine: bool) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="corpus-") as scratch:
        copy = Copy(Path(scratch) / "repo")
        for flavor in FLAVORS:
            copy.apply({"flavor": flavor})
            code, output = check(copy)
            if code != 0:
                raise SystemExit(f"the corpus's own {flavor} baseline is refused:\n{output}")
        for case in cases:
            copy.apply(case)
            started = time.monotonic()
            code, output = copy.make_preview()
            why = judge(case, code, output)
            outcomes.append(Outcome(case["name"], "make", not why, why, time.monotonic() - started))
            if engine and engine_can_read(copy, case):
                started = time.monotonic()
                state = Path(scratch) / "engine" / str(len(outcomes))
                code, output = copy.engine_preview(state)
                why = judge(case, code, output)
                outcomes.append(
                    Outcome(case["name"], "engine", not why, why, time.monotonic() - started)
                )
    return outcomes


def check(copy: Copy) -> tuple[int, str]:
    """The baseline passes the same check `make preview` runs first."""
    proc = subprocess.run(
        [str(copy.root / ".venv" / "bin" / "python"), "-m", "deploy", "check", STACK],
        cwd=copy.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    return proc.returncode, proc.stdout


def load(path: Path = CORPUS) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]
    return cases


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.corpus", description=__doc__)
    parser.add_argument("file", nargs="?", type=Path, default=CORPUS)
    parser.add_argument("--engine", action="store_true", help="also run each on the engine")
    parser.add_argument("--only", action="append", default=[], help="run the named case(s)")
    parser.add_argument("--on-engine", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.on_engine is not None:
        return preview_on_engine(args.on_engine)
    cases = [c for c in load(args.file) if not args.only or c["name"] in args.only]
    outcomes = run(cases, engine=args.engine)
    for outcome in outcomes:
        mark = "ok  " if outcome.ok else "FAIL"
        print(f"{mark} {outcome.mode:6} {outcome.seconds:5.1f}s  {outcome.name}  {outcome.why}")
    failed = [o for o in outcomes if not o.ok]
    total = sum(o.seconds for o in outcomes)
    print(
        f"{len(outcomes) - len(failed)} of {len(outcomes)} refused as they must be ({total:.0f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
