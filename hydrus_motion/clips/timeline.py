"""Where each frame of a source sits in time, from the container alone (no decode).

    timeline = read_timeline(info, tools)      # one ffprobe that reads packets, ~1 s/hour
    timeline.seek_point(first_frame)           # SeekPoint(frame=k, seek_s, after_s)

Frame n is the n-th decoded frame in presentation order (what detection counted). The
container lists every frame's presentation time, so sorting the packets' times gives
frame n's time, and the key frames among them are where a decoder can start. A cut run
for frames a.. seeks to the last key frame k <= a, drops whatever the decoder returns
before frame k by time (the midpoint between frames k-1 and k), and then counts frames
from k: frame indexes, not times, decide what a clip keeps. The cutter checks the time
of every frame it kept against this table, so a container whose list disagrees with its
decoder (or a seek that lands late) is caught, and that batch is cut again from the
start instead.

Where the container gives no usable times (raw streams, repeated timestamps) there is
no timeline: each batch then decodes from the start, which is exact but slower.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from hydrus_motion.config import ToolsConfig
from hydrus_motion.errors import ToolFailed
from hydrus_motion.probe import ffmpeg_failure
from hydrus_motion.records import VideoInfo
from hydrus_motion.tools import ffmpeg_path_arg, find_tool, run_tool

_CHECK_FRAMES = 8


@dataclass(frozen=True)
class SeekPoint:
    frame: int  # the key frame the run starts counting from
    seek_s: float  # -ss value (seconds after the file's start time)
    after_s: float  # keep decoded frames at or after this time (raw timestamps)


@dataclass(frozen=True)
class Timeline:
    times: tuple[float, ...]  # presentation time of frame n, seconds (raw, as ffprobe shows)
    keyframes: tuple[int, ...]  # frame indexes a decoder can start at, ascending
    start_time: float  # the file's start time, what `-ss` counts from

    def seek_point(self, frame: int) -> SeekPoint | None:
        """Where a run that needs `frame` first should start; None: from the beginning."""
        i = bisect.bisect_right(self.keyframes, frame) - 1
        if i < 0 or self.keyframes[i] == 0:
            return None
        k = self.keyframes[i]
        after = (self.times[k - 1] + self.times[k]) / 2
        return SeekPoint(frame=k, seek_s=max(0.0, after - self.start_time), after_s=after)

    def tolerance(self, frame: int) -> float:
        """How far a reported time may be from frame's own and still be that frame."""
        gaps = [abs(self.times[j + 1] - self.times[j]) for j in (frame - 1, frame)
                if 0 <= j < len(self.times) - 1]
        return min(gaps, default=1.0) / 2


def read_timeline(info: VideoInfo, tools: ToolsConfig) -> Timeline | None:
    """The video stream's frame times from its packets; None when they cannot be trusted."""
    argv = [find_tool(tools.ffprobe), "-v", "error", "-select_streams", "v:0",
            "-show_entries", "format=start_time:packet=pts_time,flags", "-of", "csv=p=0",
            ffmpeg_path_arg(info.path)]
    try:
        out = run_tool(argv, timeout_s=tools.timeout_s).stdout.decode("ascii", "replace")
    except ToolFailed as exc:
        raise ffmpeg_failure(info.path, exc, "reading frame times failed") from None
    timeline = parse_timeline(out.splitlines())
    if timeline is None or not _decoder_agrees(info, tools, timeline):
        return None
    return timeline


def _decoder_agrees(info: VideoInfo, tools: ToolsConfig, timeline: Timeline) -> bool:
    """The first frames the decoder returns are the table's first frames (a decoder that
    drops leading frames the container lists would shift every index after them)."""
    argv = [find_tool(tools.ffprobe), "-v", "error", "-select_streams", "v:0",
            "-read_intervals", f"%+#{4 * _CHECK_FRAMES}", "-show_entries", "frame=pts_time",
            "-of", "csv=p=0", ffmpeg_path_arg(info.path)]
    try:
        out = run_tool(argv, timeout_s=min(tools.timeout_s, 300)).stdout.decode("ascii", "replace")
    except ToolFailed as exc:
        raise ffmpeg_failure(info.path, exc, "reading frame times failed") from None
    decoded = [_float(line.strip().split(",")[0]) for line in out.splitlines() if line.strip()]
    if not decoded or None in decoded:
        return False
    # the packets read stop mid-reorder: only the earliest frames are surely all there
    first = sorted(t for t in decoded if t is not None)[:_CHECK_FRAMES]
    return all(abs(t - timeline.times[i]) <= timeline.tolerance(i)
               for i, t in enumerate(first[:len(timeline.times)]))


def parse_timeline(lines: list[str]) -> Timeline | None:
    """ffprobe's csv lines (packets 'time,flags', then the format's 'start_time')."""
    packets: list[tuple[float, bool]] = []
    start_time = None
    for line in lines:
        fields = line.strip().split(",")
        if len(fields) == 1 and fields[0]:
            start_time = _float(fields[0])
        elif len(fields) >= 2:
            t = _float(fields[0])
            if t is None:
                return None  # a frame without a time: no table to trust
            if "D" not in fields[1]:  # packets the demuxer marks as discarded never show
                packets.append((t, "K" in fields[1]))
    if not packets:
        return None
    packets.sort(key=lambda p: p[0])
    times = tuple(t for t, _ in packets)
    if any(b <= a for a, b in zip(times, times[1:])):
        return None  # repeated times: frames cannot be told apart by time
    keyframes = tuple(i for i, (_, key) in enumerate(packets) if key)
    return Timeline(times=times, keyframes=keyframes or (0,),
                    start_time=start_time if start_time is not None else times[0])


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None

