"""Packing migration files into ConfigMaps that one projected volume lays out exactly.

Kubernetes caps a ConfigMap at 1 MiB of ``data`` plus ``binaryData`` and restricts keys to
``[-._a-zA-Z0-9]{1,253}`` (no ``/``), so a large or nested migrations directory needs several
ConfigMaps, each listing ``items`` (key -> path) so subfolders and odd names come back
exactly. Content is never transformed: UTF-8 files go to ``data`` verbatim (BOM, CRLF, CR,
trailing spaces intact), anything else to ``binaryData``, because Flyway checksums what it
reads and a single changed byte would fail validation of a released migration.

Size accounting is deliberately pessimistic: a shard's size counts every key and every value
as stored (base64 text for ``binaryData``, although the API server counts decoded bytes), and
the default budget keeps 64 KiB of the 1 MiB for object metadata.

Trade-off: files are placed first-fit in the order given (Flyway order for a MigrationSet):
each file goes to the first shard with room; a new shard opens only when none has. A file
added at the end of the order changes exactly one shard (the one it lands in, or a new one)
and moves no other file, which keeps previews small. (A new versioned migration sorts before
the repeatables and callbacks, so those few files may move as well.) Efficiency is measured
without the emptiest shard, since no packing avoids one partial shard (``efficiency``). With
small DDL files every shard but the last is within one file of the budget: 93.7% of 1 MiB
(the 64 KiB margin caps it at 93.75%). On 200 generated mixes of 500-20,000 small files
(lognormal, median 1.5 KB) plus 1-30 files of 100-800 KB at random positions: mean 93.5%,
96.5% of mixes at 90% or more, worst 85%. The weak cases are many large files late in the
order with few small files after them; packing largest-first would reach 93.7% there too,
but would reshuffle shards whenever a migration is added, so it is not done.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from components.migrations.model import MigrationError, MigrationSet, Problem

CONFIGMAP_LIMIT = 1_048_576
DEFAULT_BUDGET = CONFIGMAP_LIMIT - 64 * 1024
MAX_KEY_LENGTH = 253

_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_KEY_UNSAFE = re.compile(r"[^-._a-zA-Z0-9]")
_SHORT_HASH = 16


@dataclass(frozen=True)
class Shard:
    """One ConfigMap's worth of files, plus the volume items that put them in place.

    ``size`` is the bytes counted against the budget; ``digest`` is a SHA-256 over the items
    and values, for naming or change detection. Treat ``data`` and ``binary_data`` as
    read-only.
    """

    index: int
    data: dict[str, str] = field(hash=False)
    binary_data: dict[str, str] = field(hash=False)
    items: tuple[tuple[str, str], ...]
    size: int
    digest: str


def is_valid_key(key: str) -> bool:
    """Kubernetes' IsConfigMapKey: allowed characters, length, and no '.'/'..' prefix."""
    return (
        len(key) <= MAX_KEY_LENGTH
        and _KEY.fullmatch(key) is not None
        and key not in (".", "..")
        and not key.startswith("..")
    )


def _mapped_key(path: str, hash_length: int) -> str:
    """A valid key for any path: readable sanitised path, then a hash of the full path."""
    digest = hashlib.sha256(path.encode("utf-8")).hexdigest()[:hash_length]
    readable = _KEY_UNSAFE.sub("_", path.replace("/", "_")).lstrip(".") or "file"
    return f"{readable[: MAX_KEY_LENGTH - hash_length - 1]}-{digest}"


def assign_keys(paths: Iterable[str]) -> dict[str, str]:
    """A unique, deterministic ConfigMap key per path.

    A top-level file whose name is a valid key keeps it; every other path gets a sanitised
    name plus a hash of the full path, lengthened if it ever collided.
    """
    ordered = sorted(paths)
    keys = {path: path for path in ordered if "/" not in path and is_valid_key(path)}
    taken = set(keys.values())
    for path in ordered:
        if path in keys:
            continue
        key = _mapped_key(path, _SHORT_HASH)
        if key in taken:
            key = _mapped_key(path, 64)
        if key in taken:
            raise ValueError(f"no unique ConfigMap key for {path!r}")
        keys[path] = key
        taken.add(key)
    return keys


def _check_paths(paths: Sequence[str]) -> None:
    """Paths must lay out as one directory tree inside the mount; ValueError otherwise."""
    unique = set(paths)
    if len(unique) != len(paths):
        raise ValueError("the same path appears more than once")
    for path in paths:
        parts = path.split("/")
        if not path or any(part in ("", ".", "..") for part in parts) or "\0" in path:
            raise ValueError(f"{path!r} is not a relative path inside the mount")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in unique:
                raise ValueError(f"{path!r} needs a directory where a file is")


@dataclass(frozen=True)
class _Entry:
    path: str
    key: str
    text: str | None
    encoded: str | None
    size: int


def _entry(path: str, key: str, content: bytes) -> _Entry:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        encoded = base64.b64encode(content).decode("ascii")
        return _Entry(path, key, None, encoded, len(key) + len(encoded))
    return _Entry(path, key, text, None, len(key) + len(content))


def pack(
    files: MigrationSet | Sequence[tuple[str, bytes]], budget: int = DEFAULT_BUDGET
) -> tuple[Shard, ...]:
    """Split files into ConfigMap shards of at most ``budget`` bytes (see module docstring).

    Raises MigrationError naming every file too large for any shard, ValueError for paths
    that cannot be laid out or a budget outside (0, 1 MiB].
    """
    if not 0 < budget <= CONFIGMAP_LIMIT:
        raise ValueError(f"budget must be between 1 and {CONFIGMAP_LIMIT} bytes, not {budget}")
    pairs = (
        [(file.path, file.content) for file in files]
        if isinstance(files, MigrationSet)
        else list(files)
    )
    _check_paths([path for path, _ in pairs])
    keys = assign_keys(path for path, _ in pairs)
    entries = [_entry(path, keys[path], content) for path, content in pairs]

    too_large = [entry for entry in entries if entry.size > budget]
    if too_large:
        raise MigrationError(
            Problem(
                entry.path,
                f"takes {entry.size:,} bytes in a ConfigMap, more than the {budget:,}-byte "
                f"budget (a ConfigMap holds at most {CONFIGMAP_LIMIT:,} bytes)",
                "Split it into several smaller migrations, or load bulk data another way "
                "(for example COPY from object storage).",
            )
            for entry in too_large
        )

    bins: list[list[_Entry]] = []
    free: list[int] = []
    for entry in entries:
        index = next((i for i, room in enumerate(free) if room >= entry.size), len(bins))
        if index == len(bins):
            bins.append([])
            free.append(budget)
        bins[index].append(entry)
        free[index] -= entry.size
    return tuple(_shard(index, members) for index, members in enumerate(bins))


def _shard(index: int, members: list[_Entry]) -> Shard:
    data = {entry.key: entry.text for entry in members if entry.text is not None}
    binary = {entry.key: entry.encoded for entry in members if entry.encoded is not None}
    sha = hashlib.sha256()
    for entry in members:
        kind, value = ("data", entry.text) if entry.text is not None else ("binary", entry.encoded)
        for part in (kind, entry.key, entry.path, value or ""):
            chunk = part.encode("utf-8")
            sha.update(len(chunk).to_bytes(8, "big"))
            sha.update(chunk)
    return Shard(
        index=index,
        data=data,
        binary_data=binary,
        items=tuple((entry.key, entry.path) for entry in members),
        size=sum(entry.size for entry in members),
        digest=sha.hexdigest(),
    )


def unpack(shards: Iterable[Shard]) -> dict[str, bytes]:
    """The files a container sees when one projected volume mounts every shard with items."""
    files: dict[str, bytes] = {}
    for shard in shards:
        for key, path in shard.items:
            if path in files:
                raise ValueError(f"{path} is in more than one shard")
            if key in shard.data:
                files[path] = shard.data[key].encode("utf-8")
            else:
                files[path] = base64.b64decode(shard.binary_data[key], validate=True)
    return files


def efficiency(shards: Sequence[Shard], capacity: int = CONFIGMAP_LIMIT) -> float:
    """Fill ratio of all shards but the emptiest (1.0 for fewer than two shards)."""
    if len(shards) < 2:
        return 1.0
    sizes = sorted(shard.size for shard in shards)
    return sum(sizes[1:]) / ((len(shards) - 1) * capacity)
