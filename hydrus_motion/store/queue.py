"""The daemon's durable job queue: one row per video and stage, in the same SQLite file.

A video taken from the watch folder becomes a `sources` row and a job of the first
stage. Each stage, when it succeeds, marks its job done and queues the next stage in
the same transaction, so after a crash (even `kill -9`) every video sits in exactly one
place. The order is the stage table's (hydrus_motion/stages.py):

    detect ─▶ slice ─▶ annotate ─▶ push ─▶ reconcile

Jobs found `running` at start-up were interrupted; they go back to `queued`. Every stage
is idempotent (clips are known by hash, pushes add only what is missing), so running
one again is safe. A failed attempt is data: `attempts`, `last_error`, and `not_before`
for the backoff; after too many a job is `failed` and `status` shows why.
"""

from __future__ import annotations

from dataclasses import dataclass

from hydrus_motion import stages as table
from hydrus_motion.base import SYSTEM_CLOCK, Clock
from hydrus_motion.store.db import Store
from hydrus_motion.store.states import JobStatus, SeenDecision, SourceStatus

PENDING = (JobStatus.QUEUED, JobStatus.RUNNING)  # a job still to finish
ENDED = (SourceStatus.DONE, SourceStatus.QUARANTINED, SourceStatus.FAILED)  # finished_at set


@dataclass(frozen=True)
class Job:
    id: int
    stage: str
    source_sha256: str
    attempts: int
    last_error: str | None
    waits: int = 0  # waits after failures of this machine (not counted in attempts)


@dataclass(frozen=True)
class Source:
    sha256: str
    path: str
    name: str
    size: int
    status: SourceStatus
    reason: str | None
    clips: int | None
    finished_at: float | None = None


class JobQueue:
    """Queue operations over one Store connection (one per thread: sqlite3 rule)."""

    def __init__(self, store: Store, clock: Clock = SYSTEM_CLOCK):
        self.conn = store.conn
        self.clock = clock  # when a job is due (backoff), and every row's timestamps

    # -- sources -----------------------------------------------------------------------

    def add_source(self, sha256: str, path: str, name: str, size: int) -> bool:
        """Record a new video and queue its first stage; False if this content is known."""
        now = self.clock.now()
        with self.conn:
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO sources (sha256, path, name, size, created_at)"
                " VALUES (?,?,?,?,?)", (sha256, path, name, size, now))
            if cur.rowcount != 1:
                return False
            self._enqueue(table.first().name, sha256, now, 0.0)
        return True

    def restart_source(self, sha256: str, path: str, name: str) -> None:
        """A video that failed for good, dropped again: start it over from the first stage."""
        now = self.clock.now()
        with self.conn:
            self.conn.execute("UPDATE sources SET status = ?, path = ?, name = ?, reason = NULL,"
                              " finished_at = NULL WHERE sha256 = ?",
                              (SourceStatus.ACTIVE, path, name, sha256))
            self.conn.execute("DELETE FROM jobs WHERE source_sha256 = ?", (sha256,))
            self._enqueue(table.first().name, sha256, now, 0.0)

    def source(self, sha256: str) -> Source | None:
        row = self.conn.execute(f"SELECT {_SOURCE_COLUMNS} FROM sources WHERE sha256 = ?",
                                (sha256,)).fetchone()
        return _source(row) if row else None

    def sources(self, *statuses: SourceStatus, newest_first: bool = False,
                limit: int = -1) -> list[Source]:
        """Videos in these states, in the order they finished."""
        marks = ",".join("?" * len(statuses))
        order = "DESC" if newest_first else "ASC"
        rows = self.conn.execute(f"SELECT {_SOURCE_COLUMNS} FROM sources WHERE status IN "
                                 f"({marks}) ORDER BY finished_at {order} LIMIT ?",
                                 (*statuses, limit))
        return [_source(r) for r in rows]

    def update_source(self, sha256: str, *, status: SourceStatus | None = None,
                      path: str | None = None, reason: str | None = None,
                      clips: int | None = None) -> None:
        finished = status in ENDED
        with self.conn:
            self.conn.execute(
                "UPDATE sources SET status = COALESCE(?, status), path = COALESCE(?, path),"
                " reason = COALESCE(?, reason), clips = COALESCE(?, clips),"
                " finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE sha256 = ?",
                (status, path, reason, clips, finished, self.clock.now(), sha256))

    # -- files in the watch folder we already decided on -------------------------------

    def seen(self, path: str, size: int, mtime_ns: int) -> bool:
        row = self.conn.execute("SELECT 1 FROM seen_files WHERE path = ? AND size = ? AND "
                                "mtime_ns = ?", (path, size, mtime_ns)).fetchone()
        return row is not None

    def remember(self, path: str, size: int, mtime_ns: int, sha256: str,
                 decision: SeenDecision) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO seen_files VALUES (?,?,?,?,?,?)",
                              (path, size, mtime_ns, sha256, decision, self.clock.now()))

    def forget(self, path: str) -> None:
        """The file left the watch folder: a new file of that name is new again."""
        with self.conn:
            self.conn.execute("DELETE FROM seen_files WHERE path = ?", (path,))

    # -- jobs --------------------------------------------------------------------------

    def claim(self, stages: tuple[str, ...]) -> Job | None:
        """Take the oldest due job of these stages (atomically: workers share the file)."""
        now = self.clock.now()
        marks = ",".join("?" * len(stages))
        with self.conn:
            row = self.conn.execute(
                "UPDATE jobs SET status = ?, updated_at = ? WHERE id = ("
                f" SELECT id FROM jobs WHERE status = ? AND stage IN ({marks})"
                "  AND not_before <= ? ORDER BY not_before, id LIMIT 1)"
                " RETURNING id, stage, source_sha256, attempts, last_error, waits",
                (JobStatus.RUNNING, now, JobStatus.QUEUED, *stages, now)).fetchone()
        return Job(**dict(row)) if row else None

    def finish(self, job: Job, *, next_after_s: float = 0.0) -> None:
        """Done; queue the next stage (after `next_after_s`) in the same transaction."""
        now = self.clock.now()
        with self.conn:
            self._set(job, JobStatus.DONE, None, attempted=True, now=now)
            after = table.following(job.stage)
            if after is not None:
                self._enqueue(after.name, job.source_sha256, now, next_after_s)

    def retry(self, job: Job, error: str, after_s: float, *, attempted: bool = True) -> None:
        """Back to the queue, due again in `after_s`; `attempted=False` when not its fault."""
        now = self.clock.now()
        with self.conn:
            self._set(job, JobStatus.QUEUED, error, attempted=attempted, now=now,
                      not_before=now + after_s)

    def wait(self, job: Job, error: str, after_s: float) -> None:
        """This machine failed (no space, ...): due again in `after_s`, no attempt counted."""
        now = self.clock.now()
        with self.conn:
            self._set(job, JobStatus.QUEUED, error, attempted=False, now=now,
                      not_before=now + after_s)
            self.conn.execute("UPDATE jobs SET waits = waits + 1 WHERE id = ?", (job.id,))

    def fail(self, job: Job, error: str) -> None:
        with self.conn:
            self._set(job, JobStatus.FAILED, error, attempted=True, now=self.clock.now())

    def fail_source(self, sha256: str, error: str) -> None:
        """Every unfinished job of this video stops (it was quarantined)."""
        with self.conn:
            self.conn.execute("UPDATE jobs SET status = ?, last_error = ?, updated_at = ?"
                              " WHERE source_sha256 = ? AND status IN (?, ?)",
                              (JobStatus.FAILED, error, self.clock.now(), sha256, *PENDING))

    def recover(self) -> int:
        """Jobs left `running` by a process that died: queue them again. Returns how many."""
        with self.conn:
            cur = self.conn.execute("UPDATE jobs SET status = ?, updated_at = ? WHERE status = ?",
                                    (JobStatus.QUEUED, self.clock.now(), JobStatus.RUNNING))
        return cur.rowcount

    def pending(self, stages: tuple[str, ...]) -> int:
        marks = ",".join("?" * len(stages))
        return self.conn.execute(f"SELECT COUNT(*) FROM jobs WHERE stage IN ({marks}) AND "
                                 "status IN (?, ?)", (*stages, *PENDING)).fetchone()[0]

    def counts(self) -> dict[str, dict[str, int]]:
        """{stage: {status: n}} for every stage, zeros included."""
        out = {stage: {s.value: 0 for s in JobStatus} for stage in table.names()}
        for stage, status, n in self.conn.execute(
                "SELECT stage, status, COUNT(*) FROM jobs GROUP BY stage, status"):
            out.setdefault(stage, {})[status] = n
        return out

    def failures(self, limit: int = 50) -> list[dict]:
        """Failed jobs and jobs waiting after an error, newest first, with the video name."""
        rows = self.conn.execute(
            "SELECT j.stage, j.status, j.attempts, j.last_error, j.updated_at, s.name, s.path,"
            " s.status AS source_status FROM jobs j JOIN sources s ON s.sha256 = j.source_sha256"
            " WHERE j.last_error IS NOT NULL AND j.status != ? ORDER BY j.updated_at DESC"
            " LIMIT ?", (JobStatus.DONE, limit))
        return [dict(r) for r in rows]

    def source_counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT status, COUNT(*) FROM sources GROUP BY status")
        return {status: n for status, n in rows}

    def _enqueue(self, stage: str, sha256: str, now: float, after_s: float) -> None:
        self.conn.execute("INSERT OR IGNORE INTO jobs (stage, source_sha256, not_before,"
                          " created_at, updated_at) VALUES (?,?,?,?,?)",
                          (stage, sha256, now + after_s, now, now))

    def _set(self, job: Job, status: str, error: str | None, *, attempted: bool, now: float,
             not_before: float | None = None) -> None:
        self.conn.execute(
            "UPDATE jobs SET status = ?, last_error = ?, attempts = attempts + ?,"
            " updated_at = ?, not_before = COALESCE(?, not_before) WHERE id = ?",
            (status, error, int(attempted), now, not_before, job.id))


_SOURCE_COLUMNS = "sha256, path, name, size, status, reason, clips, finished_at"


def _source(row) -> Source:
    data = dict(row)
    data["status"] = SourceStatus(data["status"])
    return Source(**data)
