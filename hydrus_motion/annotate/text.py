"""Burned-in text (hard subtitles, channel logos, watermarks, captions) on the sampled
frames, from PP-OCR's text detection model (DB: a per-pixel text probability map),
each box then read by PP-OCR's recognition model.

The models ship inside the `rapidocr` wheel (extra `text`), so they install from the
package registry with no download at run time; we load the .onnx files with onnxruntime
and never import rapidocr itself. Detection input: BGR, (x / 255 - 0.5) / 0.5, NCHW,
sides multiples of 32. Output: (1, 1, H, W) probabilities. A box is a connected region
above `pixel_threshold` whose mean probability reaches `box_threshold` (DB's "fast" box
score); DB draws them shrunk, so a box is grown by its height before it is read.
Recognition input: the crop at height 48, same normalisation; output (1, T, classes),
greedy CTC (class 0 blank; the alphabet is in the model's metadata, `character`). The
detector alone fires on texture (noise, a fractal's edge: one box, nothing readable);
with `verify`, a box counts only when it reads as `min_chars` characters at a mean
confidence of `read_threshold` (docs/CURATION.md has the figures).

Where a box sits (in fractions of the frame):
- subtitle: in the lower third and at least a fifth of the width (a line of text);
- logo: small (under a third of the width, under a sixth of the height), in a corner,
  and at the same place in most sampled frames;
- other: anything else (captions, signs, credits, text all over the frame).
A subtitle-band line that reads the same in most clips of one video (at least
`watermark_min_clips` of them, and half) is not dialogue but a watermark: a copyright
line, a credit, a channel's name. Those clips count it as `watermark`, not `subtitles`
(mark_watermarks, over the clips annotated together).

    detector = TextDetector(cfg.annotate.text)
    detector.detect([[frame, frame], [frame]])   # one TextScore per clip
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hydrus_motion.annotate.models import ModelError
from hydrus_motion.config import TextConfig
from hydrus_motion.errors import MissingExtra

log = logging.getLogger(__name__)

PACKAGE, MODEL = "rapidocr", "models/PP-OCRv6_det_small.onnx"
READER = "models/PP-OCRv6_rec_small.onnx"
READ_HEIGHT, READ_MAX_WIDTH = 48, 640  # the recogniser's input height; crops are capped
MAX_READ, MAX_READ_CHARS = 4, 80  # strings kept per clip for the note, and their length
MIN_SIDE_PX = 3  # boxes thinner than this (in model pixels) are noise, as PP-OCR drops them


@dataclass(frozen=True)
class Box:
    x: float  # left, fraction of the width
    y: float  # top, fraction of the height
    w: float
    h: float

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def grown(self, frame_w: int, frame_h: int, by: float = 0.6) -> tuple[int, int, int, int]:
        """Pixel bounds (x0, y0, x1, y1), grown by `by` of its height on every side."""
        pad = by * self.h * frame_h
        return (max(0, int(self.x * frame_w - pad)), max(0, int(self.y * frame_h - pad)),
                min(frame_w, int((self.x + self.w) * frame_w + pad)),
                min(frame_h, int((self.y + self.h) * frame_h + pad)))

    def overlaps(self, other: Box) -> bool:
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        return inter > 0.3 * min(self.w * self.h, other.w * other.h)


@dataclass(frozen=True)
class TextScore:
    frames: int  # sampled frames looked at
    text: float  # fraction of them with any text
    subtitles: float  # ... with a subtitle-band line
    logo: float  # ... with the clip's stable corner box
    other: float  # ... with text elsewhere
    area: float  # mean fraction of the frame covered by text boxes
    read: tuple[str, ...] = ()  # what the boxes say (distinct, first few), when verified
    lines: tuple[str, ...] = ()  # what the subtitle-band boxes say (distinct)
    watermark: float = 0.0  # ... with a band line most clips of the video share

    def as_dict(self) -> dict[str, Any]:
        return {"text": round(self.text, 3), "subtitles": round(self.subtitles, 3),
                "logo": round(self.logo, 3), "other_text": round(self.other, 3),
                "watermark": round(self.watermark, 3),
                "text_area": round(self.area, 4), "text_frames": self.frames,
                **({"text_read": list(self.read)} if self.read else {})}


def text_tags(score: TextScore, cfg: TextConfig, namespace: str = "quality") -> list[str]:
    tags = []
    if score.text >= cfg.text_min_fraction:
        tags.append(f"{namespace}:text")
    if score.subtitles >= cfg.subtitle_min_fraction:
        tags.append(f"{namespace}:subtitles")
    if score.logo >= cfg.logo_min_fraction:
        tags.append(f"{namespace}:logo")
    if score.watermark >= cfg.subtitle_min_fraction:
        tags.append(f"{namespace}:watermark")
    return tags


def _line_key(line: str) -> str:
    return "".join(ch for ch in line.lower() if ch.isalnum())


def _same_line(a: str, b: str) -> bool:  # OCR reads a line slightly differently per frame
    return a == b or difflib.SequenceMatcher(None, a, b).ratio() >= 0.8


def mark_watermarks(scores: Sequence[TextScore | None],
                    min_clips: int) -> list[TextScore | None]:
    """The scores with a band line most of these clips share counted as a watermark."""
    keys = [{_line_key(x) for x in s.lines} - {""} if s else set() for s in scores]
    groups: list[list[str]] = []  # similar lines, each group's first as its name
    for key in sorted({k for ks in keys for k in ks}, key=lambda k: (-len(k), k)):
        group = next((g for g in groups if _same_line(g[0], key)), None)
        if group is None:
            groups.append([key])
        else:
            group.append(key)
    need = max(min_clips, (len(scores) + 1) // 2)
    shared = [g for g in groups if sum(bool(ks & set(g)) for ks in keys) >= need]
    out: list[TextScore | None] = []
    for score, ks in zip(scores, keys):
        if score and ks and all(any(k in g for g in shared) for k in ks):
            score = dataclasses.replace(score, subtitles=0.0, watermark=score.subtitles)
        out.append(score)
    return out


def is_subtitle(b: Box) -> bool:
    return b.centre[1] > 2 / 3 and b.w >= 0.2


def is_corner(b: Box) -> bool:
    cx, cy = b.centre
    return b.w < 1 / 3 and b.h < 1 / 6 and (cx < 0.3 or cx > 0.7) and (cy < 0.25 or cy > 0.75)


def score_boxes(per_frame: Sequence[Sequence[Box]], read: Sequence[str] = (),
                lines: Sequence[str] = ()) -> TextScore:
    """A clip's text score from the boxes found on each of its sampled frames."""
    n = len(per_frame)
    if not n:
        return TextScore(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    corners = [b for boxes in per_frame for b in boxes if is_corner(b)]
    # the logo: the corner box that recurs in the most frames
    logo = max(corners, key=lambda c: sum(any(c.overlaps(b) for b in boxes)
                                          for boxes in per_frame), default=None)
    with_logo = [logo is not None and any(logo.overlaps(b) for b in boxes)
                 for boxes in per_frame]
    stable = sum(with_logo) >= 2 or n == 1
    subs = other = 0
    for boxes, has_logo in zip(per_frame, with_logo):
        rest = [b for b in boxes if not (stable and has_logo and logo.overlaps(b))]
        subs += any(is_subtitle(b) for b in rest)
        other += any(not is_subtitle(b) for b in rest)
    return TextScore(
        frames=n, text=sum(bool(b) for b in per_frame) / n, subtitles=subs / n,
        logo=(sum(with_logo) / n) if stable else 0.0, other=other / n,
        area=float(np.mean([min(1.0, sum(b.w * b.h for b in boxes)) for boxes in per_frame])),
        read=tuple(dict.fromkeys(read))[:MAX_READ], lines=tuple(dict.fromkeys(lines)))


def spread(frames: Sequence[np.ndarray], count: int) -> list[np.ndarray]:
    """`count` of `frames`, evenly spaced, first and last included."""
    if len(frames) <= count:
        return list(frames)
    if count == 1:
        return [frames[len(frames) // 2]]
    return [frames[round(i * (len(frames) - 1) / (count - 1))] for i in range(count)]


def ctc_greedy(probs: np.ndarray, alphabet: Sequence[str]) -> tuple[str, float]:
    """(text, mean confidence of its characters) from (T, classes) probabilities."""
    best, conf = probs.argmax(1), probs.max(1)
    keep = (best != 0) & np.concatenate(([True], best[1:] != best[:-1]))
    text = "".join(alphabet[i] for i in best[keep])
    return text, float(conf[keep].mean()) if keep.any() else 0.0


def model_path(name: str = MODEL) -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra("the text detector", "text", PACKAGE)
    path = Path(list(spec.submodule_search_locations)[0]) / name
    if not path.is_file():
        raise ModelError(f"{path}: the installed {PACKAGE} has no text detection model there",
                         hint="pip install 'hydrus-motion[text]' (rapidocr 3.x ships it)")
    return path


class TextDetector:
    def __init__(self, cfg: TextConfig):
        self.cfg = cfg
        self._session: Any = None
        self._reader: Any = None
        self._alphabet: list[str] = []

    def describe(self) -> dict[str, Any]:
        c = self.cfg
        return {"model": f"{PACKAGE}:{MODEL}", "size": c.size, "frames": c.frames,
                "pixel_threshold": c.pixel_threshold, "box_threshold": c.box_threshold,
                **({"reader": f"{PACKAGE}:{READER}", "min_chars": c.min_chars,
                    "read_threshold": c.read_threshold} if c.verify else {})}

    def detect(self, clips: Sequence[Sequence[np.ndarray]]) -> list[TextScore]:
        """One score per clip from `cfg.frames` of its frames, spread evenly."""
        scores = []
        for frames in clips:
            per_frame, read, lines = [], [], []
            for frame in spread(frames, self.cfg.frames):
                boxes = self.boxes(frame)
                if self.cfg.verify:
                    said = [self.read(frame, b) for b in boxes]
                    kept = [(b, s) for b, s in zip(boxes, said) if s is not None]
                    boxes = [b for b, _ in kept]
                    read += [s for _, s in kept]
                    lines += [s for b, s in kept if is_subtitle(b)]
                per_frame.append(boxes)
            scores.append(score_boxes(per_frame, read, lines))
        return scores

    def read(self, frame: np.ndarray, box: Box) -> str | None:
        """What `box` says, or None when it does not read as text."""
        x0, y0, x1, y1 = box.grown(frame.shape[1], frame.shape[0])
        crop = frame[y0:y1, x0:x1]
        if crop.size == 0:
            return None
        if crop.shape[0] >= 1.5 * crop.shape[1]:  # a vertical line: read it turned, as PP-OCR
            crop = np.rot90(crop)
        width = min(READ_MAX_WIDTH, max(READ_HEIGHT // 3,
                                        round(READ_HEIGHT * crop.shape[1] / crop.shape[0])))
        x = cv2.resize(crop, (width, READ_HEIGHT), interpolation=cv2.INTER_AREA)
        x = (x.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        reader = self.reader
        try:
            probs = reader.run(None, {reader.get_inputs()[0].name: x})[0][0]
        except Exception as exc:  # onnxruntime's errors share no public base class
            raise ModelError(f"text reader failed on a {width}x{READ_HEIGHT} crop ({exc})"
                             ) from None
        text, confidence = ctc_greedy(probs, self._alphabet)
        text = " ".join(text.split())
        if len(text.replace(" ", "")) < self.cfg.min_chars or \
                confidence < self.cfg.read_threshold:
            return None
        return text[:MAX_READ_CHARS]

    @property
    def reader(self) -> Any:
        if self._reader is None:
            self._reader = self._load(model_path(READER))
            alphabet = self._reader.get_modelmeta().custom_metadata_map.get("character")
            if not alphabet:
                raise ModelError(f"{model_path(READER)}: no alphabet in its metadata")
            self._alphabet = ["", *alphabet.splitlines(), " "]  # CTC blank first
        return self._reader

    def boxes(self, frame: np.ndarray) -> list[Box]:
        session = self.session
        h, w = frame.shape[:2]
        scale = min(1.0, self.cfg.size / max(h, w))
        mw, mh = (max(32, round(w * scale / 32) * 32), max(32, round(h * scale / 32) * 32))
        x = cv2.resize(frame, (mw, mh), interpolation=cv2.INTER_AREA).astype(np.float32)
        x = (x / 127.5 - 1.0).transpose(2, 0, 1)[None]
        try:
            prob = session.run(None, {session.get_inputs()[0].name: x})[0][0, 0]
        except Exception as exc:  # onnxruntime's errors share no public base class
            raise ModelError(f"text detector failed on a {mw}x{mh} frame ({exc})") from None
        mask = (prob > self.cfg.pixel_threshold).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
        found = []
        for i in range(1, count):
            bx, by, bw, bh, _ = stats[i]
            if min(bw, bh) < MIN_SIDE_PX:
                continue
            if float(prob[labels == i].mean()) < self.cfg.box_threshold:
                continue
            found.append(Box(bx / mw, by / mh, bw / mw, bh / mh))
        return found

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = self._load(model_path())
        return self._session

    def _load(self, path: Path) -> Any:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingExtra("the text detector", "text", exc.name or "onnxruntime"
                               ) from None
        options = ort.SessionOptions()
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if self.cfg.device != "cpu" and "CUDAExecutionProvider" in \
                ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:
            raise ModelError(f"{path}: onnxruntime cannot load it ({exc})") from None
        log.info("text model %s on %s", path.name, providers[0])
        return session
