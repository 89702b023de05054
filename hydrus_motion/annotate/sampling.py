"""Decode a clip once and keep what annotation reads: a few sampled frames and a small grey
copy of every frame.

The tagger reads frames from the clip's middle ("peak") by default: its subject is there,
away from the smear a cut leaves at either end. The captioner reads frames spread over the
whole clip so it sees the motion from start to end. Frame counts in containers can be
missing or wrong, so we do not rely on them: while decoding we keep every `stride`-th frame
in a bounded buffer (doubling the stride when it fills), which covers a clip of any length
evenly, and pick the samples from it at the end.

Optical flow and cadence need consecutive frames: from the same decode we also keep a
bounded window of `window` consecutive frames from the clip's middle (where the container
says the middle is; from the start when it does not say), as small grey copies
`window_width` px wide (the clip's last frames when the container overstates its length).

    frames = sample_clip(path, tools, size=448, tagger=FrameChoice("peak", 5, 0.5),
                         caption=FrameChoice("uniform", 6))
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hydrus_motion.config import ToolsConfig
from hydrus_motion.errors import BadVideo
from hydrus_motion.frames import decode_frames
from hydrus_motion.probe import probe_video

THUMB_WIDTH = 64  # grey copies of every frame: cadence, brightness
BUFFER_FRAMES = 96  # candidate frames kept while decoding (~30 MB at 448 px)


@dataclass(frozen=True)
class FrameChoice:
    mode: str  # "peak" (middle region) or "uniform" (whole clip)
    count: int
    peak_fraction: float = 0.5

    def region(self, total: int) -> tuple[int, int]:
        if self.mode == "uniform" or total <= self.count:
            return 0, total
        span = max(self.count, round(total * self.peak_fraction))
        start = (total - span) // 2
        return start, start + span


@dataclass(frozen=True)
class ClipFrames:
    path: Path
    total: int  # frames decoded
    fps: float
    tagger_indexes: list[int]
    tagger_frames: list[np.ndarray]  # BGR uint8, long side <= size
    caption_indexes: list[int]
    caption_frames: list[np.ndarray]
    grey: np.ndarray  # (total, h, THUMB_WIDTH) uint8, every frame
    window_start: int = 0  # index of window[0]
    window: np.ndarray | None = None  # (n, h, window_width) uint8 grey, consecutive frames


def sample_clip(path: Path, tools: ToolsConfig, *, size: int, tagger: FrameChoice,
                caption: FrameChoice | None = None, window: int = 0,
                window_width: int = 160) -> ClipFrames:
    """BadVideo (naming the file) when the clip cannot be read or has no frames."""
    info = probe_video(path, tools)
    kept: dict[int, np.ndarray] = {}
    stride, total, greys = 1, 0, []
    hint = info.frames_hint or (round(info.duration * float(info.fps)) if info.duration else 0)
    first = max(0, hint // 2 - window // 2)
    # the frames before `first + window`, at most `window`: the window, or the clip's
    # last frames when the container overstated its length
    consecutive: deque[np.ndarray] = deque(maxlen=max(window, 1))
    for frame in decode_frames(info, tools, long_side=size, scale_flags="area"):
        total = frame.index + 1
        greys.append(_grey_thumb(frame.image))
        if window and frame.index < first + window:
            consecutive.append(_grey_thumb(frame.image, window_width))
        if frame.index % stride == 0:
            kept[frame.index] = frame.image
            if len(kept) > BUFFER_FRAMES:
                stride *= 2
                kept = {i: img for i, img in kept.items() if i % stride == 0}
    if total == 0:
        raise BadVideo(path, "no frame could be decoded")
    t_idx = pick(sorted(kept), total, tagger)
    c_idx = pick(sorted(kept), total, caption) if caption else []
    return ClipFrames(path=path, total=total, fps=float(info.fps), tagger_indexes=t_idx,
                      tagger_frames=[kept[i] for i in t_idx], caption_indexes=c_idx,
                      caption_frames=[kept[i] for i in c_idx], grey=np.stack(greys),
                      window_start=min(total, first + window) - len(consecutive),
                      window=np.stack(consecutive) if consecutive else None)


def pick(available: list[int], total: int, choice: FrameChoice) -> list[int]:
    """Up to `choice.count` evenly spaced frames of the region, nearest available ones."""
    start, end = choice.region(total)
    inside = [i for i in available if start <= i < end] or available
    targets = [start + (k + 0.5) * (end - start) / choice.count for k in range(choice.count)]
    chosen = {min(inside, key=lambda i, t=t: abs(i - t)) for t in targets}
    return sorted(chosen)


def _grey_thumb(image: np.ndarray, width: int = THUMB_WIDTH) -> np.ndarray:
    h, w = image.shape[:2]
    width = min(width, w)
    height = max(2, round(h * width / w))
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
