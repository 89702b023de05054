"""Frozen records passed between stages. No behaviour beyond small derived values.

Frame numbers are 0-based indexes of decoded frames in presentation order; spans are
half-open: `start_frame` inclusive, `end_frame` exclusive. Times are seconds from the
start of the video's timeline (as ffmpeg presents it), taken from frame timestamps, so
they stay right for variable-frame-rate files.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path


@dataclass(frozen=True)
class VideoInfo:
    """What ffprobe says about a file's first video stream."""

    path: Path
    codec: str
    width: int  # as displayed: rotation applied, pixels made square
    height: int
    fps: Fraction  # average rate; for VFR files only an approximation
    duration: float | None
    frames_hint: int | None  # container's frame count; None when it does not say
    rotation: int  # degrees the player rotates by (0, 90, 180, 270)
    sample_aspect: Fraction  # 1 for square pixels


@dataclass(frozen=True)
class Scene:
    index: int  # 1-based, as people count and as the sidecar and `scene:<n>` tags show
    start_frame: int
    end_frame: int
    start: float
    end: float

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame


@dataclass(frozen=True)
class SceneList:
    """A video's scenes; what `scenes` finds and the sidecar stores."""

    video: Path
    fps: Fraction
    frames: int
    scenes: tuple[Scene, ...]
    detector: str = ""  # name and parameters, for provenance
    variable_frame_rate: bool = False


@dataclass(frozen=True)
class CropBox:
    """The picture inside black bars, in displayed source pixels (rotation applied)."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class ClipSpan:
    """One clip to cut: source frames [start_frame, end_frame) of one scene.

    `crop`, when set, is the part of the frame the clip keeps (bars cut away); the cutter
    crops before it scales.
    """

    scene: int
    start_frame: int
    end_frame: int
    start: float
    end: float
    crop: CropBox | None = None

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame


@dataclass(frozen=True)
class Clip:
    """A finished clip file, checked against its plan."""

    path: Path
    scene: int
    start_frame: int
    end_frame: int
    frames: int  # frames in the file (equals the span's unless fps resampling is on)
    fps: float
    width: int
    height: int
