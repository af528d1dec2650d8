"""The house's rules, read from the code: nothing outside `components/settings/` and the
flavor chooser branches on the database flavor, and imports run one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.program import ROOT

FLAVOR_ALLOWED = {ROOT / "components" / "database" / "__init__.py"}
SOURCES = [
    *sorted(
        path
        for folder in ("components", "deploy", "standins")
        for path in (ROOT / folder).rglob("*.py")
        if ROOT / "components" / "settings" not in path.parents
    ),
    ROOT / "__main__.py",
]
FLAVOR_VALUES = {"bitnami", "cloudnative-pg", "external"}


def flavor_branches(tree: ast.AST) -> list[int]:
    """Lines that compare with a flavor: `Flavor.X` or a flavor's value in a comparison or a
    `match` case, or `.flavor` compared with anything."""
    found: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_is_flavor(o) for o in operands):
                found.append(node.lineno)
        elif isinstance(node, ast.match_case) and _mentions_flavor(node.pattern):
            found.append(node.pattern.lineno)
    return found


def _is_flavor(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute):
        if node.attr == "flavor":
            return True
        return isinstance(node.value, ast.Name) and node.value.id == "Flavor"
    if isinstance(node, ast.Constant):
        return node.value in FLAVOR_VALUES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_flavor(e) for e in node.elts)
    return False


def _mentions_flavor(pattern: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "Flavor"
        for n in ast.walk(pattern)
    )


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_settings_and_the_chooser_branch_on_the_flavor(path: Path) -> None:
    if path in FLAVOR_ALLOWED:
        return
    lines = flavor_branches(ast.parse(path.read_text(encoding="utf-8")))
    assert lines == [], f"{path.relative_to(ROOT)} branches on the flavor at lines {lines}"


def test_the_check_sees_each_way_of_branching() -> None:
    code = """
if s.database.flavor is Flavor.BITNAMI: pass
if flavor == "cloudnative-pg": pass
if x in (Flavor.EXTERNAL,): pass
match s.database.flavor:
    case Flavor.BITNAMI: pass
"""
    assert flavor_branches(ast.parse(code)) == [2, 3, 4, 6]


WINGS = ("access", "database", "jobs")
BOTTOM = ("contract", "settings", "migrations", "passwords", "inputs", "alert_rules")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


@pytest.mark.parametrize("bottom", BOTTOM)
def test_the_bottom_of_the_house_imports_no_wing(bottom: str) -> None:
    base = ROOT / "components" / bottom
    paths = [base.with_suffix(".py")] if base.with_suffix(".py").exists() else base.rglob("*.py")
    for path in paths:
        upward = {
            name
            for name in _imports(path)
            if any(name.startswith(f"components.{wing}") for wing in WINGS)
            or name.startswith(("deploy", "standins"))
        }
        assert upward == set(), f"{path.relative_to(ROOT)} imports {upward}"


def test_the_migrations_package_stays_pure() -> None:
    for path in (ROOT / "components" / "migrations").rglob("*.py"):
        imports = _imports(path)
        assert not {n for n in imports if n.startswith(("pulumi", "components.settings"))}, path


@pytest.mark.parametrize(
    ("wing", "may_import"),
    [("database", set()), ("jobs", set()), ("access", {"jobs"})],
)
def test_a_wing_imports_another_only_where_the_house_says(wing: str, may_import: set[str]) -> None:
    """The grants Job (access) runs on the Jobs' locked-down pod; nothing else crosses."""
    for path in (ROOT / "components" / wing).rglob("*.py"):
        others = {
            name.split(".")[1]
            for name in _imports(path)
            if name.startswith("components.") and name.split(".")[1] in WINGS
        } - {wing}
        assert others <= may_import, f"{path.relative_to(ROOT)} imports {others}"


def test_the_program_never_imports_the_stand_ins() -> None:
    for path in [ROOT / "__main__.py", *(ROOT / "components").rglob("*.py")]:
        assert not {n for n in _imports(path) if n.startswith("standins")}, path
