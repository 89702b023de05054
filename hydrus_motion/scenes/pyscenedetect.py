"""PySceneDetect 0.7 detectors fed by our own ffmpeg decode.

PySceneDetect's own path decodes full-size frames with OpenCV and shrinks them in
Python. We let ffmpeg decode (threaded, optionally skipping the deblocking filter) and
scale to the same analysis size PySceneDetect would use, then hand each frame to the
detector's `process_frame` with a timestamp-backed timecode. Cut positions come back
as timecodes and are mapped to the exact frame index by timestamp, so VFR files are
numbered by their real frames, not by `time * fps`.

The same frames feed the black-bar meter (scenes/bars.py), so each scene's crop comes
from this decode too.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from fractions import Fraction

from hydrus_motion.config import ClipsConfig, ScenesConfig, ToolsConfig
from hydrus_motion.errors import MissingExtra
from hydrus_motion.frames import analysis_size, decode_frames
from hydrus_motion.progress import Progress, no_progress
from hydrus_motion.records import SceneList, VideoInfo
from hydrus_motion.scenes.bars import BarMeter, with_crops
from hydrus_motion.scenes.base import PROGRESS_EVERY, scenes_from_cuts

log = logging.getLogger(__name__)

# Timestamps are handed to PySceneDetect in microseconds: exact enough to map back to
# frames (frames are >= ~4 ms apart) and independent of each container's time base.
_TIME_BASE = Fraction(1, 1_000_000)


def detector_params(cfg: ScenesConfig) -> dict:
    """The parameters of the configured detector, as recorded in sidecars/provenance."""
    params = dict(vars(getattr(cfg, cfg.detector)))
    params["min_scene_len"] = cfg.min_scene_len
    return params


def describe(cfg: ScenesConfig) -> str:
    params = " ".join(f"{k}={v}" for k, v in detector_params(cfg).items())
    return f"{cfg.detector} {params}"


def build_detector(cfg: ScenesConfig):
    try:
        from scenedetect import detectors
    except ImportError as exc:  # pragma: no cover - base dependency
        raise MissingExtra("scene detection", "base", "scenedetect-headless") from exc
    min_len = float(cfg.min_scene_len)  # float = seconds for PySceneDetect 0.7
    name = cfg.detector
    if name == "content":
        p = cfg.content
        return detectors.ContentDetector(threshold=p.threshold, min_scene_len=min_len,
                                         luma_only=p.luma_only)
    if name == "adaptive":
        p = cfg.adaptive
        return detectors.AdaptiveDetector(adaptive_threshold=p.adaptive_threshold,
                                          min_scene_len=min_len, window_width=p.window_width,
                                          min_content_val=p.min_content_val,
                                          luma_only=p.luma_only)
    if name == "hash":
        p = cfg.hash
        return detectors.HashDetector(threshold=p.threshold, size=p.size, lowpass=p.lowpass,
                                      min_scene_len=min_len)
    if name == "histogram":
        p = cfg.histogram
        return detectors.HistogramDetector(threshold=p.threshold, bins=p.bins,
                                           min_scene_len=min_len)
    if name == "threshold":
        p = cfg.threshold
        method = detectors.ThresholdDetector.Method[p.method.upper()]
        return detectors.ThresholdDetector(threshold=p.threshold, min_scene_len=min_len,
                                           fade_bias=p.fade_bias, method=method)
    raise ValueError(f"not a PySceneDetect detector: {name}")


class PySceneDetectDetector:
    def __init__(self, cfg: ScenesConfig, tools: ToolsConfig,
                 clips: ClipsConfig | None = None):
        self.cfg = cfg
        self.tools = tools
        self.clips = clips  # None or crop off: no bars measured
        self.name = describe(cfg)

    def detect(self, info: VideoInfo, progress: Progress = no_progress) -> SceneList:
        session = self.start(info)
        for frame in decode_frames(info, self.tools, long_side=self.cfg.analysis_size,
                                   fast_decode=self.cfg.fast_decode):
            session.add(frame.time, frame.image)
            if session.frames % PROGRESS_EVERY == 0:
                progress(session.frames, max(info.frames_hint or 0, session.frames))
        progress(session.frames, session.frames)
        return session.finish()

    def start(self, info: VideoInfo) -> DetectionSession:
        """Detection fed one analysis frame at a time (the one-pass cut drives it)."""
        meter = None
        if self.clips is not None and self.clips.crop == "auto":
            meter = BarMeter(analysis_size(info, self.cfg.analysis_size),
                             (info.width, info.height), self.clips.crop_black_level,
                             self.clips.crop_min_bar)
        return DetectionSession(info, build_detector(self.cfg), meter, self.name,
                                self.cfg.detector)


class DetectionSession:
    """One video's detection, frame by frame: `add` returns the cuts found so far (frame
    indexes, possibly of earlier frames), `finish` the SceneList `detect` returns."""

    def __init__(self, info: VideoInfo, detector, meter: BarMeter | None, name: str,
                 kind: str):
        self.info = info
        self.detector = detector
        self.meter = meter  # black bars, when clips.crop is auto
        self.name = name
        self.kind = kind
        self.frame_times: list[float] = []
        self._cut_times: list[float] = []
        self._timecode = None

    @property
    def frames(self) -> int:
        return len(self.frame_times)

    def add(self, time: float, image) -> list[int]:
        from scenedetect.common import FrameTimecode, Timecode

        self.frame_times.append(time)
        if self.meter is not None:
            self.meter.add(image)
        pts = round(Fraction(time) / _TIME_BASE)
        self._timecode = FrameTimecode(Timecode(pts=pts, time_base=_TIME_BASE),
                                       fps=self.info.fps)
        found = [c.seconds for c in self.detector.process_frame(self._timecode, image)]
        self._cut_times += found
        return [nearest_frame(self.frame_times, t) for t in found]

    def finish(self) -> SceneList:
        info = self.info
        if self._timecode is not None:
            self._cut_times += [c.seconds for c in self.detector.post_process(self._timecode)]
        cuts = [nearest_frame(self.frame_times, t) for t in self._cut_times]
        scenes = scenes_from_cuts(info, self.frame_times, cuts, self.name)
        if self.meter is not None:
            scenes = with_crops(scenes, self.meter)
        barred = sum(s.crop is not None for s in scenes.scenes)
        log.info("%s: %d frames, %d scenes (%s)%s", info.path.name, scenes.frames,
                 len(scenes.scenes), self.kind,
                 f", {barred} with black bars" if barred else "")
        return scenes


def nearest_frame(frame_times: Sequence[float], t: float) -> int:
    """Index of the frame whose timestamp is closest to `t`."""
    i = bisect.bisect_left(frame_times, t)
    if i == 0:
        return 0
    if i == len(frame_times) or t - frame_times[i - 1] < frame_times[i] - t:
        return i - 1
    return i
