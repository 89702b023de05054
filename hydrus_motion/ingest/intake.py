"""Taking files from the watch folder: settled, hashed, deduplicated, queued.

One pass (`Intake.pass_once`) lists the folder, asks the settle tracker about each
candidate, and for every settled file it has not decided on before: hashes it, and
either queues it (a `sources` row and its first job, one transaction) or skips it as a
duplicate of content already taken. Decisions are remembered by path, size and mtime,
so a kept file is never hashed twice and a restart does not take anything again.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from pathlib import Path

from hydrus_motion.config import (
    Config,
    archive_dir,
    clips_dir,
    quarantine_dir,
    state_dir,
    watch_dir,
)
from hydrus_motion.ingest.content import file_sha256
from hydrus_motion.ingest.dispose import clear_reason_file, finish_video
from hydrus_motion.ingest.watch import SettleTracker, WatchFilter, readable, scan
from hydrus_motion.store.queue import JobQueue
from hydrus_motion.store.states import SeenDecision, SourceStatus

log = logging.getLogger(__name__)
GIB = 1024**3


def low_space(cfg: Config) -> str | None:
    """Why intake pauses: a state or clips folder below daemon.min_free_gb; else None."""
    floor = cfg.daemon.min_free_gb
    if floor <= 0:
        return None
    for folder in (state_dir(cfg), clips_dir(cfg)):
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        try:
            free = shutil.disk_usage(existing or folder).free
        except OSError:
            continue
        if free < floor * GIB:
            return (f"only {free / GIB:.2f} GiB free for {folder} (daemon.min_free_gb: "
                    f"{floor:g}); new videos wait in the watch folder")
    return None


class Intake:
    def __init__(self, cfg: Config, queue: JobQueue, tracker: SettleTracker | None = None):
        self.cfg = cfg
        self.root = watch_dir(cfg)
        self.queue = queue
        self.tracker = tracker or SettleTracker(cfg.daemon.settle_s)
        # our own folders may sit inside the watch folder; never take from them
        self.skip = tuple(p.resolve() for p in (archive_dir(cfg), quarantine_dir(cfg),
                                                clips_dir(cfg), state_dir(cfg)))
        self.wanted = WatchFilter(cfg.daemon.include, cfg.daemon.exclude)
        self.counts: Counter[str] = Counter()
        self.unlistable: str | None = None  # why the watch folder cannot be listed now
        self.paused: str | None = None  # why intake is paused (low free space), if it is
        self.space_check = low_space

    def pass_once(self) -> int:
        """Look at every candidate once; returns how many are still settling."""
        paused = self.space_check(self.cfg)
        if paused is not None:  # one line when it pauses, one when it resumes
            if self.paused is None:
                log.warning("watch: intake paused: %s", paused)
            self.paused = paused
            return self.tracker.pending
        if self.paused is not None:
            log.info("watch: intake resumed: free space is above daemon.min_free_gb again")
            self.paused = None
        try:
            candidates = list(scan(self.root.resolve(), self.cfg.daemon.recursive, self.skip,
                                   wanted=self.wanted))
        except OSError as exc:  # one line per outage, not one per rescan
            if self.unlistable is None:
                log.warning("watch: cannot list %s (%s); trying again every rescan",
                            self.root, exc.strerror or exc)
            self.unlistable = str(exc)
            return self.tracker.pending
        if self.unlistable is not None:
            log.info("watch: %s can be listed again", self.root)
            self.unlistable = None
        present = set()
        for path in candidates:
            present.add(path)
            try:
                stat = path.stat()
            except OSError:
                continue
            if self.queue.seen(str(path), stat.st_size, stat.st_mtime_ns):
                self.tracker.forget(path)
                continue
            if not self.tracker.settled(path, stat.st_size, stat.st_mtime_ns):
                continue
            if not readable(path):  # still held open by a copy (Windows)
                self.tracker.forget(path)
                continue
            self._take(path, stat.st_size, stat.st_mtime_ns)
        self.tracker.keep_only(present)
        return self.tracker.pending

    def _take(self, path: Path, size: int, mtime_ns: int) -> None:
        try:
            sha256 = file_sha256(path)
            after = path.stat()
        except OSError as exc:
            log.warning("watch: cannot read %s: %s", path, exc.strerror or exc)
            self.tracker.forget(path)
            return
        if (after.st_size, after.st_mtime_ns) != (size, mtime_ns):  # changed while hashing
            self.tracker.forget(path)
            return
        self.tracker.forget(path)
        if self.queue.add_source(sha256, str(path), path.name, size):
            self.queue.remember(str(path), size, mtime_ns, sha256, SeenDecision.TAKEN)
            self.counts["taken"] += 1
            log.info("%s: taken (%d bytes, sha256 %s)", path.name, size, sha256[:12])
            return
        known = self.queue.source(sha256)
        if known and self._taken_again(known, path, size, mtime_ns):
            return
        self.counts["duplicates"] += 1
        log.info("%s: skipped: same content as %s (%s)", path.name,
                 known.name if known else "?", known.status if known else "?")
        if known and Path(known.path) == path:  # the very file we took (a restart)
            self.queue.remember(str(path), size, mtime_ns, sha256, SeenDecision.TAKEN)
            return
        action = self.cfg.daemon.after_success
        moved = finish_video(path, action, archive_dir(self.cfg), sha256)
        if action == "keep":
            self.queue.remember(str(path), size, mtime_ns, sha256, SeenDecision.DUPLICATE)
        elif moved:
            log.info("%s: duplicate moved to %s", path.name, moved)

    def _taken_again(self, known, path: Path, size: int, mtime_ns: int) -> bool:
        """Same content as a known video, but not a duplicate to skip: True if handled."""
        if known.status is SourceStatus.ACTIVE and not Path(known.path).exists():
            # renamed or moved within the watch folder while it waited: follow it
            self.queue.update_source(known.sha256, path=str(path))
            log.info("%s: %s moved here while queued; following it", path.name, known.name)
        elif known.status in (SourceStatus.FAILED, SourceStatus.QUARANTINED):
            # failed for good or quarantined before; a person dropped it again (as the
            # reason file says to), so its record is cleared and it starts over
            self.queue.restart_source(known.sha256, str(path), path.name)
            clear_reason_file(Path(known.path))
            self.counts["taken"] += 1
            log.info("%s: taken again (it %s before: %s)", path.name,
                     "was quarantined" if known.status is SourceStatus.QUARANTINED else "failed",
                     known.reason)
        else:
            return False
        self.queue.forget(known.path)
        self.queue.remember(str(path), size, mtime_ns, known.sha256, SeenDecision.TAKEN)
        return True
