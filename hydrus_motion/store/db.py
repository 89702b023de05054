"""The SQLite record of clips and pushes: nothing is lost if Hydrus is down or crashes.

A clip is recorded (status `queued`) before any request to Hydrus is made, so a clip
that could not be pushed stays queued and the next `ingest`, `reconcile` or daemon pass
picks it up. Per-clip failure is data: `push_status`, `attempts`, `last_error`.

Schema changes are numbered migrations applied in order; `PRAGMA user_version` holds
how many have run, so an old state file is upgraded in place.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from hydrus_motion.errors import HydrusMotionError

MIGRATIONS = (
    """
    CREATE TABLE clips (
        sha256        TEXT PRIMARY KEY,
        path          TEXT NOT NULL,
        source_path   TEXT NOT NULL,
        source_sha256 TEXT NOT NULL,
        scene         INTEGER NOT NULL,
        start_frame   INTEGER NOT NULL,
        end_frame     INTEGER NOT NULL,
        tags          TEXT NOT NULL,   -- JSON list: the tags we push
        notes         TEXT NOT NULL,   -- JSON object: note name -> text
        push_status   TEXT NOT NULL DEFAULT 'queued',  -- queued|pushed|deleted|failed
        attempts      INTEGER NOT NULL DEFAULT 0,
        last_error    TEXT,
        created_at    REAL NOT NULL,
        pushed_at     REAL,
        checked_at    REAL
    );
    CREATE INDEX clips_by_source ON clips(source_sha256);
    CREATE INDEX clips_by_status ON clips(push_status, pushed_at);
    """,
    # 2: the daemon (store/queue.py, store/runs.py): videos taken from the watch folder,
    # one durable job per video and stage, the files already looked at, run history.
    """
    CREATE TABLE sources (
        sha256       TEXT PRIMARY KEY,
        path         TEXT NOT NULL,   -- where the video is now (watch folder, archive, ...)
        name         TEXT NOT NULL,
        size         INTEGER NOT NULL,
        status       TEXT NOT NULL DEFAULT 'active',  -- active|done|quarantined|failed
        reason       TEXT,
        clips        INTEGER,
        created_at   REAL NOT NULL,
        finished_at  REAL
    );
    CREATE TABLE jobs (
        id            INTEGER PRIMARY KEY,
        stage         TEXT NOT NULL,   -- detect|slice|annotate|push|reconcile
        source_sha256 TEXT NOT NULL REFERENCES sources(sha256),
        status        TEXT NOT NULL DEFAULT 'queued',  -- queued|running|done|failed
        attempts      INTEGER NOT NULL DEFAULT 0,
        last_error    TEXT,
        not_before    REAL NOT NULL DEFAULT 0,
        created_at    REAL NOT NULL,
        updated_at    REAL NOT NULL,
        UNIQUE (stage, source_sha256)
    );
    CREATE INDEX jobs_due ON jobs(status, stage, not_before);
    CREATE TABLE seen_files (
        path      TEXT PRIMARY KEY,   -- a file in the watch folder we already decided on
        size      INTEGER NOT NULL,
        mtime_ns  INTEGER NOT NULL,
        sha256    TEXT NOT NULL,
        decision  TEXT NOT NULL,      -- taken|duplicate
        seen_at   REAL NOT NULL
    );
    CREATE TABLE runs (
        id           INTEGER PRIMARY KEY,
        kind         TEXT NOT NULL,   -- nightly
        started_at   REAL NOT NULL,
        finished_at  REAL,
        outcome      TEXT,            -- ok|failed|skipped; NULL while running (or killed)
        error        TEXT,
        details      TEXT,            -- JSON
        pid          INTEGER NOT NULL
    );
    CREATE INDEX runs_by_kind ON runs(kind, started_at);
    """,
    # 3: waits after a failure of this machine (no space, ...), counted apart from attempts
    """
    ALTER TABLE jobs ADD COLUMN waits INTEGER NOT NULL DEFAULT 0;
    """,
    # 4: perceptual signatures of every annotated clip, for near duplicates across the
    # whole library (store/signatures.py).
    """
    CREATE TABLE signatures (
        sha256        TEXT PRIMARY KEY,
        hashes        BLOB NOT NULL,   -- MAX_FRAMES little-endian uint64 dHashes, 0 = none
        duplicate_of  TEXT,            -- the earlier clip it looks like, if any
        distance      REAL,            -- mean nearest-hash distance to it, bits
        relate        INTEGER NOT NULL DEFAULT 0,  -- 1: to be group-tagged in Hydrus
        related_at    REAL,            -- when Hydrus took the group tags
        created_at    REAL NOT NULL
    );
    CREATE INDEX signatures_to_relate ON signatures(relate, related_at);
    """,
)

QUEUED, PUSHED, DELETED, FAILED = "queued", "pushed", "deleted", "failed"


@dataclass(frozen=True)
class ClipRecord:
    sha256: str
    path: Path
    source_path: str
    source_sha256: str
    scene: int
    start_frame: int
    end_frame: int
    tags: tuple[str, ...]
    notes: dict[str, str]
    push_status: str = QUEUED
    attempts: int = 0
    last_error: str | None = None
    created_at: float = 0.0
    pushed_at: float | None = None
    checked_at: float | None = None


class Store:
    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path

    def close(self) -> None:
        self.conn.close()

    def add_clip(self, clip: ClipRecord) -> bool:
        """Record a clip as queued; False (and nothing changed) if its hash is known."""
        with self.conn:
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO clips (sha256, path, source_path, source_sha256, scene,"
                " start_frame, end_frame, tags, notes, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (clip.sha256, str(clip.path), clip.source_path, clip.source_sha256, clip.scene,
                 clip.start_frame, clip.end_frame, json.dumps(list(clip.tags)),
                 json.dumps(clip.notes, ensure_ascii=False, sort_keys=True), time.time()))
        return cur.rowcount == 1

    def set_annotation(self, sha256: str, tags: tuple[str, ...], notes: dict[str, str]) -> bool:
        """Replace a queued clip's tags and notes; False once it was pushed (too late)."""
        with self.conn:
            cur = self.conn.execute(
                "UPDATE clips SET tags = ?, notes = ? WHERE sha256 = ? AND push_status = ?",
                (json.dumps(list(tags)), json.dumps(notes, ensure_ascii=False, sort_keys=True),
                 sha256, QUEUED))
        return cur.rowcount == 1

    def clip(self, sha256: str) -> ClipRecord | None:
        row = self.conn.execute("SELECT * FROM clips WHERE sha256 = ?", (sha256,)).fetchone()
        return _record(row) if row else None

    def clips_of_source(self, source_sha256: str) -> list[ClipRecord]:
        return self._select("WHERE source_sha256 = ? ORDER BY start_frame", source_sha256)

    def due(self, pushed_since: float) -> list[ClipRecord]:
        """Clips to push (queued) and recent pushes to re-check, oldest first."""
        return self._select("WHERE push_status = ? OR (push_status = ? AND pushed_at >= ?) "
                            "ORDER BY created_at, start_frame", QUEUED, PUSHED, pushed_since)

    def queued_without_job(self) -> list[ClipRecord]:
        """Queued clips no daemon job will push: `ingest` recorded them while Hydrus was
        down (or with --no-push), or their video's push job gave up."""
        return self._select("WHERE push_status = ? AND NOT EXISTS (SELECT 1 FROM jobs j "
                            "WHERE j.source_sha256 = clips.source_sha256 AND j.status IN "
                            "('queued', 'running')) ORDER BY created_at, start_frame", QUEUED)

    def mark(self, sha256: str, status: str, error: str | None = None, *,
             attempted: bool = True, pushed: bool = False) -> None:
        now = time.time()
        with self.conn:
            self.conn.execute(
                "UPDATE clips SET push_status = ?, last_error = ?, checked_at = ?,"
                " attempts = attempts + ?, pushed_at = CASE WHEN ? THEN ? ELSE pushed_at END"
                " WHERE sha256 = ?",
                (status, error, now, int(attempted), pushed, now, sha256))

    def counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT push_status, COUNT(*) FROM clips GROUP BY push_status")
        return {status: n for status, n in rows}

    def _select(self, where: str, *params: object) -> list[ClipRecord]:
        return [_record(r) for r in self.conn.execute(f"SELECT * FROM clips {where}", params)]


def open_store(state_dir: Path) -> Store:
    """Open (creating and migrating as needed) `state_dir/state.sqlite3`."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "state.sqlite3"
    conn = sqlite3.connect(path, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")  # the daemon reads while a worker writes
    conn.execute("PRAGMA synchronous = FULL")  # a record we said exists must survive a crash
    try:
        _backup_before_upgrade(conn, path)
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return Store(conn, path)


class SchemaTooNew(HydrusMotionError):
    """The state file was written by a newer hydrus-motion."""


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the missing migrations under the write lock, re-reading the version inside it:
    a daemon and a timer run starting together after an upgrade migrate once."""
    _refuse_newer(conn, path)
    if conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS):
        return
    level, conn.isolation_level = conn.isolation_level, None  # we manage the transaction
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = _refuse_newer(conn, path)
            for number, script in enumerate(MIGRATIONS[done:], start=done + 1):
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.isolation_level = level


def _refuse_newer(conn: sqlite3.Connection, path: Path) -> int:
    done = conn.execute("PRAGMA user_version").fetchone()[0]
    if done > len(MIGRATIONS):
        raise SchemaTooNew(f"{path}: the state database has schema {done}, newer than this "
                           f"hydrus-motion knows (schema {len(MIGRATIONS)})",
                           hint="upgrade hydrus-motion to the version that wrote it, or "
                                "restore the state.sqlite3.vN.bak an upgrade left beside it")
    return done


def _statements(script: str) -> list[str]:
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return [s for s in out if s.strip(" ;\n")]


def _backup_before_upgrade(conn: sqlite3.Connection, path: Path) -> None:
    """Copy an existing state file aside before its schema changes (`state.sqlite3.vN.bak`)."""
    done = conn.execute("PRAGMA user_version").fetchone()[0]
    if not 0 < done < len(MIGRATIONS):  # new, current, or too new (refused by _migrate)
        return
    backup = path.with_name(f"{path.name}.v{done}.bak")
    if not backup.exists():
        with sqlite3.connect(backup) as target:
            conn.backup(target)
        target.close()
    logging.getLogger(__name__).info("state: upgrading %s from schema %d to %d (backup: %s)",
                                     path, done, len(MIGRATIONS), backup.name)


def _record(row: sqlite3.Row) -> ClipRecord:
    data = dict(row)
    data["path"] = Path(data["path"])
    data["tags"] = tuple(json.loads(data["tags"]))
    data["notes"] = json.loads(data["notes"])
    return ClipRecord(**data)

