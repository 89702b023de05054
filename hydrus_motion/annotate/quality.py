"""Cheap per-clip picture numbers, coarse tags a reviewer can search for in Hydrus, and
near duplicates within one batch (the library-wide check is store/signatures.py).

- sharpness: variance of the Laplacian of the sampled frames (focus blur and heavy
  compression lower it).
- brightness: mean grey level of every frame (0-255).
- signature: a 64-bit dHash per sampled frame (annotate/signature.py).
Motion, camera and cadence are annotate/motion.py; burned-in text annotate/text.py.

    q = measure(clip_frames)
    quality_tags(q, cfg.annotate.quality)   # e.g. ['quality:dark']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from hydrus_motion.annotate.sampling import ClipFrames
from hydrus_motion.annotate.signature import as_row, distances, signature
from hydrus_motion.config import QualityConfig


@dataclass(frozen=True)
class Quality:
    sharpness: float
    brightness: float
    signature: tuple[int, ...]

    def as_dict(self) -> dict[str, float]:
        return {"sharpness": round(self.sharpness, 1), "brightness": round(self.brightness, 1)}


def measure(frames: ClipFrames) -> Quality:
    greys = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames.tagger_frames]
    sharpness = float(np.mean([cv2.Laplacian(g, cv2.CV_64F).var() for g in greys]))
    return Quality(sharpness=sharpness, brightness=float(frames.grey.mean()),
                   signature=signature(frames.tagger_frames))


def quality_tags(q: Quality, cfg: QualityConfig, near_duplicate: bool = False) -> list[str]:
    tags = []
    if q.sharpness < cfg.blurry_below:
        tags.append(f"{cfg.namespace_quality}:blurry")
    if q.brightness < cfg.dark_below:
        tags.append(f"{cfg.namespace_quality}:dark")
    elif q.brightness > cfg.bright_above:
        tags.append(f"{cfg.namespace_quality}:bright")
    if near_duplicate:
        tags.append(f"{cfg.namespace_quality}:near duplicate")
    return tags


def near_duplicates(signatures: Sequence[Sequence[int] | None],
                    max_distance: float) -> dict[int, int]:
    """{i: j}: clip i looks like the earlier clip j (None or (): a clip without one)."""
    found: dict[int, int] = {}
    rows, index = [], []
    for i, sig in enumerate(signatures):
        if not sig:
            continue
        if rows:
            d = distances(sig, np.stack(rows))
            best = int(np.argmin(d))
            if d[best] <= max_distance:
                found[i] = index[best]
        rows.append(as_row(sig))
        index.append(i)
    return found
