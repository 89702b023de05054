"""Run history: one row per nightly (or other scheduled) run, written as it starts.

A row with no `finished_at` whose process no longer holds the run lock was killed;
`status` reports it as interrupted, and the missed-run policy counts it as not run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from hydrus_motion.base import SYSTEM_CLOCK, Clock
from hydrus_motion.store.db import Store
from hydrus_motion.store.states import RunOutcome


@dataclass(frozen=True)
class Run:
    id: int
    kind: str
    started_at: float
    finished_at: float | None
    outcome: RunOutcome | None  # None: still running, or killed
    error: str | None
    details: dict[str, Any]
    pid: int


class RunLog:
    def __init__(self, store: Store, clock: Clock = SYSTEM_CLOCK):
        self.conn = store.conn
        self.clock = clock

    def start(self, kind: str) -> int:
        with self.conn:
            cur = self.conn.execute("INSERT INTO runs (kind, started_at, pid) VALUES (?,?,?)",
                                    (kind, self.clock.now(), os.getpid()))
        return int(cur.lastrowid)

    def finish(self, run_id: int, outcome: RunOutcome, error: str | None = None,
               details: dict[str, Any] | None = None) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET finished_at = ?, outcome = ?, error = ?,"
                              " details = ? WHERE id = ?",
                              (self.clock.now(), outcome, error,
                               json.dumps(details or {}, ensure_ascii=False), run_id))

    def last(self, kind: str | None = None, limit: int = 10) -> list[Run]:
        where, params = ("WHERE kind = ?", (kind,)) if kind else ("", ())
        rows = self.conn.execute(f"SELECT * FROM runs {where} ORDER BY started_at DESC, id DESC"
                                 " LIMIT ?", (*params, limit))
        return [_run(r) for r in rows]

    def last_attempt(self, kind: str) -> Run | None:
        """The latest run that did real work or tried to: the missed-run rule's "last run".
        Skipped runs (another held the lock) and killed ones (never finished) do not count."""
        row = self.conn.execute("SELECT * FROM runs WHERE kind = ? AND outcome IS NOT NULL"
                                " AND outcome != ? ORDER BY started_at DESC, id DESC LIMIT 1",
                                (kind, RunOutcome.SKIPPED)).fetchone()
        return _run(row) if row else None


def _run(row: Any) -> Run:
    data = dict(row)
    data["details"] = json.loads(data["details"]) if data["details"] else {}
    data["outcome"] = RunOutcome(data["outcome"]) if data["outcome"] else None
    return Run(**data)
