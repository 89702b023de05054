"""The library of clip signatures (migration 3): near duplicates across every video.

Each annotated clip's dHashes are stored once (by clip hash). A new clip is compared with
every stored one in one numpy pass (annotate/signature.py); the closest within the limit
is recorded as what it duplicates, and, when asked, queued to be group-tagged in Hydrus
once both files are there (hydrus/push.py).

    library = SignatureLibrary(store)
    library.add(sha256, sig, max_distance=6, relate=True)   # -> DuplicateMatch | None
    to_group(store)                          # [DuplicatePair(sha256, duplicate_of, root)]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hydrus_motion.annotate.signature import MAX_FRAMES, as_row, distances
from hydrus_motion.store.db import PUSHED, Store


@dataclass(frozen=True)
class DuplicateMatch:
    sha256: str  # the earlier clip
    distance: float  # bits, 0-64


class SignatureLibrary:
    def __init__(self, store: Store):
        self.store = store
        rows = store.conn.execute("SELECT sha256, hashes FROM signatures ORDER BY rowid")
        self.ids: list[str] = []
        blobs: list[bytes] = []
        for sha, blob in rows:
            self.ids.append(sha)
            blobs.append(blob)
        self.matrix = (np.frombuffer(b"".join(blobs), "<u8").reshape(-1, MAX_FRAMES)
                       .astype(np.uint64)) if blobs else np.zeros((0, MAX_FRAMES), np.uint64)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, sha256: str, sig: Sequence[int], *, max_distance: float,
            relate: bool) -> DuplicateMatch | None:
        """Record `sig` for clip `sha256` and return the earlier clip it duplicates.

        A clip seen before keeps its first record (a re-annotation changes nothing)."""
        if sha256 in self.ids:
            row = self.store.conn.execute(
                "SELECT duplicate_of, distance FROM signatures WHERE sha256 = ?",
                (sha256,)).fetchone()
            return DuplicateMatch(row[0], row[1]) if row and row[0] else None
        match = None
        if sig and len(self.ids):
            d = distances(sig, self.matrix)
            best = int(np.argmin(d))
            if d[best] <= max_distance:
                match = DuplicateMatch(self.ids[best], float(d[best]))
        row = as_row(sig)
        with self.store.conn:
            self.store.conn.execute(
                "INSERT INTO signatures (sha256, hashes, duplicate_of, distance, relate,"
                " created_at) VALUES (?,?,?,?,?,?)",
                (sha256, row.astype("<u8").tobytes(), match and match.sha256,
                 match and match.distance, int(bool(match) and relate), time.time()))
        self.ids.append(sha256)
        self.matrix = np.vstack([self.matrix, row[None]])
        return match


@dataclass(frozen=True)
class DuplicatePair:
    sha256: str  # the later clip
    duplicate_of: str  # the earlier clip it looks like
    root: str  # the earliest clip of the chain: the group's name


def to_group(store: Store) -> list[DuplicatePair]:
    """Pairs to tag as one group in Hydrus: both pushed, not yet tagged."""
    rows = store.conn.execute(
        "SELECT s.sha256, s.duplicate_of FROM signatures s"
        " JOIN clips a ON a.sha256 = s.sha256 JOIN clips b ON b.sha256 = s.duplicate_of"
        " WHERE s.relate = 1 AND s.related_at IS NULL AND a.push_status = ?"
        " AND b.push_status = ? ORDER BY s.rowid", (PUSHED, PUSHED))
    return [DuplicatePair(a, b, _root(store, b)) for a, b in rows]


def _root(store: Store, sha256: str) -> str:
    """Follow duplicate_of to the earliest clip (each link points to an older row)."""
    seen = {sha256}
    while True:
        row = store.conn.execute("SELECT duplicate_of FROM signatures WHERE sha256 = ?",
                                 (sha256,)).fetchone()
        if not row or not row[0] or row[0] in seen:
            return sha256
        sha256 = row[0]
        seen.add(sha256)


def mark_grouped(store: Store, pairs: Sequence[DuplicatePair]) -> None:
    now = time.time()
    with store.conn:
        store.conn.executemany("UPDATE signatures SET related_at = ? WHERE sha256 = ?",
                               [(now, p.sha256) for p in pairs])
