"""Pure clip planning: scenes + rules -> the spans to cut. No I/O, so it is table-tested.

Rules, in order, for each scene:
1. trim `trim_frames` at every edge that is a cut (not at the very start or end of the
   video), so no transition frame bleeds into a clip;
2. drop what is left when it is shorter than `min_frames`;
3. split what is longer than `max_frames` into equal chunks no longer than the maximum
   (every frame used), or, when equal chunks would fall below the minimum, into
   maximum-length chunks from the start.
"""

from __future__ import annotations

import math
from fractions import Fraction

from hydrus_motion.config import ClipsConfig
from hydrus_motion.records import ClipSpan, Scene, SceneList


def plan_clips(scenes: SceneList, rules: ClipsConfig) -> list[ClipSpan]:
    spans: list[ClipSpan] = []
    for scene in scenes.scenes:
        start, end = trimmed(scene, scenes.frames, rules.trim_frames)
        for a, b in split(start, end, rules.min_frames, rules.max_frames):
            spans.append(_span(scene, a, b))
    return spans


def trimmed(scene: Scene, total_frames: int, trim: int) -> tuple[int, int]:
    start = scene.start_frame + (trim if scene.start_frame > 0 else 0)
    end = scene.end_frame - (trim if scene.end_frame < total_frames else 0)
    return start, end


def split(start: int, end: int, min_frames: int, max_frames: int) -> list[tuple[int, int]]:
    length = end - start
    if length < min_frames:
        return []
    count = math.ceil(length / max_frames)
    if length // count < min_frames:  # equal chunks too short: full-size chunks instead
        count = length // max_frames
        return [(start + i * max_frames, start + (i + 1) * max_frames) for i in range(count)]
    bounds = [start + round(i * length / count) for i in range(count + 1)]
    return list(zip(bounds, bounds[1:]))


def _span(scene: Scene, start: int, end: int) -> ClipSpan:
    """Times by the scene's own timestamps, stepping by the average rate inside it."""
    step = (scene.end - scene.start) / scene.frames
    return ClipSpan(scene=scene.index, start_frame=start, end_frame=end,
                    start=scene.start + (start - scene.start_frame) * step,
                    end=scene.start + (end - scene.start_frame) * step)


def resample_ratio(source_fps: Fraction, target_fps: float | None) -> Fraction | None:
    """Output/source frame ratio when resampling down to `target_fps`; None keeps timing.

    Raising the rate would only repeat frames, so a source slower than the target keeps
    its own rate.
    """
    if target_fps is None:
        return None
    ratio = Fraction(target_fps).limit_denominator(1001) / source_fps
    return ratio if ratio < 1 else None


def resampled_frames(frames: int, ratio: Fraction | None) -> int:
    """Frames a span of `frames` source frames yields: the source frame at or after each
    output tick, ticks every 1/ratio source frames starting with the span's first frame."""
    if ratio is None:
        return frames
    return math.floor((frames - 1) * ratio) + 1
