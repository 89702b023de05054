"""The one wrapper every external program runs through.

No shell, argv lists only; each child gets its own process group so a stop can kill it
and everything it spawned; stderr is captured and its tail goes into `ToolFailed`;
every run has a timeout. `children` knows every running child, so the daemon's stop
kills them all (their waiters raise `Interrupted`); on Linux a child also dies with us,
even after `kill -9`.
Writing files so that a reader never sees half of one is files.py.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from hydrus_motion.errors import Interrupted, ToolFailed, ToolMissing

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 20
_POSIX = os.name == "posix"


def find_tool(configured: str) -> str:
    """Absolute path of an external program, or ToolMissing with an install hint."""
    found = shutil.which(configured)
    if not found:
        name = Path(configured).name
        raise ToolMissing(
            f"{name} was not found (looked for {configured!r} on PATH)",
            hint="install ffmpeg (Debian/Ubuntu: sudo apt-get install ffmpeg; Windows: "
                 "winget install ffmpeg) or set tools.ffmpeg / tools.ffprobe in the config",
        )
    return found


def tool_version(executable: str, timeout_s: float = 30) -> str:
    """First line of `PROGRAM -version`, e.g. 'ffmpeg version 5.1.6-0+deb12u1'."""
    out = run_tool([executable, "-hide_banner", "-version"], timeout_s=timeout_s).stdout
    first = out.decode("utf-8", "replace").splitlines()[0] if out else ""
    match = re.match(r"(\S+ version \S+)", first)
    return match.group(1) if match else first.strip()


def _popen_kwargs() -> dict:
    if _POSIX:
        kwargs: dict = {"start_new_session": True}
        if _prctl is not None:
            kwargs["preexec_fn"] = _die_with_parent(os.getpid())
        return kwargs
    return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]


def _find_prctl():
    """Linux's prctl, resolved before any fork so a child runs only the one C call."""
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _find_prctl()


def _die_with_parent(parent: int):
    """Linux: the child gets SIGKILL when its parent dies, even by `kill -9`.

    A child in its own session outlives a killed parent otherwise: an orphan ffmpeg would
    go on writing into a scratch folder that the restarted daemon has cleaned up.
    """

    def in_child() -> None:
        _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return in_child


def start_process(argv: Sequence[str], **kwargs) -> subprocess.Popen:
    """A child in its own process group that dies with us (Linux), for callers that stop it
    their own way (the nightly run gets SIGTERM and time); `children` does not track it."""
    return subprocess.Popen([str(a) for a in argv], **kwargs, **_popen_kwargs())


class _Children:
    """Every running child, so a stop can kill them all; after `stop()` none may start.

    Each child's waiter then raises `Interrupted`, never `ToolFailed`, so work cut short
    by a stop is redone later instead of being blamed on the input.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._killed: set[int] = set()
        self.stopping = False

    def spawn(self, argv: list[str], **kwargs) -> subprocess.Popen:
        with self._lock:
            if self.stopping:
                raise Interrupted(f"not starting {Path(argv[0]).name}: stopping")
            proc = subprocess.Popen(argv, **kwargs, **_popen_kwargs())
            self._running.add(proc)
        return proc

    def done(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._running.discard(proc)
        self.check(proc)

    def check_stopping(self, what: str) -> None:
        """For work we do in our own process (the one pass's decode): stop like a child."""
        if self.stopping:
            raise Interrupted(f"{what} was stopped")

    def check(self, proc: subprocess.Popen) -> None:
        if proc.pid in self._killed:
            raise Interrupted(f"{Path(str(proc.args[0])).name} was stopped")

    def stop(self) -> int:
        """Kill every running child with its process group; refuse new ones."""
        with self._lock:
            self.stopping = True
            procs = list(self._running)
            self._killed.update(p.pid for p in procs)
        for proc in procs:
            kill_process_group(proc)
        return len(procs)


children = _Children()


def kill_process_group(proc: subprocess.Popen) -> None:
    """Kill a child and everything it started; safe to call when it already ended."""
    if proc.poll() is not None:
        return
    try:
        if _POSIX:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _tail(data: bytes | Sequence[str]) -> str:
    if isinstance(data, bytes):
        lines = data.decode("utf-8", "replace").splitlines()
    else:
        lines = list(data)
    return "\n".join(line for line in lines[-STDERR_TAIL_LINES:] if line.strip())


def _failure(argv: list[str], returncode: int | None, stderr_tail: str, what: str) -> ToolFailed:
    name = Path(argv[0]).name
    last = stderr_tail.splitlines()[-1] if stderr_tail else "no error output"
    return ToolFailed(f"{name} {what}: {last}", argv=argv, returncode=returncode,
                      stderr_tail=stderr_tail)


def run_tool(argv: Sequence[str], *, timeout_s: float) -> subprocess.CompletedProcess:
    """Run to completion, capturing stdout and stderr. Raises ToolFailed on error/timeout."""
    argv = [str(a) for a in argv]
    log.debug("run: %s", subprocess.list2cmdline(argv))
    proc = children.spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_process_group(proc)
        raise _failure(argv, None, "", f"timed out after {timeout_s:g} s") from None
    except BaseException:
        kill_process_group(proc)
        raise
    finally:
        if proc.poll() is not None:
            children.done(proc)
    if proc.returncode != 0:
        raise _failure(argv, proc.returncode, _tail(stderr), f"exited with {proc.returncode}")
    return subprocess.CompletedProcess(argv, 0, stdout, stderr)


def widen_pipe(fd: int) -> None:
    """Linux: a pipe as large as allowed (pipe-max-size, 1 MiB by default) instead of
    64 KiB, so a raw frame of megabytes crosses in a few writes, not dozens of wake-ups."""
    try:
        import fcntl

        with open("/proc/sys/fs/pipe-max-size", encoding="ascii") as fh:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, int(fh.read()))
    except (ImportError, AttributeError, OSError, ValueError):
        pass  # elsewhere, or not allowed: the default size works, a little slower


class StreamingTool:
    """A child whose stdout is read as it runs (raw frames), stderr read by a thread.

    `stderr_lines` receives every stderr line (for parsers such as showinfo); the tail is
    kept for errors. Use as a context manager; leaving it early kills the child.
    """

    def __init__(self, argv: Sequence[str], *, timeout_s: float, on_stderr_line=None):
        self.argv = [str(a) for a in argv]
        self._on_line = on_stderr_line
        self._tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._timeout_s = timeout_s
        self._timer: threading.Timer | None = None
        self.timed_out = False
        log.debug("run: %s", subprocess.list2cmdline(self.argv))
        self.proc = children.spawn(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, bufsize=0)
        assert self.proc.stdout is not None
        widen_pipe(self.proc.stdout.fileno())
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self._timer = threading.Timer(timeout_s, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.timed_out = True
        kill_process_group(self.proc)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if self._on_line is not None:
                self._on_line(line)
            self._tail.append(line)

    def read_exact(self, size: int) -> bytes | None:
        """Exactly `size` bytes of stdout, or None at a clean end of stream."""
        assert self.proc.stdout is not None
        chunks = []
        remaining = size
        while remaining:
            chunk = self.proc.stdout.read(remaining)
            if not chunk:
                children.check(self.proc)  # a stop is not the end of the video
                if remaining == size:
                    return None
                raise _failure(self.argv, self.proc.poll(), self.stderr_tail,
                               "ended in the middle of a frame")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    @property
    def stderr_tail(self) -> str:
        return _tail(list(self._tail))

    def finish(self) -> None:
        """Wait for a clean exit; raise ToolFailed when the child failed or timed out."""
        returncode = self.proc.wait()
        self._reader.join()
        if self._timer:
            self._timer.cancel()
        children.done(self.proc)
        if self.timed_out:
            raise _failure(self.argv, None, self.stderr_tail,
                           f"timed out after {self._timeout_s:g} s")
        if returncode != 0:
            raise _failure(self.argv, returncode, self.stderr_tail, f"exited with {returncode}")

    def __enter__(self) -> StreamingTool:
        return self

    def __exit__(self, *exc) -> None:
        if self._timer:
            self._timer.cancel()
        kill_process_group(self.proc)
        with children._lock:
            children._running.discard(self.proc)  # no check: an exception may be in flight
        self._reader.join(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass


def ffmpeg_path_arg(path: Path) -> str:
    """A path ffmpeg reads as a plain file, whatever it is named ('a:b.mp4', '-x.mp4')."""
    return "file:" + str(Path(path).absolute())
