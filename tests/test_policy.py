"""The daemon's retry / wait / quarantine / give-up decision, as a pure function."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from hydrus_motion.config import config_from_dict
from hydrus_motion.errors import BadVideo, Interrupted, LocalFailure, SidecarError, ToolFailed
from hydrus_motion.hydrus.gateway import HydrusAccessError, HydrusUnreachable
from hydrus_motion.policy import Action, decide
from hydrus_motion.probe import ffmpeg_failure

CFG = config_from_dict({"daemon": {"max_attempts": 3, "retry_backoff_s": 10,
                                   "local_retry_s": 5, "local_retry_max_s": 30}}).daemon
ENOSPC = OSError(errno.ENOSPC, "No space left on device", "/clips/a.mp4.scenes.txt")


@pytest.mark.parametrize("error", [
    LocalFailure("a.mp4", "cutting failed: no space left on device"),
    ENOSPC, PermissionError(errno.EACCES, "Permission denied", "/state"),
    MemoryError(), sqlite3.OperationalError("database or disk is full")])
def test_failures_of_this_machine_wait_with_a_capped_backoff_and_never_count(error):
    waits = [decide("slice", error, attempts=2, waits=n, cfg=CFG) for n in range(6)]
    assert {d.action for d in waits} == {Action.WAIT_LOCAL}
    assert [d.delay_s for d in waits] == [5, 10, 20, 30, 30, 30]  # doubling, capped
    assert not any(d.counted for d in waits)  # attempts=2 of 3: it would give up otherwise
    assert "not the video's fault" in waits[0].reason


def test_the_reason_names_the_file_and_what_failed():
    reason = decide("detect", ENOSPC, 0, 0, CFG).reason
    assert "/clips/a.mp4.scenes.txt: No space left on device" in reason


def test_broken_input_is_quarantined_only_in_local_stages_while_the_file_is_there():
    bad = BadVideo("a.mp4", "not a video file ffmpeg can read")
    assert decide("detect", bad, 0, 0, CFG).action is Action.QUARANTINE
    assert decide("slice", SidecarError("x:3: bad line"), 0, 0, CFG).action is Action.QUARANTINE
    assert decide("slice", bad, 0, 0, CFG, source_present=False).action is Action.RETRY
    assert decide("push", bad, 0, 0, CFG).action is Action.RETRY


def test_other_errors_retry_with_backoff_then_give_up_and_bugs_are_marked():
    bug = KeyError("frames")
    first, second, last = (decide("slice", bug, n, 0, CFG) for n in range(3))
    assert (first.action, first.delay_s, second.delay_s) == (Action.RETRY, 10, 20)
    assert first.unexpected and first.counted and first.reason == "KeyError: 'frames'"
    assert last.action is Action.GIVE_UP and "gave up after 3 attempts" in last.reason


def test_stops_and_hydrus_outages_never_count():
    assert decide("slice", Interrupted("stop"), 2, 0, CFG).action is Action.REQUEUE
    assert decide("slice", ValueError(), 2, 0, CFG, stopping=True).action is Action.REQUEUE
    for error in (HydrusUnreachable("down"), HydrusAccessError("key revoked")):
        decision = decide("push", error, 2, 0, CFG)
        assert decision.action is Action.WAIT_HYDRUS and not decision.counted


def _failed(stderr: str, returncode: int | None = 1) -> ToolFailed:
    return ToolFailed("ffmpeg exited", argv=["/usr/bin/ffmpeg"], returncode=returncode,
                      stderr_tail=stderr)


def test_ffmpeg_failures_of_this_machine_are_local_failures_not_bad_videos():
    video = Path("a.mp4")
    for stderr in ("[out] Error writing trailer: No space left on device",
                   "segment000001.mp4: Permission denied",
                   "Error reinitializing filters! Cannot allocate memory"):
        assert isinstance(ffmpeg_failure(video, _failed(stderr), "cutting failed"),
                          LocalFailure)
    killed = ffmpeg_failure(video, _failed("", returncode=-9))
    assert isinstance(killed, LocalFailure) and "killed by SIGKILL" in killed.reason
    assert isinstance(ffmpeg_failure(video, _failed("", returncode=None)), LocalFailure)
    broken = ffmpeg_failure(video, _failed("moov atom not found"))
    assert isinstance(broken, BadVideo) and "truncated" in broken.reason
