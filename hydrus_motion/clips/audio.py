"""The source's audio for clips cut without it (encode.keep_audio).

The batch cutter writes video only: its segment muxer splits every stream at the video's
clip boundaries, and audio beside passthrough frames (or across the frames trimmed at
each cut) drifted into the neighbouring clip or went missing. So each verified clip gets
its audio in one more short ffmpeg run: the clip's video copied as it is, the source's
audio read from the clip's first frame time for the clip's length (`-ss` before the
input: a seek, then decoding that discards up to the exact time), encoded as AAC. A
source without audio leaves the clip as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from hydrus_motion.clips.timeline import Timeline
from hydrus_motion.records import ClipSpan
from hydrus_motion.tools import ffmpeg_path_arg, run_tool

AUDIO_BITRATE = "128k"


def span_seconds(span: ClipSpan, timeline: Timeline | None) -> tuple[float, float]:
    """(start, duration) of the span in seconds after the file's start time: from the
    frames' own times where the container has them (VFR), else the span's."""
    if timeline is not None and span.start_frame < len(timeline.times):
        start = timeline.times[span.start_frame] - timeline.start_time
        end = (timeline.times[span.end_frame] - timeline.start_time
               if span.end_frame < len(timeline.times) else start + span.end - span.start)
        return max(0.0, start), max(0.0, end - start)
    return span.start, span.end - span.start


def audio_argv(ffmpeg: str, clip: Path, source: Path, start_s: float, duration_s: float,
               out: Path) -> list[str]:
    return [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-i", ffmpeg_path_arg(clip), "-ss", f"{start_s:.6f}", "-t", f"{duration_s:.6f}",
            "-i", ffmpeg_path_arg(source), "-map", "0:v:0", "-map", "1:a:0?", "-c:v", "copy",
            "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-shortest", "-map_metadata", "-1",
            "-movflags", "+faststart", ffmpeg_path_arg(out)]


def add_audio(ffmpeg: str, segment: Path, source: Path, span: ClipSpan,
              timeline: Timeline | None, timeout_s: float) -> None:
    """Replace `segment` by itself with the source's audio of `span` (ToolFailed)."""
    start, duration = span_seconds(span, timeline)
    muxed = segment.with_name(f"{segment.stem}.audio.mp4")
    run_tool(audio_argv(ffmpeg, segment, source, start, duration, muxed), timeout_s=timeout_s)
    os.replace(muxed, segment)
