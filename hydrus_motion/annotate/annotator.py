"""Annotate a batch of clip files: sample frames (one decode each), quality, motion, burned-in
text, tags, caption.

Failures are data: a clip that cannot be decoded, or a model that cannot be loaded, puts
a message in that clip's `errors` and the rest goes on; nothing here raises for one clip.
Clips are handled in chunks so memory stays bounded however many are given; the frames of
a whole chunk go through the tagger and the captioner together (batching is the speed).

    for a in annotate_clips([Path("a.mp4"), Path("b.mp4")], cfg):
        a.hydrus_tags(cfg), a.caption, a.errors
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydrus_motion.annotate.captioner import Captioner, TransformersCaptioner
from hydrus_motion.annotate.motion import Motion, measure_motion, motion_tags
from hydrus_motion.annotate.quality import Quality, measure, near_duplicates, quality_tags
from hydrus_motion.annotate.sampling import ClipFrames, FrameChoice, sample_clip
from hydrus_motion.annotate.tags import TagResult
from hydrus_motion.annotate.text import TextDetector, TextScore, mark_watermarks, text_tags
from hydrus_motion.annotate.wd_tagger import Tagger, WdTagger
from hydrus_motion.config import CaptionerConfig, Config, TaggerConfig, TextConfig
from hydrus_motion.errors import HydrusMotionError
from hydrus_motion.progress import Progress, no_progress

log = logging.getLogger(__name__)

MODEL_PARTS = ("tagger:", "captioner:", "text:")
CHUNK_CLIPS = 32  # clips decoded and held at once (~5 frames of <= 448 px each, plus greys)


@dataclass
class ClipAnnotation:
    path: Path
    frames: int = 0  # decoded
    tagger_frames: list[int] = field(default_factory=list)  # indexes read by the tagger
    tags: TagResult | None = None
    caption: str | None = None
    quality: Quality | None = None
    motion: Motion | None = None
    text: TextScore | None = None
    near_duplicate_of: Path | None = None  # an earlier clip of this batch
    near_duplicate_sha256: str | None = None  # an earlier clip of the library (ingest)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def hydrus_tags(self, cfg: Config) -> list[str]:
        a = cfg.annotate
        tags = self.tags.hydrus_tags() if self.tags else []
        if self.motion:
            tags += motion_tags(self.motion, a.motion, a.quality.namespace_motion)
        if self.quality:
            tags += quality_tags(self.quality, a.quality, self.near_duplicate)
        if self.text:
            tags += text_tags(self.text, a.text, a.quality.namespace_quality)
        return tags

    @property
    def near_duplicate(self) -> bool:
        return self.near_duplicate_of is not None or self.near_duplicate_sha256 is not None

    def scores(self) -> dict[str, Any]:
        """Every measured number: the note's `scores` and `tag --json`'s `quality`."""
        out: dict[str, Any] = self.quality.as_dict() if self.quality else {}
        if self.motion:
            out |= self.motion.as_dict()
        if self.text:
            out |= self.text.as_dict()
        return out

    def as_dict(self, cfg: Config) -> dict[str, Any]:
        return {"path": str(self.path), "ok": self.ok, "errors": self.errors,
                "frames": self.frames, "tagger_frames": self.tagger_frames,
                "tags": self.tags.as_dict() if self.tags else None,
                "caption": self.caption,
                "quality": self.scores() if self.quality else None,
                "near_duplicate_of": self.near_duplicate_of and str(self.near_duplicate_of),
                "near_duplicate_sha256": self.near_duplicate_sha256,
                "hydrus_tags": self.hydrus_tags(cfg)}


def annotate_clips(paths: Sequence[Path], cfg: Config, tagger: Tagger | None = None,
                   captioner: Captioner | None = None,
                   text: TextDetector | None = None,
                   progress: Progress = no_progress) -> list[ClipAnnotation]:
    """One ClipAnnotation per path, in order. The models come from `cfg.annotate` unless
    given; a null model in the config turns that part off. `progress(clips done, all)`."""
    a = cfg.annotate
    if tagger is None and a.tagger.model:
        tagger = _shared_tagger(a.tagger)
    if captioner is None and a.captioner.model:
        captioner = _shared_captioner(a.captioner)
    if text is None and a.text.enabled:
        text = _shared_text(a.text)
    results = [ClipAnnotation(Path(p)) for p in paths]
    broken: dict[str, str] = {}  # model -> why it failed: tried once per run, not per chunk
    for start in range(0, len(results), CHUNK_CLIPS):
        chunk = results[start:start + CHUNK_CLIPS]
        decoded = [(r, f) for r in chunk
                   if (f := _decode(r, cfg, captioner is not None)) is not None]
        if tagger is not None and decoded:
            _apply("tagger", broken, decoded, lambda fs: tagger.tag([f.tagger_frames for f in fs]),
                   lambda r, tags: setattr(r, "tags", tags))
        if text is not None and decoded:
            _apply("text", broken, decoded, lambda fs: text.detect([f.tagger_frames for f in fs]),
                   lambda r, score: setattr(r, "text", score))
        if captioner is not None and decoded:
            _apply("captioner", broken, decoded,
                   lambda fs: captioner.caption([f.caption_frames for f in fs]),
                   lambda r, text: setattr(r, "caption", text))
        progress(start + len(chunk), len(results))
    if text is not None:  # a line shared by most of these clips is a watermark
        for r, score in zip(results, mark_watermarks([r.text for r in results],
                                                     a.text.watermark_min_clips)):
            r.text = score
    dups = near_duplicates([r.quality.signature if r.quality else None for r in results],
                           a.duplicates.max_distance) if a.duplicates.enabled else {}
    for i, j in dups.items():
        results[i].near_duplicate_of = results[j].path
    for r in results:
        if r.ok:
            log.info("%s: annotated", r.path.name)
        else:  # a model's failure was logged in full once; per clip, name the part only
            parts = [e.partition(":")[0] if e.startswith(MODEL_PARTS) else e for e in r.errors]
            log.warning("%s: not (fully) annotated: %s", r.path.name, "; ".join(parts))
    return results


def provenance(cfg: Config, tagger: Tagger | None = None,
               captioner: Captioner | None = None,
               text: TextDetector | None = None) -> dict[str, Any]:
    """What annotated a clip, for the `hydrus-motion` note's models entry."""
    a = cfg.annotate
    return {
        "tagger": tagger.describe() if tagger else
        (WdTagger(a.tagger).describe() if a.tagger.model else None),
        "captioner": captioner.describe() if captioner else
        (TransformersCaptioner(a.captioner).describe() if a.captioner.model else None),
        "sampling": {"mode": a.sampling, "frames": a.frames, "peak_fraction": a.peak_fraction,
                     "frame_size": a.frame_size},
        "quality": {"blurry_below": a.quality.blurry_below, "dark_below": a.quality.dark_below,
                    "bright_above": a.quality.bright_above},
        "motion": {k: getattr(a.motion, k) for k in _MOTION_KEYS},
        "text": (text or TextDetector(a.text)).describe() | {
            k: getattr(a.text, k) for k in _TEXT_KEYS} if a.text.enabled else None,
        "duplicates": {"signature": "dhash64", "max_distance": a.duplicates.max_distance}
        if a.duplicates.enabled else None,
    }


_MOTION_KEYS = ("window_frames", "flow_width", "static_below", "medium_above", "high_above",
                "camera_pan_above", "camera_zoom_above", "hold_diff", "hold_ratio",
                "cadence_min_held")
_TEXT_KEYS = ("text_min_fraction", "subtitle_min_fraction", "logo_min_fraction",
              "watermark_min_clips")


def annotation_parts(note: ClipAnnotation | None, cfg: Config, tagger: Tagger | None = None,
                     captioner: Captioner | None = None
                     ) -> tuple[list[str], str | None, dict[str, Any]]:
    """(extra Hydrus tags, caption, provenance `models` entry) of one clip's annotation.

    The provenance names only the parts that produced something, so a note never claims
    a model that failed to load; the clip's scores and any failure go with it."""
    if note is None:
        return [], None, {}
    made = provenance(cfg, tagger if note.tags else None, captioner if note.caption else None)
    if note.tags is None:
        made["tagger"] = None
    if note.caption is None:
        made["captioner"] = None
    if note.text is None:
        made["text"] = None
    made["scores"] = note.scores() if note.quality else None
    if note.near_duplicate_sha256:
        made["near_duplicate_of"] = note.near_duplicate_sha256
    made["errors"] = note.errors
    return note.hydrus_tags(cfg), note.caption, made


# One loaded model per process (ingest calls us once per video; the daemon runs for days).
# A model that failed to load is retried on the next call: it may have been fixed.
@functools.lru_cache(maxsize=1)
def _shared_tagger(cfg: TaggerConfig) -> WdTagger:
    return WdTagger(cfg)


@functools.lru_cache(maxsize=1)
def _shared_text(cfg: TextConfig) -> TextDetector:
    return TextDetector(cfg)


@functools.lru_cache(maxsize=1)
def _shared_captioner(cfg: CaptionerConfig) -> TransformersCaptioner:
    return TransformersCaptioner(cfg)


def _decode(result: ClipAnnotation, cfg: Config, for_caption: bool) -> ClipFrames | None:
    a = cfg.annotate
    caption = FrameChoice("uniform", a.captioner.frames) if for_caption else None
    try:
        frames = sample_clip(result.path, cfg.tools, size=a.frame_size,
                             tagger=FrameChoice(a.sampling, a.frames, a.peak_fraction),
                             caption=caption, window=a.motion.window_frames,
                             window_width=a.motion.flow_width)
    except HydrusMotionError as exc:
        result.errors.append(exc.message)
        return None
    result.frames, result.tagger_frames = frames.total, frames.tagger_indexes
    result.quality = measure(frames)
    result.motion = measure_motion(frames, a.motion)
    return frames


def _apply(what: str, broken: dict[str, str], decoded: list[tuple[ClipAnnotation, ClipFrames]],
           run: Callable[[list[ClipFrames]], list], store: Callable[[ClipAnnotation, Any], None]
           ) -> None:
    if what in broken:
        for r, _ in decoded:
            r.errors.append(broken[what])
        return
    try:
        outputs = run([f for _, f in decoded])
    except HydrusMotionError as exc:
        broken[what] = f"{what}: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
        log.error("%s", broken[what])
        for r, _ in decoded:
            r.errors.append(broken[what])
        return
    for (r, _), out in zip(decoded, outputs):
        store(r, out)
