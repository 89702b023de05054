"""`hydrus-motion retry NAME... | --all`: quarantined or given-up videos, once more.

A quarantined video is moved back from the quarantine folder into the watch folder (its
NAME.reason.txt removed) and its record starts over from the first stage, exactly as
if a person had dropped it there again; a video that failed for good where it lies is
queued again in place. The daemon (running or started later) then processes it.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from hydrus_motion.config import Config, state_dir
from hydrus_motion.ingest.dispose import clear_reason_file, free_name
from hydrus_motion.scenes.sidecar import default_sidecar_path
from hydrus_motion.store.queue import JobQueue, Source
from hydrus_motion.store.states import SeenDecision, SourceStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retried:
    name: str
    sha256: str
    was: str  # quarantined | failed
    source: str  # where it was
    path: str  # where it is queued from now
    reason: str | None  # why it was quarantined or given up


def retry_videos(cfg: Config, names: list[str], every: bool) -> tuple[list[Retried], list[str]]:
    """(what was queued again, the names that matched no quarantined or failed video,
    or whose file is gone)."""
    from hydrus_motion.store import open_store

    store = open_store(state_dir(cfg))
    try:
        queue = JobQueue(store)
        stopped = queue.sources(SourceStatus.QUARANTINED, SourceStatus.FAILED)
        wanted = set(names)
        chosen = [s for s in stopped if every or s.name in wanted
                  or Path(s.path).name in wanted]
        found = {s.name for s in chosen} | {Path(s.path).name for s in chosen}
        done, gone = [], []
        for source in chosen:
            if Path(source.path).exists():
                done.append(_retry(cfg, queue, source))
            else:  # a person deleted (or moved) it: nothing to process
                log.warning("%s: cannot retry: %s is gone (drop the video into the watch "
                            "folder instead)", source.name, source.path)
                gone.append(source.name)
        return done, [n for n in names if n not in found] + gone
    finally:
        store.close()


def _retry(cfg: Config, queue: JobQueue, source: Source) -> Retried:
    old = Path(source.path)
    target = old
    watch = Path(cfg.daemon.watch_dir).expanduser() if cfg.daemon.watch_dir else None
    if watch is not None and watch.resolve() not in old.resolve().parents:  # not in it yet
        target = free_name(watch, source.name, source.sha256).resolve()
        shutil.move(str(old), str(target))
        if default_sidecar_path(old).exists():
            shutil.move(str(default_sidecar_path(old)), str(default_sidecar_path(target)))
    queue.restart_source(source.sha256, str(target), target.name)
    if target.exists():  # intake knows this file: it is not hashed and taken twice
        stat = target.stat()
        queue.remember(str(target), stat.st_size, stat.st_mtime_ns, source.sha256,
                       SeenDecision.TAKEN)
    if target != old:
        queue.forget(str(old))
        clear_reason_file(old)
    was = "quarantined" if source.status is SourceStatus.QUARANTINED else "failed"
    log.info("%s: queued again from %s (it %s: %s)", source.name, target, was, source.reason)
    return Retried(source.name, source.sha256, was, str(old), str(target), source.reason)
