"""Black bars (letterbox, pillarbox) found on the frames scene detection already decodes.

No extra pass over the source: the detector hands every analysis-size frame (256 px
long side by default) to `BarMeter.add`, which keeps four numbers per frame, the
picture's extent. Once the scenes are known, `BarMeter.crop` turns the extents of a
scene's frames into one CropBox in displayed source pixels, or None:

- a row (column) is bar when its mean grey level is at most `black_level` and under
  2 % of its pixels are brighter than twice that; grey is the brightest channel, so a
  dark blue picture is not black;
- a frame that is bar everywhere (a dark or black frame) has no extent and is ignored;
  a scene with too few lit frames borrows the whole video's bars when its own lit
  pixels stay inside them, and keeps its full frame otherwise: a dark frame is never
  cropped to nothing;
- per edge the outermost extent that 5 % of the lit frames reach, so a few noisy
  frames do not widen it, and a subtitle that shows only now and then is not cut;
- the extent must be stable: at least a quarter of the lit frames reach it, and it
  must be filled: in the median lit frame at least half of its rows and of its columns
  are lit. Else the scene is dark, not barred (a lamp in the dark, a line of text on a
  black title card), and borrows the video's bars as above;
- bars on the two sides of an axis must agree (else that axis is not cropped: a dark
  sky, or a subtitle in one bar), be at least `min_bar` of the frame, and at most 30 %
  of it; and the picture they frame must span at least 90 % of the other axis (unless
  that one is barred too: a window box);
- edges are placed inside the picture (at worst one analysis pixel of picture lost,
  never a line of black kept) and on even pixels.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from hydrus_motion.config import ClipsConfig, ToolsConfig
from hydrus_motion.errors import ToolFailed
from hydrus_motion.probe import ffmpeg_failure
from hydrus_motion.records import CropBox, SceneList, VideoInfo
from hydrus_motion.tools import ffmpeg_path_arg, find_tool, run_tool

log = logging.getLogger(__name__)

_MAX_BAR = 0.30  # of the frame, per side: more is a dark picture, not a bar
_OUTER_PERCENT = 5  # per edge, the extent reached by this share of lit frames
_STABLE_SHARE = 0.25  # share of lit frames that must reach the outer extent
_MIN_LIT = 3  # lit frames needed before a scene's own extent counts
_BRIGHT_SHARE = 0.02  # pixels above 2 x black_level that make a row picture
_MIN_FILL = 0.5  # lit share of the extent's rows and columns in the median lit frame
_FULL = 0.9  # share of the frame the picture spans on the axis without bars


Extent = tuple[int, int, int, int, int, int]


def frame_extent(image: np.ndarray, black_level: int) -> Extent | None:
    """(top, bottom, left, right, lit rows, lit columns) of the non-black part (edges
    half-open); None when the frame is black everywhere."""
    grey = image
    if image.ndim == 3:  # np.maximum per channel: ~40x faster than max(axis=2)
        grey = np.maximum(np.maximum(image[..., 0], image[..., 1]), image[..., 2])
    bright = grey > 2 * black_level
    h, w = grey.shape
    rows = (grey.sum(axis=1, dtype=np.int32) > black_level * w) | \
        (bright.sum(axis=1) >= _BRIGHT_SHARE * w)
    cols = (grey.sum(axis=0, dtype=np.int32) > black_level * h) | \
        (bright.sum(axis=0) >= _BRIGHT_SHARE * h)
    if not rows.any() or not cols.any():
        return None
    top, bottom = int(rows.argmax()), len(rows) - int(rows[::-1].argmax())
    left, right = int(cols.argmax()), len(cols) - int(cols[::-1].argmax())
    return top, bottom, left, right, int(rows.sum()), int(cols.sum())


class BarMeter:
    """Per-frame extents of one video, then a crop per frame range (scene)."""

    def __init__(self, analysis: tuple[int, int], display: tuple[int, int],
                 black_level: int, min_bar: float):
        self.width, self.height = analysis
        self.display = display
        self.black_level = black_level
        self.min_bar = min_bar
        self._extents: list[Extent] = []
        self._lit: list[bool] = []

    @property
    def count(self) -> int:
        return len(self._lit)

    def add(self, image: np.ndarray) -> None:
        extent = frame_extent(image, self.black_level)
        self._lit.append(extent is not None)
        self._extents.append(extent or (0, 0, 0, 0, 0, 0))

    def crop(self, start: int, end: int) -> CropBox | None:
        """The crop of frames [start, end), or None: no bars (or none to trust)."""
        extents = np.asarray(self._extents[start:end], dtype=np.int32).reshape(-1, 6)
        lit = extents[np.asarray(self._lit[start:end], dtype=bool)]
        own = self._outer(lit)
        if own is not None and own[1] and (box := self._to_box(own[0])) is not None:
            return box
        whole = self._outer(np.asarray(self._extents, dtype=np.int32).reshape(-1, 6)
                            [np.asarray(self._lit, dtype=bool)])
        if whole is None or not whole[1] or not len(lit):
            return None
        t, b, left, r = whole[0]  # the scene's lit pixels must all lie inside it
        inside = (lit[:, 0] >= t - 1) & (lit[:, 1] <= b + 1) & (lit[:, 2] >= left - 1) & \
            (lit[:, 3] <= r + 1)
        return self._to_box(whole[0]) if inside.all() else None

    def _outer(self, lit: np.ndarray) -> tuple[tuple[int, int, int, int], bool] | None:
        """The outer extent of lit frames, and whether it is stable and filled."""
        if len(lit) < _MIN_LIT:
            return None
        top = int(np.percentile(lit[:, 0], _OUTER_PERCENT, method="lower"))
        bottom = int(np.percentile(lit[:, 1], 100 - _OUTER_PERCENT, method="higher"))
        left = int(np.percentile(lit[:, 2], _OUTER_PERCENT, method="lower"))
        right = int(np.percentile(lit[:, 3], 100 - _OUTER_PERCENT, method="higher"))
        reach = [(lit[:, 0] <= top + 1).mean(), (lit[:, 1] >= bottom - 1).mean(),
                 (lit[:, 2] <= left + 1).mean(), (lit[:, 3] >= right - 1).mean()]
        fill = min(np.median(lit[:, 4] / max(1, bottom - top)),
                   np.median(lit[:, 5] / max(1, right - left)))
        return (top, bottom, left, right), min(reach) >= _STABLE_SHARE and fill >= _MIN_FILL

    def _to_box(self, extent: tuple[int, int, int, int]) -> CropBox | None:
        top, bottom, left, right = extent
        dw, dh = self.display
        y0, y1 = _axis(top, self.height - bottom, self.height, dh, self.min_bar)
        x0, x1 = _axis(left, self.width - right, self.width, dw, self.min_bar)
        # bars on one axis frame a picture that fills the other (or is barred there too):
        # a line of text on a black card has neither
        cropped_y, cropped_x = (y0, y1) != (0, dh), (x0, x1) != (0, dw)
        if cropped_x and not cropped_y and bottom - top < _FULL * self.height:
            x0, x1 = 0, dw
        if cropped_y and not cropped_x and right - left < _FULL * self.width:
            y0, y1 = 0, dh
        if (x0, y0, x1, y1) == (0, 0, dw, dh):
            return None
        return CropBox(x=x0, y=y0, width=x1 - x0, height=y1 - y0)


def _axis(near: int, far: int, size: int, display: int, min_bar: float) -> tuple[int, int]:
    """Display-pixel [start, end) of the picture on one axis from its two bars (analysis px)."""
    if abs(near - far) > 2 + 0.05 * max(near, far):  # lopsided: not bars
        return 0, display
    bars = []
    for bar in (near, far):
        if bar < max(1, min_bar * size) or bar > _MAX_BAR * size:
            bar = 0
        bars.append(bar)
    near, far = bars
    scale = display / size
    # analysis pixel i shows the source pixel at about (i + 0.5) * scale (nearest neighbour)
    start = _even_up((near + 0.5) * scale) if near else 0
    end = _even_down((size - far - 0.5) * scale) if far else display
    return start, end


def _even_up(value: float) -> int:
    return 2 * math.ceil(value / 2)


def _even_down(value: float) -> int:
    return 2 * math.floor(value / 2)


def with_crops(scenes: SceneList, meter: BarMeter) -> SceneList:
    """The scene list with each scene's crop set (and marked as measured)."""
    measured = tuple(dataclasses.replace(s, crop=meter.crop(s.start_frame, s.end_frame))
                     for s in scenes.scenes)
    return dataclasses.replace(scenes, scenes=measured, bars_measured=True)


SAMPLES_PER_SCENE = 5
MAX_SAMPLES = 120  # seeks in all, however many scenes: a film's 2,000 scenes stay cheap


def sample_crops(info: VideoInfo, scenes: SceneList, clips: ClipsConfig, tools: ToolsConfig,
                 long_side: int = 256) -> SceneList:
    """Crops for a sidecar whose bars were not measured while detecting (older, hand-made,
    or from TransNetV2): up to `SAMPLES_PER_SCENE` frames per scene, each fetched by a
    seek, `MAX_SAMPLES` in all. With more scenes than that, an even spread of scenes is
    sampled (one frame each) and the others take the crop of the whole video's samples."""
    from hydrus_motion.frames import analysis_size

    width, height = analysis_size(info, long_side)
    meter = BarMeter((width, height), (info.width, info.height), clips.crop_black_level,
                     clips.crop_min_bar)
    count = len(scenes.scenes)
    sampled = sorted({round(i * (count - 1) / max(1, MAX_SAMPLES - 1))
                      for i in range(min(count, MAX_SAMPLES))})
    per_scene = max(1, min(SAMPLES_PER_SCENE, MAX_SAMPLES // max(1, len(sampled))))
    bounds: dict[int, tuple[int, int]] = {}
    for index in sampled:
        scene, first = scenes.scenes[index], meter.count
        for i in range(per_scene):
            t = scene.start + (scene.end - scene.start) * (i + 0.5) / per_scene
            image = _frame_at(info, tools, t, width, height)
            if image is not None:
                meter.add(image)
        bounds[index] = (first, meter.count)
    whole = (0, meter.count)
    measured = tuple(dataclasses.replace(s, crop=meter.crop(*bounds.get(i, whole)))
                     for i, s in enumerate(scenes.scenes))
    log.info("%s: black bars sampled from %d frames of %d scenes: %d of %d scenes have bars",
             info.path.name, meter.count, len(sampled),
             sum(s.crop is not None for s in measured), len(measured))
    return dataclasses.replace(scenes, scenes=measured, bars_measured=True)


def _frame_at(info: VideoInfo, tools: ToolsConfig, t: float, width: int,
              height: int) -> np.ndarray | None:
    argv = [find_tool(tools.ffmpeg), "-hide_banner", "-nostdin", "-nostats", "-loglevel",
            "error", "-ss", f"{max(0.0, t):.3f}", "-i", ffmpeg_path_arg(info.path),
            "-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn",
            "-vf", f"scale={width}:{height}:flags=neighbor,setsar=1",
            "-pix_fmt", "bgr24", "-f", "rawvideo", "pipe:1"]
    try:
        data = run_tool(argv, timeout_s=min(tools.timeout_s, 300)).stdout
    except ToolFailed as exc:
        raise ffmpeg_failure(info.path, exc, "sampling frames for black bars failed") from None
    if len(data) < width * height * 3:
        return None  # a seek past the last frame: nothing to measure
    return np.frombuffer(data[:width * height * 3], np.uint8).reshape(height, width, 3)
