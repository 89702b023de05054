"""Pure parts of cutting: batches, frame times, failure classification, size estimate."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from hydrus_motion.clips.batch import balanced_sum, kept_frames, plan_batches
from hydrus_motion.clips.cut import estimate_bytes
from hydrus_motion.clips.plan import resampled_frames
from hydrus_motion.clips.timeline import parse_timeline
from hydrus_motion.errors import BadVideo, LocalFailure, ToolFailed
from hydrus_motion.probe import ffmpeg_failure
from hydrus_motion.records import ClipSpan, CropBox


def span(a: int, b: int, crop: CropBox | None = None) -> ClipSpan:
    return ClipSpan(1, a, b, a / 24, b / 24, crop)


def test_batches_are_bounded_and_never_mix_crops():
    bars = CropBox(0, 10, 64, 36)
    spans = [span(i * 10, i * 10 + 8, bars if 3 <= i < 5 else None) for i in range(9)]
    batches = plan_batches(spans, 2)
    assert [[s.start_frame for s in b.spans] for b in batches] == [
        [0, 10], [20], [30, 40], [50, 60], [70, 80]]
    assert [b.crop for b in batches] == [None, None, bars, None, None]
    assert all(s.crop == b.crop for b in batches for s in b.spans)


def test_balanced_sum_stays_shallow():
    expr = balanced_sum([f"t{i}" for i in range(2000)])
    depth = max_depth = 0
    for ch in expr:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        max_depth = max(max_depth, depth)
    assert max_depth == 11 and expr.count("+") == 1999


@pytest.mark.parametrize("frames,ratio", [(78, Fraction(1, 2)), (61, Fraction(15, 24)),
                                          (10, Fraction(24000, 30000))])
def test_kept_frames_match_the_planned_count(frames, ratio):
    kept = kept_frames(span(100, 100 + frames), ratio)
    assert len(kept) == resampled_frames(frames, ratio) and kept[0] == 100


def test_timeline_sorts_packets_skips_discarded_and_refuses_repeats():
    lines = ["0.000000,K_", "0.125000,__", "0.041667,__", "-0.041667,_D", "0.083333,__",
             "0.166667,K_", "0.000000"]
    timeline = parse_timeline(lines)
    assert timeline.times == (0.0, 0.041667, 0.083333, 0.125, 0.166667)
    assert timeline.keyframes == (0, 4)
    assert timeline.seek_point(3) is None  # before the second key frame: from the start
    point = timeline.seek_point(4)
    assert point.frame == 4 and point.after_s == pytest.approx((0.125 + 0.166667) / 2)
    assert parse_timeline(["0.0,K_", "0.0,__"]) is None
    assert parse_timeline(["N/A,K_", "0.04,__"]) is None


def failure(stderr: str, returncode: int | None = 1) -> ToolFailed:
    what = "timed out after 60 s" if returncode is None else f"exited with {returncode}"
    return ToolFailed(f"ffmpeg {what}: x", argv=["ffmpeg"], returncode=returncode,
                      stderr_tail=stderr)


@pytest.mark.parametrize("stderr,returncode,kind,reason", [
    ("av_interleaved_write_frame(): No space left on device", 1, LocalFailure,
     "no space left on device"),
    ("[segment @ 0x1] Failed to open segment 'x.mp4': Permission denied", 1, LocalFailure,
     "permission denied"),
    ("[libx264 @ 0x1] malloc of size 99 failed\nCannot allocate memory", 1, LocalFailure,
     "out of memory"),
    ("", -9, LocalFailure, "killed by SIGKILL"),
    ("Exiting normally, received signal 15.", 255, LocalFailure, "stopped by a signal"),
    ("", None, LocalFailure, "timed out after 60 s"),
    ("[mov,mp4 @ 0x1] moov atom not found\nfile:a.mp4: Invalid data found when processing "
     "input", 1, BadVideo, "truncated"),
    ("Invalid data found when processing input", 1, BadVideo, "not a video file"),
])
def test_machine_failures_are_told_apart_from_broken_files(stderr, returncode, kind, reason):
    error = ffmpeg_failure(Path("v.mp4"), failure(stderr, returncode), "cutting failed")
    assert type(error) is kind
    assert reason in error.reason and error.reason.startswith("cutting failed: ")


def test_size_estimate_is_generous_and_follows_quality():
    # 68 frames of 640x360 at crf 18 came out at ~0.26 MB with veryfast (bench/cut_film.py)
    estimate = estimate_bytes(68, 640, 360, 18, "veryfast")
    assert estimate > 3 * 260_000
    assert estimate_bytes(68, 640, 360, 24, "veryfast") < estimate
    assert estimate_bytes(68, 640, 360, 18, "ultrafast") > estimate
