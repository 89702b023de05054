"""Real motion from optical flow, camera motion from a global fit, and drawing cadence.

All of it reads what `sample_clip` already decoded: the window of consecutive small grey
frames (flow, camera) and the 64 px grey copy of every frame (cadence).

- flow: OpenCV's DIS optical flow (the fast preset) between consecutive frames of the
  window, ~160 px wide. Each frame is first stretched to the full grey range, so a fade
  or a flicker (the whole picture brighter or darker) is not read as movement; a pair
  where either frame is nearly flat (black during a fade) counts as no motion.
- magnitude: the mean flow length over the picture in frame widths per second
  (resolution and frame rate do not change it: 0.1 = something crosses a tenth of the
  picture each second). Pairs that repeat a drawing count as zero, so a clip on twos
  moving as far per second as one on ones scores the same.
- camera: a similarity transform (shift + scale + rotation) fitted with RANSAC to a grid
  of flow vectors per pair (`cv2.estimateAffinePartial2D`), summed over the window:
  pan = the picture's horizontal shift, tilt = vertical, zoom = log scale, each per
  second. The content moving left means the camera pans right; growing means zoom in.
- cadence: a pair of consecutive frames (64 px grey copies of the whole clip) that
  changes far less than the pairs beside it holds the drawing; the hold length is how
  many frames show one drawing (1 = on ones, 2 = on twos, ...), the most common one.

    m = measure_motion(clip_frames, cfg.annotate.motion)
    motion_tags(m, cfg.annotate.motion)  # ['motion:medium', 'camera:pan left', 'motion:on twos']
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np

from hydrus_motion.annotate.sampling import ClipFrames
from hydrus_motion.config import MotionConfig

FLAT_STD = 4.0  # grey levels: a frame this flat (black, a fade's end) carries no motion
EDGE = 60.0  # Sobel |gx|+|gy| on the stretched frame: a pixel with detail
SAMPLES = 400  # textured pixels whose flow is averaged and fitted, per pair


class Camera(StrEnum):
    STATIC = "static"
    PAN_LEFT = "pan left"
    PAN_RIGHT = "pan right"
    TILT_UP = "tilt up"
    TILT_DOWN = "tilt down"
    ZOOM_IN = "zoom in"
    ZOOM_OUT = "zoom out"
    MOVING = "moving"  # the picture moves but no single camera move explains it


@dataclass(frozen=True)
class Motion:
    magnitude: float  # mean flow, frame widths per second
    pan: float  # picture shift, widths per second (+: content moves right = pan left)
    tilt: float  # heights per second (+: content moves down = tilt up)
    zoom: float  # log scale per second (+: content grows = zoom in)
    camera: Camera
    pairs: int  # consecutive frame pairs measured
    held_fraction: float  # of all consecutive pairs of the clip: the drawing held
    cadence: int  # dominant hold length: 1 on ones, 2 on twos, ... (0: still clip)

    def as_dict(self) -> dict[str, object]:
        return {"flow": round(self.magnitude, 4), "pan": round(self.pan, 4),
                "tilt": round(self.tilt, 4), "zoom": round(self.zoom, 4),
                "camera": str(self.camera), "flow_pairs": self.pairs,
                "held_fraction": round(self.held_fraction, 3), "cadence": self.cadence}


def measure_motion(frames: ClipFrames, cfg: MotionConfig) -> Motion:
    held, cadence = measure_cadence(frames.grey, cfg)
    window = frames.window
    fps = frames.fps if frames.fps > 0 else 24.0
    if window is None or len(window) < 2:
        return Motion(0.0, 0.0, 0.0, 0.0, Camera.STATIC, 0, held, cadence)
    h, w = window.shape[1:]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    prepared = [_stretch(f) for f in window]
    mags, shifts = [], np.zeros(3)  # dx (px), dy (px), log scale
    centre = np.array([w / 2, h / 2], np.float32)
    for a, b in zip(prepared, prepared[1:]):
        if a is None or b is None:
            mags.append(0.0)
            continue
        flow = dis.calc(a, b, None)
        ys, xs = _textured(a)  # flow is only trustworthy where the picture has detail
        if len(xs) < 8:
            mags.append(0.0)
            continue
        at = flow[ys, xs]
        mags.append(float(np.linalg.norm(at, axis=1).mean()))
        points = np.stack([xs, ys], 1).astype(np.float32) - centre
        fit, _ = cv2.estimateAffinePartial2D(points, points + at, method=cv2.RANSAC,
                                             ransacReprojThreshold=0.5)
        if fit is not None:
            scale = math.hypot(fit[0, 0], fit[1, 0])
            shifts += (fit[0, 2], fit[1, 2], math.log(max(scale, 1e-3)))
    pairs = len(mags)
    seconds = pairs / fps
    magnitude = float(np.mean(mags)) / w * fps
    pan, tilt, zoom = shifts[0] / w / seconds, shifts[1] / h / seconds, shifts[2] / seconds
    return Motion(magnitude, float(pan), float(tilt), float(zoom),
                  camera_move(magnitude, float(pan), float(tilt), float(zoom), cfg),
                  pairs, held, cadence)


def camera_move(magnitude: float, pan: float, tilt: float, zoom: float,
                cfg: MotionConfig) -> Camera:
    # a zoom moves edge pixels by zoom * half the picture; compare like with like
    moves = {Camera.ZOOM_IN if zoom > 0 else Camera.ZOOM_OUT: abs(zoom) / cfg.camera_zoom_above,
             Camera.PAN_LEFT if pan > 0 else Camera.PAN_RIGHT: abs(pan) / cfg.camera_pan_above,
             Camera.TILT_UP if tilt > 0 else Camera.TILT_DOWN: abs(tilt) / cfg.camera_pan_above}
    best = max(moves, key=moves.__getitem__)
    if moves[best] >= 1:
        return best
    return Camera.STATIC if magnitude < cfg.static_below else Camera.MOVING


def measure_cadence(grey: np.ndarray, cfg: MotionConfig) -> tuple[float, int]:
    """(fraction of consecutive pairs that hold the drawing, dominant hold length).

    A pair holds when it changes less than `hold_ratio` of the larger change of the pairs
    beside it, and those change by at least `hold_diff` grey levels: relative, so a slow
    pan on ones (every pair changes a little) is not mistaken for held drawings."""
    if len(grey) < 3:
        return 0.0, 0
    d = np.abs(np.diff(grey.astype(np.int16), axis=0)).mean(axis=(1, 2))
    if d.max() < cfg.hold_diff:
        return 1.0, 0  # nothing moves: no cadence to speak of
    beside = np.maximum(np.r_[d[1:2], d[:-1]], np.r_[d[1:], d[-2:-1]])
    held = (d < cfg.hold_ratio * beside) & (beside >= cfg.hold_diff)
    runs: Counter[int] = Counter()  # hold lengths of the drawings between changes
    length, changes = 1, 0
    for h in held:
        if h:
            length += 1
            continue
        if changes:  # the first drawing may have started before the clip
            runs[length] += 1
        changes += 1
        length = 1
    if not runs:
        return float(held.mean()), 1
    top = max(runs.values())
    return float(held.mean()), min(n for n, c in runs.items() if c == top)


def motion_level(magnitude: float, cfg: MotionConfig) -> str:
    if magnitude < cfg.static_below:
        return "static"
    if magnitude >= cfg.high_above:
        return "high"
    return "medium" if magnitude >= cfg.medium_above else "low"


CADENCE_NAMES = {2: "twos", 3: "threes", 4: "fours"}


def motion_tags(m: Motion, cfg: MotionConfig, namespace: str = "motion") -> list[str]:
    tags = [f"{namespace}:{motion_level(m.magnitude, cfg)}"]
    if m.camera is not Camera.MOVING:
        tags.append(f"{cfg.namespace_camera}:{m.camera}")
    if m.cadence in CADENCE_NAMES and m.held_fraction >= cfg.cadence_min_held:
        tags.append(f"{namespace}:on {CADENCE_NAMES[m.cadence]}")
    return tags


def cadence_of_tags(tags: list[str] | tuple[str, ...], namespace: str = "motion") -> int:
    """The hold length a clip's tags name (`motion:on twos` -> 2); 1 when none does."""
    for tag in tags:
        for n, name in CADENCE_NAMES.items():
            if tag == f"{namespace}:on {name}":
                return n
    return 1


def _textured(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs) of up to SAMPLES pixels with a strong gradient (edges, texture)."""
    gx = cv2.Sobel(frame, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(frame, cv2.CV_32F, 0, 1, ksize=3)
    strength = np.abs(gx) + np.abs(gy)
    strength[:2], strength[-2:], strength[:, :2], strength[:, -2:] = 0, 0, 0, 0
    ys, xs = np.nonzero(strength > EDGE)
    if len(xs) > SAMPLES:
        keep = np.linspace(0, len(xs) - 1, SAMPLES).astype(int)
        ys, xs = ys[keep], xs[keep]
    return ys, xs


def _stretch(frame: np.ndarray) -> np.ndarray | None:
    """The frame stretched to 0-255 (a global brightness change cancels); None when flat."""
    f = frame.astype(np.float32)
    std = float(f.std())
    if std < FLAT_STD:
        return None
    return np.clip((f - f.mean()) / std * 48 + 128, 0, 255).astype(np.uint8)
