"""What the daemon does with a stage that raised: one pure decision, applied by the daemon.

    decision = decide("slice", exc, attempts=1, waits=0, cfg=cfg.daemon)
    decision.action   # Action.WAIT_LOCAL
    decision.delay_s  # 60.0

    stop requested / Interrupted        -> REQUEUE      again at the next start, not counted
    Hydrus unreachable / key refused    -> WAIT_HYDRUS  due once Hydrus is back, not counted
    this machine failed (LocalFailure,  -> WAIT_LOCAL   backoff from local_retry_s, doubling,
      ENOSPC/EACCES/ENOMEM, out of memory)              capped at local_retry_max_s; never
                                                        counted, never quarantined
    broken input (BadVideo, SidecarError) in a cpu stage (detect, slice: the stages
      that read the video), file still there -> QUARANTINE
    anything else                       -> RETRY (counted, doubling from retry_backoff_s),
                                           GIVE_UP at max_attempts
"""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from hydrus_motion import stages
from hydrus_motion.config import DaemonConfig
from hydrus_motion.errors import (
    BadVideo,
    HydrusMotionError,
    Interrupted,
    LocalFailure,
    SidecarError,
)

# OSError numbers that say this machine failed, never the file being read
LOCAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM,
                          errno.ENOMEM, errno.EROFS, errno.EMFILE, errno.ENFILE})


class Action(StrEnum):
    REQUEUE = "requeue"
    WAIT_HYDRUS = "wait for hydrus"
    WAIT_LOCAL = "wait"
    QUARANTINE = "quarantine"
    RETRY = "retry"
    GIVE_UP = "give up"


@dataclass(frozen=True)
class Decision:
    action: Action
    delay_s: float
    reason: str  # what is recorded on the job and shown in `status`
    counted: bool  # burns one of daemon.max_attempts
    unexpected: bool = False  # not an error we explain: a bug, log its traceback once


def local_reason(error: BaseException) -> str | None:
    """Why this machine (not the input) failed, or None when it did not."""
    if isinstance(error, LocalFailure):
        return error.message
    if isinstance(error, MemoryError):
        return "out of memory"
    if isinstance(error, OSError) and error.errno in LOCAL_ERRNOS:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror or error}"
    if isinstance(error, sqlite3.OperationalError) and any(
            words in str(error) for words in ("disk is full", "disk I/O error", "readonly")):
        return f"state database: {error}"
    return None


def message_of(error: BaseException) -> str:
    if isinstance(error, HydrusMotionError):
        return error.message
    return f"{type(error).__name__}: {error}"


def decide(stage: str, error: BaseException, attempts: int, waits: int, cfg: DaemonConfig, *,
           stopping: bool = False, source_present: bool = True) -> Decision:
    """`attempts`: counted failures so far; `waits`: local-failure waits so far."""
    from hydrus_motion.hydrus.gateway import HydrusAccessError, HydrusError

    if stopping or isinstance(error, Interrupted):
        return Decision(Action.REQUEUE, 0.0, "interrupted by a stop; redone at the next start",
                        counted=False)
    message = message_of(error)
    pool = stages.stage(stage).pool
    if pool is stages.Pool.HYDRUS and isinstance(error, HydrusError) and (
            error.retryable or isinstance(error, HydrusAccessError)):
        return Decision(Action.WAIT_HYDRUS, 0.0, message, counted=False)
    local = local_reason(error)
    if local is not None:
        delay = min(cfg.local_retry_s * 2 ** waits, cfg.local_retry_max_s)
        return Decision(Action.WAIT_LOCAL, delay,
                        f"waiting for this machine: {local} (not the video's fault; "
                        f"tried again in {delay:.0f} s)", counted=False)
    if pool is stages.Pool.CPU and isinstance(error, BadVideo | SidecarError) and source_present:
        return Decision(Action.QUARANTINE, 0.0, message, counted=True)
    unexpected = not isinstance(error, HydrusMotionError)
    if attempts + 1 >= cfg.max_attempts:
        return Decision(Action.GIVE_UP, 0.0,
                        f"{message} (gave up after {attempts + 1} attempts)", counted=True,
                        unexpected=unexpected)
    return Decision(Action.RETRY, cfg.retry_backoff_s * 2 ** attempts, message, counted=True,
                    unexpected=unexpected)
