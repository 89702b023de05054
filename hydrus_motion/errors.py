"""The errors users see. Each carries a one-line message and a hint saying what to do.

The CLI maps `UsageError` (and `ConfigError`) to exit code 2 and every other
`HydrusMotionError` to exit code 1; anything else is a bug and shows a traceback.
"""

from __future__ import annotations


class HydrusMotionError(Exception):
    """Base for every error we expect and explain."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(HydrusMotionError):
    """Bad command-line usage."""

    exit_code = 2


class ConfigError(UsageError):
    """The config file is invalid; `problems` lists every one of them."""

    def __init__(self, source: str, problems: list[str]):
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{source}: {len(problems)} config problem(s):\n{lines}",
            hint="see config.example.yaml for every key, its default and allowed values",
        )
        self.problems = problems


class ToolMissing(HydrusMotionError):
    """An external program (ffmpeg, ffprobe) is not installed or not runnable."""


class ToolFailed(HydrusMotionError):
    """An external program exited non-zero or timed out; `stderr_tail` holds its last words."""

    def __init__(self, message: str, *, argv: list[str], returncode: int | None, stderr_tail: str,
                 hint: str | None = None):
        super().__init__(message, hint)
        self.argv = argv
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class BadVideo(HydrusMotionError):
    """The input is not a usable video; the message names the file and the reason."""

    def __init__(self, path: object, reason: str, hint: str | None = None):
        super().__init__(f"{path}: {reason}", hint)
        self.path = path
        self.reason = reason


class SidecarError(HydrusMotionError):
    """A scenes sidecar cannot be read; the message names the file and line."""


class MissingExtra(HydrusMotionError):
    """An optional dependency is not installed; the hint names the extra."""

    def __init__(self, feature: str, extra: str, module: str):
        super().__init__(
            f"{feature} needs the Python package '{module}', which is not installed",
            hint=f"pip install 'hydrus-motion[{extra}]'",
        )


class Interrupted(HydrusMotionError):
    """A stop was requested and the running external program was killed for it.

    Not the input's fault: the work is redone after a restart, never quarantined.
    """


class LocalFailure(HydrusMotionError):
    """Something on this machine failed, not the input: no space left, permission denied,
    out of memory, a tool killed by a signal or a timeout.

    Never the video's fault: the job waits and is retried with `reason` shown in `status`;
    the video is never quarantined for it. `path` names the file being worked on.
    """

    def __init__(self, path: object, reason: str, hint: str | None = None):
        super().__init__(f"{path}: {reason}", hint)
        self.path = path
        self.reason = reason
