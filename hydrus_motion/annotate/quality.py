"""Cheap per-clip quality numbers, coarse tags a reviewer can search for in Hydrus, and
near-duplicate detection.

- motion: mean absolute grey-level change between consecutive frames of a 64 px copy
  (0-255). A still shot with compression noise stays well under 1; a pan or a dancer
  is several units. Frame difference, not optical flow: it costs nothing next to the
  decode, and the coarse levels are what a reviewer filters on.
- sharpness: variance of the Laplacian of the sampled frames (focus blur and heavy
  compression lower it).
- brightness: mean grey level of every frame (0-255).
- signature: an 8x8 colour thumbnail per sampled frame. Clips whose aligned thumbnails
  differ by a few grey levels on average show the same thing (a repeated shot, a re-cut,
  a loop); a real change of subject, colour or framing moves them by tens.

    q = measure(clip_frames)
    quality_tags(q, cfg.annotate.quality)   # e.g. ['motion:static', 'quality:dark']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from hydrus_motion.annotate.sampling import ClipFrames
from hydrus_motion.config import QualityConfig


@dataclass(frozen=True)
class Quality:
    motion: float
    sharpness: float
    brightness: float
    signature: tuple[np.ndarray, ...]

    def as_dict(self) -> dict[str, float]:
        return {"motion": round(self.motion, 3), "sharpness": round(self.sharpness, 1),
                "brightness": round(self.brightness, 1)}


def measure(frames: ClipFrames) -> Quality:
    grey = frames.grey.astype(np.int16)
    motion = float(np.abs(np.diff(grey, axis=0)).mean()) if len(grey) > 1 else 0.0
    greys = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames.tagger_frames]
    sharpness = float(np.mean([cv2.Laplacian(g, cv2.CV_64F).var() for g in greys]))
    return Quality(motion=motion, sharpness=sharpness, brightness=float(frames.grey.mean()),
                   signature=tuple(thumbnail(f) for f in frames.tagger_frames))


def motion_level(motion: float, cfg: QualityConfig) -> str:
    if motion < cfg.static_below:
        return "static"
    if motion > cfg.high_above:
        return "high"
    # split the moving range in two on a log scale: perceived motion is not linear
    middle = (max(cfg.static_below, 0.01) * cfg.high_above) ** 0.5
    return "low" if motion < middle else "medium"


def quality_tags(q: Quality, cfg: QualityConfig, near_duplicate: bool = False) -> list[str]:
    tags = [f"{cfg.namespace_motion}:{motion_level(q.motion, cfg)}"]
    if q.sharpness < cfg.blurry_below:
        tags.append(f"{cfg.namespace_quality}:blurry")
    if q.brightness < cfg.dark_below:
        tags.append(f"{cfg.namespace_quality}:dark")
    elif q.brightness > cfg.bright_above:
        tags.append(f"{cfg.namespace_quality}:bright")
    if near_duplicate:
        tags.append(f"{cfg.namespace_quality}:near duplicate")
    return tags


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """8x8 colour copy: what a frame shows, blind to noise, compression and small shifts."""
    return cv2.resize(frame, (8, 8), interpolation=cv2.INTER_AREA)


def distance(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """Mean absolute difference (0-255) of two clips' aligned frame thumbnails."""
    pairs = list(zip(a, b))
    if not pairs:
        return 255.0
    return float(np.mean([np.abs(x.astype(np.int16) - y).mean() for x, y in pairs]))


def near_duplicates(signatures: Sequence[Sequence[np.ndarray] | None],
                    max_difference: float) -> dict[int, int]:
    """{i: j}: clip i looks like the earlier clip j (None: a clip that was not measured)."""
    found: dict[int, int] = {}
    for i, sig in enumerate(signatures):
        for j in range(i):
            other = signatures[j]
            if sig and other and distance(sig, other) <= max_difference:
                found[i] = j
                break
    return found
