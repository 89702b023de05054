"""A lock that a crash cannot leave behind: the operating system drops it with the process.

`flock` (POSIX) / `msvcrt.locking` (Windows) on a file in the state folder. The file
itself stays; what counts is the OS lock on it, which dies with its holder whether that
holder exited, crashed or was killed with -9. The holder writes its pid into the file so
`status` and a refused second instance can say who holds it.
"""

from __future__ import annotations

import os
from pathlib import Path

_POSIX = os.name == "posix"


class LockHeld(Exception):
    """Another live process holds the lock; `pid` says which (None if unknown)."""

    def __init__(self, path: Path, pid: int | None):
        super().__init__(f"{path} is held by pid {pid or '?'}")
        self.path = path
        self.pid = pid


class ProcessLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> ProcessLock:
        """Take the lock without waiting; LockHeld if a live process has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except OSError:
            os.close(fd)
            raise LockHeld(self.path, holder(self.path)) from None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> ProcessLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(path: Path) -> int | None:
    """pid of the live holder, or None when nobody holds the lock (or it never existed)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        try:
            _lock(fd)
        except OSError:  # held: read who holds it
            try:
                text = Path(path).read_text(encoding="ascii", errors="replace").strip()
            except OSError:
                return -1
            return int(text) if text.isdigit() else -1
        _unlock(fd)
        return None
    finally:
        os.close(fd)


if _POSIX:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
else:  # Windows: lock one byte far past the pid text, so others can still read the pid
    import msvcrt

    _BYTE = 1 << 20

    def _lock(fd: int) -> None:
        os.lseek(fd, _BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]

    def _unlock(fd: int) -> None:
        os.lseek(fd, _BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
