"""Content identity: files are known by the sha256 of their bytes, as Hydrus knows them."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def source_fingerprint(path: Path) -> str:
    """A cheap content identity for a sidecar's header: size, and the sha256 of the first,
    middle and last MiB (a re-encode, a trim or another file changes it; a copy or a
    touch does not). '<size> bytes, fingerprint <16 hex>'."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        for at in sorted({0, max(0, size // 2 - _CHUNK // 2), max(0, size - _CHUNK)}):
            fh.seek(at)
            digest.update(fh.read(_CHUNK))
    return f"{size} bytes, fingerprint {digest.hexdigest()[:16]}"
