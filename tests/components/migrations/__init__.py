"""Tests for components.migrations, one module per source module."""

from pathlib import Path


def write_tree(root: Path, files: dict[str, bytes | str]) -> Path:
    """Create files (relative posix path -> content) under root; str content is UTF-8."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return root
