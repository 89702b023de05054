"""Pure clip planning: scenes + rules -> the spans to cut. No I/O, so it is table-tested.

Rules, in order, for each scene:
1. drop the scene when it is shorter than `min_frames` (reason recorded: DropReason);
2. trim up to `trim_frames` at every edge that is a cut (not at the very start or end of
   the video), so no transition frame bleeds into a clip, but never more than the scene
   can spare above `min_frames`: a short shot is trimmed less, never dropped by the trim;
3. split what is longer than `max_frames` into equal chunks no longer than the maximum
   (every frame used), or, when equal chunks would fall below the minimum, into
   maximum-length chunks from the start;
4. with `crop: auto` every span keeps the scene's picture inside its black bars.
"""

from __future__ import annotations

import math
from fractions import Fraction

from hydrus_motion.config import ClipsConfig
from hydrus_motion.records import (
    ClipPlan,
    ClipSpan,
    CropBox,
    DroppedScene,
    DropReason,
    Scene,
    SceneList,
)


def plan_clips(scenes: SceneList, rules: ClipsConfig) -> ClipPlan:
    spans: list[ClipSpan] = []
    dropped: list[DroppedScene] = []
    for scene in scenes.scenes:
        if scene.frames < rules.min_frames:
            dropped.append(DroppedScene(scene.index, scene.start_frame, scene.end_frame,
                                        DropReason.TOO_SHORT))
            continue
        start, end = trimmed(scene, scenes.frames, rules.trim_frames, rules.min_frames)
        crop = scene.crop if rules.crop == "auto" else None
        for a, b in split(start, end, rules.min_frames, rules.max_frames):
            spans.append(_span(scene, a, b, crop))
    return ClipPlan(spans=tuple(spans), dropped=tuple(dropped), scenes=len(scenes.scenes))


def trimmed(scene: Scene, total_frames: int, trim: int, min_frames: int = 1) -> tuple[int, int]:
    """The scene less up to `trim` frames at each cut edge, keeping `min_frames` frames.

    What the scene has beyond the minimum is shared between its cut edges (the start
    first when it is odd), so a scene exactly at the minimum is kept whole.
    """
    cut_start, cut_end = scene.start_frame > 0, scene.end_frame < total_frames
    spare = max(0, scene.frames - max(min_frames, 1))
    if cut_start and cut_end:
        head = min(trim, (spare + 1) // 2)
        tail = min(trim, spare - head)
    else:
        head = min(trim, spare) if cut_start else 0
        tail = min(trim, spare) if cut_end else 0
    return scene.start_frame + head, scene.end_frame - tail


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


def _span(scene: Scene, start: int, end: int, crop: CropBox | None) -> ClipSpan:
    """Times by the scene's own timestamps, stepping by the average rate inside it."""
    step = (scene.end - scene.start) / scene.frames
    return ClipSpan(scene=scene.index, start_frame=start, end_frame=end,
                    start=scene.start + (start - scene.start_frame) * step,
                    end=scene.start + (end - scene.start_frame) * step, crop=crop)


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
