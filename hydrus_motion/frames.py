"""Decode a video to small BGR frames with their real timestamps, in one ffmpeg pass.

ffmpeg decodes (threaded), rotates, fixes non-square pixels and scales down in C, and
its `showinfo` filter reports each frame's presentation timestamp on stderr. We pair
the two streams by frame index, so frame numbers and times are right for variable
frame rate files too: frame n is the n-th decoded frame, exactly what `select=n` and
`trim=start_frame` count when the clips are cut.

    for frame in decode_frames(info, tools, long_side=256):
        frame.index, frame.time, frame.image  # int, float seconds, HxWx3 uint8 BGR
"""

from __future__ import annotations

import queue
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from hydrus_motion.config import ToolsConfig
from hydrus_motion.errors import BadVideo, ToolFailed
from hydrus_motion.probe import ffmpeg_failure
from hydrus_motion.records import VideoInfo
from hydrus_motion.tools import StreamingTool, ffmpeg_path_arg, find_tool

_SHOWINFO = re.compile(r"\[Parsed_showinfo_\d+ @ [^\]]+\] n:\s*(\d+) pts:\s*(-?\d+)")
_TIME_BASE = re.compile(r"\[Parsed_showinfo_\d+ @ [^\]]+\] config in time_base: (\d+)/(\d+)")


@dataclass(frozen=True)
class Frame:
    index: int
    time: float  # seconds on the video's timeline
    image: np.ndarray  # H x W x 3, uint8, BGR


def analysis_size(info: VideoInfo, long_side: int) -> tuple[int, int]:
    """(width, height) with the long side at most `long_side`, display aspect kept, even."""
    scale = min(1.0, long_side / max(info.width, info.height))
    width = max(2, round(info.width * scale / 2) * 2)
    height = max(2, round(info.height * scale / 2) * 2)
    return width, height


def _showinfo_reader() -> tuple[queue.Queue[tuple[int, int]], list[Fraction],
                                Callable[[str], None]]:
    """(frame (shown index, pts) queue, [time base], the stderr line handler filling
    them) for one ffmpeg run with showinfo."""
    timestamps: queue.Queue[tuple[int, int]] = queue.Queue()
    time_base: list[Fraction] = []

    def on_line(line: str) -> None:
        match = _SHOWINFO.search(line)
        if match:
            timestamps.put((int(match.group(1)), int(match.group(2))))
        elif not time_base and (tb := _TIME_BASE.search(line)):
            time_base.append(Fraction(int(tb.group(1)), int(tb.group(2))))

    return timestamps, time_base, on_line


def decode_frames(info: VideoInfo, tools: ToolsConfig, *, long_side: int,
                  fast_decode: bool = False, exact_size: tuple[int, int] | None = None,
                  scale_flags: str = "neighbor") -> Iterator[Frame]:
    """Every frame of `info.path`, scaled for analysis. BadVideo when it cannot be decoded.

    `exact_size` (width, height) ignores the aspect ratio, for models trained that way.
    """
    width, height = exact_size or analysis_size(info, long_side)
    frame_bytes = width * height * 3
    timestamps, time_base, on_line = _showinfo_reader()

    argv = [find_tool(tools.ffmpeg), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
            "-threads", "0"]
    if fast_decode:
        argv += ["-skip_loop_filter", "all"]
    argv += ["-i", ffmpeg_path_arg(info.path), "-map", "0:v:0", "-an", "-sn", "-dn",
             # passthrough: one output frame per decoded frame, never duplicated or dropped
             "-fps_mode", "passthrough",
             "-vf", f"scale={width}:{height}:flags={scale_flags},setsar=1,showinfo",
             "-pix_fmt", "bgr24", "-f", "rawvideo", "pipe:1"]
    with StreamingTool(argv, timeout_s=tools.timeout_s, on_stderr_line=on_line) as tool:
        index = 0
        try:
            while (data := tool.read_exact(frame_bytes)) is not None:
                shown, pts = timestamps.get(timeout=60)
                if shown != index:
                    raise BadVideo(info.path, f"frame numbering broke at frame {index}")
                image = np.frombuffer(data, np.uint8).reshape(height, width, 3)
                yield Frame(index, float(pts * time_base[0]), image)
                index += 1
            tool.finish()
        except ToolFailed as exc:
            raise ffmpeg_failure(info.path, exc) from None
        except queue.Empty:
            raise BadVideo(info.path, f"ffmpeg stopped reporting timestamps at frame {index}"
                           ) from None
