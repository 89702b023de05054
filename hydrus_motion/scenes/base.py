"""The SceneDetector seam, and the step every detector shares: cuts -> scenes.

Implementation: `PySceneDetectDetector` (pyscenedetect.py); tests use a fixed list.
Callers depend only on this protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Protocol

from hydrus_motion.errors import BadVideo
from hydrus_motion.probe import frame_count_slack
from hydrus_motion.progress import Progress, no_progress
from hydrus_motion.records import Scene, SceneList, VideoInfo


class SceneDetector(Protocol):
    name: str  # detector and its parameters, recorded with every result

    def detect(self, info: VideoInfo, progress: Progress = no_progress) -> SceneList:
        """Scenes of the video; `progress(frames decoded, frames expected)` as it goes."""
        ...


PROGRESS_EVERY = 24  # frames between progress reports (a bar redraws ~10 times a second)


def scenes_from_cuts(info: VideoInfo, frame_times: Sequence[float], cuts: Iterable[int],
                     detector: str) -> SceneList:
    """Turn cut frame indexes (first frame of each new scene) into a SceneList.

    A video without cuts is one scene: for us every frame belongs to some scene.
    """
    total = len(frame_times)
    if total < 2:
        raise BadVideo(info.path, f"has {total} decodable frame(s); a motion clip needs more",
                       hint="this looks like a still image; nothing to cut")
    if info.frames_hint and info.frames_hint - total > frame_count_slack(info.frames_hint):
        raise BadVideo(info.path, f"only {total} of {info.frames_hint} frames could be decoded; "
                       "the file looks truncated or damaged")
    bounds = [0, *sorted({c for c in cuts if 0 < c < total}), total]
    end_time = _end_time(frame_times, info.fps)
    scenes = tuple(
        Scene(index=i + 1, start_frame=a, end_frame=b, start=frame_times[a],
              end=frame_times[b] if b < total else end_time)
        for i, (a, b) in enumerate(zip(bounds, bounds[1:]))
    )
    return SceneList(video=info.path, fps=info.fps, frames=total, scenes=scenes,
                     detector=detector, variable_frame_rate=is_variable(frame_times, info.fps))


def _end_time(frame_times: Sequence[float], fps: Fraction) -> float:
    """When the last frame stops showing: its time plus one typical frame interval."""
    if len(frame_times) >= 2:
        return frame_times[-1] + (frame_times[-1] - frame_times[-2])
    return frame_times[-1] + float(1 / fps)


def is_variable(frame_times: Sequence[float], fps: Fraction) -> bool:
    """True when some frame sits more than half a frame away from index / fps."""
    if not frame_times:
        return False
    step = float(1 / fps)
    first = frame_times[0]
    return any(abs(t - first - i * step) > step / 2 for i, t in enumerate(frame_times))
