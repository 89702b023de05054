"""Every status the state database stores, defined once.

Each enum names one column's values; a member *is* its stored string (StrEnum), so rows
written by any earlier version read back unchanged and `status == "queued"` still holds.
Never change a value: existing databases hold them.

    clips.push_status     PushStatus     queued ─▶ pushed | deleted | failed
    jobs.status           JobStatus      queued ─▶ running ─▶ done | failed
    sources.status        SourceStatus   active ─▶ done | quarantined | failed
    seen_files.decision   SeenDecision   taken | duplicate
    runs.outcome          RunOutcome     ok | failed | skipped (NULL while running)
"""

from __future__ import annotations

from enum import StrEnum


class PushStatus(StrEnum):
    QUEUED = "queued"  # recorded, not yet (fully) in Hydrus
    PUSHED = "pushed"
    DELETED = "deleted"  # a person deleted it in Hydrus: never pushed again
    FAILED = "failed"  # Hydrus refused it, or its file is gone


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class SourceStatus(StrEnum):
    ACTIVE = "active"  # some stage still to run
    DONE = "done"
    QUARANTINED = "quarantined"  # broken input, moved aside
    FAILED = "failed"  # gave up after daemon.max_attempts


class SeenDecision(StrEnum):
    TAKEN = "taken"
    DUPLICATE = "duplicate"


class RunOutcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
