"""Frozen records passed between stages. No behaviour beyond small derived values.

Frame numbers are 0-based indexes of decoded frames in presentation order; spans are
half-open: `start_frame` inclusive, `end_frame` exclusive. Times are seconds from the
start of the video's timeline (as ffmpeg presents it), taken from frame timestamps, so
they stay right for variable-frame-rate files.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from pathlib import Path


class Scan(StrEnum):
    """How a source's frames were made, as measured (ffmpeg idet on a sample)."""

    PROGRESSIVE = "progressive"
    INTERLACED = "interlaced"  # two fields from two moments per frame: combing on motion
    TELECINED = "telecined"  # film put into interlaced video by repeating fields (3:2)


@dataclass(frozen=True)
class CropBox:
    """The picture inside black bars, in displayed source pixels (rotation applied)."""

    x: int
    y: int
    width: int
    height: int

    def __str__(self) -> str:  # as the sidecar shows it: WIDTHxHEIGHT+X+Y
        return f"{self.width}x{self.height}+{self.x}+{self.y}"


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
    scan: Scan | None = None  # interlacing as measured on a sample (clips/fields.py)


@dataclass(frozen=True)
class Scene:
    index: int  # 1-based, as people count and as the sidecar and `scene:<n>` tags show
    start_frame: int
    end_frame: int
    start: float
    end: float
    crop: CropBox | None = None  # the picture inside black bars, when the scene has bars

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
    bars_measured: bool = False  # crops were measured: a scene without one has no bars


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
    crop: CropBox | None = None  # the part of the source frame kept (bars cut away)
    deinterlace: str | None = None  # the ffmpeg filter that undid fields, if any


# -- what planning kept and what it dropped, and why (clips/plan.py) --------------------


class DropReason(StrEnum):
    TOO_SHORT = "too_short"

    @property
    def text(self) -> str:
        return {"too_short": "shorter than clips.min_frames"}[self.value]


@dataclass(frozen=True)
class DroppedScene:
    scene: int
    start_frame: int
    end_frame: int
    reason: DropReason

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame


@dataclass(frozen=True)
class ClipPlan:
    """The spans to cut from a video's scenes, and every scene that yields none."""

    spans: tuple[ClipSpan, ...]
    dropped: tuple[DroppedScene, ...]
    scenes: int  # scenes the plan was made from

    def drop_summary(self, min_frames: int) -> str | None:
        """'4 of 6 scenes shorter than clips.min_frames (31)'; None when none dropped."""
        if not self.dropped:
            return None
        parts = []
        for reason in DropReason:
            n = sum(d.reason is reason for d in self.dropped)
            if n:
                detail = f" ({min_frames})" if reason is DropReason.TOO_SHORT else ""
                parts.append(f"{n} of {self.scenes} scenes {reason.text}{detail}")
        return "; ".join(parts)

    def as_json(self, min_frames: int) -> dict:
        """What `slice` / `ingest --json` add per video: the scene count and every
        dropped scene with its reason."""
        return {"scene_count": self.scenes,
                "dropped_scenes": [{"scene": d.scene, "start_frame": d.start_frame,
                                    "end_frame": d.end_frame, "frames": d.frames,
                                    "reason": str(d.reason), "detail": d.reason.text}
                                   for d in self.dropped],
                "dropped_summary": self.drop_summary(min_frames)}
