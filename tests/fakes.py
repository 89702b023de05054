"""Fakes for the seams (hydrus_motion/base.py, scenes/base.py, clips/base.py), so a flow
can be tested without ffmpeg, a GPU or the wall clock."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path
from typing import Any

from hydrus_motion.errors import HydrusMotionError
from hydrus_motion.progress import Progress, no_progress
from hydrus_motion.records import Clip, ClipSpan, SceneList, VideoInfo
from hydrus_motion.scenes.base import scenes_from_cuts


class FakeClock:
    """A Clock that moves only when told to."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def fake_video_info(path: Path, frames: int = 120, fps: int = 24) -> VideoInfo:
    """What ffprobe would say of a 320x240 H.264 file of `frames` frames."""
    return VideoInfo(path=path, codec="h264", width=320, height=240, fps=Fraction(fps),
                     duration=frames / fps, frames_hint=frames, rotation=0,
                     sample_aspect=Fraction(1))


class FakeDetector:
    """A SceneDetector with the cuts fixed in advance (frame indexes)."""

    name = "fake-detector"

    def __init__(self, cuts: list[int]):
        self.cuts = cuts
        self.seen: list[Path] = []

    def detect(self, info: VideoInfo, progress: Progress = no_progress) -> SceneList:
        self.seen.append(info.path)
        frames = info.frames_hint or 0
        times = [i / float(info.fps) for i in range(frames)]
        return scenes_from_cuts(info, times, self.cuts, self.name)


class FakeCutter:
    """A ClipCutter that writes a small file per span, its bytes unique to the span."""

    def __init__(self) -> None:
        self.cut_spans: list[ClipSpan] = []

    def cut(self, info: VideoInfo, spans: list[ClipSpan], out_dir: Path,
            progress: Progress | None = None) -> list[Clip]:
        out_dir.mkdir(parents=True, exist_ok=True)
        clips = []
        for n, span in enumerate(spans, start=1):
            path = out_dir / f"{info.path.stem}-scene{span.scene:03d}-{span.start_frame}.mp4"
            unique = hashlib.sha256(f"{info.path}:{span}".encode()).digest()
            # a PNG header: the Hydrus test server takes it without running ffprobe
            size = info.width.to_bytes(4, "big") + info.height.to_bytes(4, "big")
            path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + size + unique * 8)
            clips.append(Clip(path=path, scene=span.scene, start_frame=span.start_frame,
                              end_frame=span.end_frame, frames=span.frames,
                              fps=float(info.fps), width=info.width, height=info.height))
            self.cut_spans.append(span)
            if progress is not None:
                progress(n, len(spans))
        return clips


class FakeTrainer:
    """A Trainer that records its calls and returns (or raises) what it was given."""

    def __init__(self, run: dict[str, Any] | None = None, fail: str | None = None):
        self.run = run or {"steps": 10, "final_loss": 0.5}
        self.fail = fail
        self.calls: list[dict[str, Any]] = []

    def train(self, cfg, dataset_dir: Path, run_dir: Path, *, resume: bool,
              init_module: Path | None, sample_prompts: int) -> dict[str, Any]:
        self.calls.append({"dataset_dir": dataset_dir, "run_dir": run_dir, "resume": resume,
                           "init_module": init_module})
        if self.fail:
            raise HydrusMotionError(self.fail)
        return dict(self.run)
