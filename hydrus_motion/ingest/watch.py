"""The watch folder: which files are candidates, when one has settled, and the wake-ups.

A file is taken only when (1) its name is not a temporary or hidden one (downloads in
progress, editor backups, our own sidecars), (2) it passes `daemon.include` /
`daemon.exclude` (by default: video containers only; subtitles, .nfo, thumbnails and
other side files stay where they are), and (3) its size and mtime have not changed
for `settle_s` seconds while we looked: a copy, a download or a recording still growing
keeps changing them. File-system events (watchdog) only wake the scanner; a periodic full
rescan finds what events missed, as they often are on network drives.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Names downloaders, browsers and copy tools use while a file is incomplete.
TEMP_SUFFIXES = (".part", ".crdownload", ".download", ".partial", ".tmp", ".temp", ".!qb",
                 ".opdownload", ".filepart", ".aria2", ".unconfirmed")
# Our own files, and OS clutter: never videos to take.
OWN_SUFFIXES = (".scenes.txt", ".reason.txt", ".scenes.txt.old")
OS_CLUTTER = ("thumbs.db", "desktop.ini", ".ds_store")


def is_candidate_name(name: str) -> bool:
    lower = name.lower()
    if name.startswith((".", "~$")) or name.endswith("~") or lower in OS_CLUTTER:
        return False
    return not lower.endswith(TEMP_SUFFIXES + OWN_SUFFIXES)


@dataclass(frozen=True)
class WatchFilter:
    """daemon.include / daemon.exclude: globs on the name, or with "/" the relative path."""

    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()

    def wanted(self, path: Path, root: Path) -> bool:
        name = path.name.lower()
        try:
            relative = path.relative_to(root).as_posix().lower()
        except ValueError:
            relative = name

        def hit(patterns: tuple[str, ...]) -> bool:
            return any(fnmatch.fnmatchcase(relative if "/" in p else name, p.lower())
                       for p in patterns)

        return hit(self.include) and not hit(self.exclude)


def scan(root: Path, recursive: bool, skip: tuple[Path, ...] = (),
         top: bool = True, wanted: WatchFilter = WatchFilter(),
         base: Path | None = None) -> Iterator[Path]:
    """Candidate files under `root` (hidden folders and `skip` folders left out, and
    files `wanted` does not take).

    OSError when `root` itself cannot be listed (say, a network drive that went away);
    a sub-folder that cannot be listed is passed over.
    """
    try:
        entries = list(os.scandir(root))
    except OSError as exc:
        if top:
            raise
        log.debug("watch: cannot list %s: %s", root, exc.strerror or exc)
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                path = Path(entry.path)
                if recursive and not entry.name.startswith(".") and path not in skip:
                    yield from scan(path, recursive, skip, False, wanted, base or root)
            elif entry.is_file() and is_candidate_name(entry.name) and \
                    wanted.wanted(Path(entry.path), base or root):
                yield Path(entry.path)
        except OSError:  # vanished while we looked
            continue


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # when we first saw it with this size and mtime


class SettleTracker:
    """Remembers each file's last size and mtime; says when they held for `settle_s`."""

    def __init__(self, settle_s: float, clock: Callable[[], float] = time.monotonic):
        self.settle_s = settle_s
        self.clock = clock
        self._seen: dict[Path, _Seen] = {}

    def settled(self, path: Path, size: int, mtime_ns: int) -> bool:
        now = self.clock()
        seen = self._seen.get(path)
        if seen is None or (seen.size, seen.mtime_ns) != (size, mtime_ns):
            self._seen[path] = _Seen(size, mtime_ns, now)
            return False
        return now - seen.since >= self.settle_s

    def forget(self, path: Path) -> None:
        self._seen.pop(path, None)

    def keep_only(self, present: set[Path]) -> None:
        for path in list(self._seen):
            if path not in present:
                del self._seen[path]

    @property
    def pending(self) -> int:
        return len(self._seen)


def readable(path: Path) -> bool:
    """Can we open it for reading? (Windows refuses while a copy still holds the file.)"""
    try:
        with path.open("rb"):
            return True
    except OSError:
        return False


def start_observer(root: Path, recursive: bool, wake: threading.Event):
    """A watchdog observer that sets `wake` on any change; None if events are unavailable."""
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError:  # a base dependency; a broken install still works by rescans
        log.warning("watch: the watchdog package is missing; finding files by rescans only")
        return None

    class Wake(FileSystemEventHandler):
        def on_any_event(self, event) -> None:
            wake.set()

    observer = Observer()
    try:
        observer.schedule(Wake(), str(root), recursive=recursive)
        observer.daemon = True
        observer.start()
    except OSError as exc:  # e.g. inotify watch limit reached
        log.warning("watch: no file events for %s (%s); finding files by rescans only",
                    root, exc.strerror or exc)
        return None
    return observer
