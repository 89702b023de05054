"""Push clips into Hydrus and repair what Hydrus lost; the same check does both.

For every clip: read what Hydrus holds for its hash, then add only what is missing:
- the file, unless Hydrus has it, or a person deleted it (a decision we never undo);
- each tag that is neither current nor deleted on our tag service (a person removing a
  tag, say `motion:pending`, is a decision too);
- each note whose name is absent (a note with other text is a person's edit).
So pushing twice is a no-op, and after a Hydrus crash the same pass re-applies exactly
what the crash lost. Outcomes are recorded per clip in the local store.

Near duplicates found by annotation (store/signatures.py) are then tagged as one group
(`duplicate group:<hash>`) once both files are there; each pair once. Not Hydrus' file
relationships: it keeps potential-duplicate pairs only for still images (docs/CURATION.md).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from hydrus_motion.hydrus.gateway import (
    ALREADY_THERE,
    DELETED_BEFORE,
    NEWLY_IMPORTED,
    FileState,
    HydrusAccessError,
    HydrusError,
    HydrusGateway,
    HydrusServiceError,
)
from hydrus_motion.hydrus.scheme import clean_tag, duplicate_group_tag
from hydrus_motion.store.db import DELETED, FAILED, PUSHED, QUEUED, ClipRecord, Store
from hydrus_motion.store.signatures import mark_grouped, to_group

log = logging.getLogger(__name__)

IMPORTED, ALREADY, REPAIRED, UNCHANGED = "imported", "already in hydrus", "repaired", "unchanged"


@dataclass(frozen=True)
class PushOutcome:
    sha256: str
    path: str
    result: str  # imported | already in hydrus | repaired | unchanged | deleted | failed | queued
    detail: str = ""


class _Rejected(Exception):
    """Hydrus will not take this clip (import status 3, 4 or 7); recorded, not retried."""

    def __init__(self, status: str, detail: str):
        super().__init__(detail)
        self.status = status


def push_clips(gateway: HydrusGateway, store: Store,
               records: list[ClipRecord]) -> list[PushOutcome]:
    """Bring every record's file, tags and notes into Hydrus.

    Raises the gateway's error when Hydrus is unreachable or refuses the key: the clips
    not yet done stay queued (with the error recorded) for the next pass.
    """
    outcomes: list[PushOutcome] = []
    if not records:
        return outcomes
    try:
        states = gateway.files([r.sha256 for r in records])
    except HydrusError as exc:
        leave_queued(store, records, exc)
        raise
    for n, record in enumerate(records):
        try:
            result = _sync(gateway, record, states[record.sha256])
        except _Rejected as rejected:
            store.mark(record.sha256, rejected.status, str(rejected))
            log.warning("%s: %s", record.path.name, rejected)
            outcomes.append(PushOutcome(record.sha256, str(record.path), rejected.status,
                                        str(rejected)))
            continue
        except HydrusError as exc:
            if exc.retryable or isinstance(exc, HydrusAccessError | HydrusServiceError):
                leave_queued(store, records[n:n + 1], exc)  # the error is this clip's
                leave_queued(store, records[n + 1:], exc, waiting_on=record)
                raise
            store.mark(record.sha256, FAILED, str(exc))  # this clip only; go on
            outcomes.append(PushOutcome(record.sha256, str(record.path), FAILED, str(exc)))
            continue
        wrote = result != UNCHANGED
        store.mark(record.sha256, PUSHED, attempted=wrote, pushed=wrote)
        if result != UNCHANGED:
            log.info("%s: %s", record.path.name, result)
        outcomes.append(PushOutcome(record.sha256, str(record.path), result))
    grouped = group_duplicates(gateway, store)
    if (grouped or any(o.result in (IMPORTED, ALREADY, REPAIRED) for o in outcomes)) and \
            not gateway.commit():
        log.info("hydrus: the key may not manage the database, so these writes are durable "
                 "after Hydrus' next commit (30 s); `reconcile` repairs a crash before that")
    return outcomes


def group_duplicates(gateway: HydrusGateway, store: Store) -> int:
    """Tag recorded near-duplicate pairs (both pushed) with their group's tag.

    Returns how many pairs were tagged. A failure leaves the rest recorded for a later
    pass; it never fails the push."""
    pairs = to_group(store)
    done = []
    for pair in pairs:
        tag = duplicate_group_tag(pair.root)
        try:
            gateway.add_tags(pair.sha256, [tag])
            gateway.add_tags(pair.duplicate_of, [tag])
        except HydrusError as exc:
            log.warning("hydrus: %d near-duplicate pair(s) not tagged as a group yet: %s",
                        len(pairs) - len(done), exc.message)
            break
        done.append(pair)
    if done:
        mark_grouped(store, done)
        log.info("hydrus: %d near-duplicate pair(s) tagged as a duplicate group",
                 len(done))
    return len(done)


def summarise(outcomes: list[PushOutcome]) -> dict[str, int]:
    return dict(Counter(o.result for o in outcomes))


def _sync(gateway: HydrusGateway, record: ClipRecord, state: FileState) -> str:
    if state.deleted:
        raise _Rejected(DELETED, "deleted in Hydrus by a person; not re-imported")
    wrote = False
    imported = False
    if not state.present:
        if not record.path.is_file():
            raise _Rejected(FAILED, f"the clip file {record.path} is gone, so it cannot be "
                                    "uploaded; ingest the source again")
        result = gateway.import_file(record.path)
        if result.status == DELETED_BEFORE:
            raise _Rejected(DELETED, f"Hydrus deleted this file before: {result.note}")
        if result.status not in (NEWLY_IMPORTED, ALREADY_THERE):
            raise _Rejected(FAILED, f"Hydrus did not import it (status {result.status}): "
                                    f"{result.note or 'no reason given'}")
        if result.hash != record.sha256:
            raise _Rejected(FAILED, f"{record.path} changed on disk since it was cut "
                                    f"(hash {result.hash[:12]}, recorded {record.sha256[:12]})")
        imported = result.status == NEWLY_IMPORTED
        wrote = True
    decided = state.tags | state.deleted_tags
    missing_tags = [t for t in record.tags if clean_tag(t) not in decided]
    if missing_tags:
        gateway.add_tags(record.sha256, missing_tags)
        wrote = True
    missing_notes = {k: v for k, v in record.notes.items() if k not in state.notes}
    if missing_notes:
        gateway.set_notes(record.sha256, missing_notes)
        wrote = True
    if record.push_status == PUSHED:
        return REPAIRED if wrote else UNCHANGED
    return IMPORTED if imported else ALREADY


def leave_queued(store: Store, records: list[ClipRecord], exc: HydrusError,
                 waiting_on: ClipRecord | None = None) -> None:
    """Record why these clips are still queued (no request about them was made); with
    `waiting_on`, the push stopped at that clip and the error is its, not theirs."""
    message = exc.message if waiting_on is None else (
        f"not tried yet: the push stopped at {waiting_on.path.name} (Hydrus unavailable or "
        "refusing); it goes on when Hydrus is back")
    for record in records:
        if record.push_status == QUEUED:
            store.mark(record.sha256, QUEUED, message)
