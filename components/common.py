"""Names and labels shared by every component (pure)."""

from __future__ import annotations

import hashlib
import json
from typing import Final

TYPE_PREFIX: Final = "tradestream:database"
"""Type-token prefix of every component: `tradestream:database:<Component>`."""

APP_NAME: Final = "tradestream-database"
DIGEST_ANNOTATION_PREFIX: Final = "tradestream.io"


def labels(component: str) -> dict[str, str]:
    """Recommended Kubernetes labels; `component` tells the database from the migrations."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "tradestream",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def digest(value: object) -> str:
    """SHA-256 of a JSON-able value in canonical form, so equal inputs give equal names."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
