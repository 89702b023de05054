"""The `annotate:` section of the config: tagger, captioner, quality and the signals.

Part of hydrus_motion.config (which re-exports every name); defaults live here only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hydrus_motion.typed_yaml import in_range as _range


@dataclass(frozen=True)
class TaggerConfig:
    # Hugging Face repo id (downloaded once into the HF cache, then works offline) or a
    # folder with model.onnx + selected_tags.csv; null: no tagger.
    model: str | None = "SmilingWolf/wd-vit-tagger-v3"
    # Mean probability over the sampled frames a tag needs (SmilingWolf's defaults).
    general_threshold: float = field(default=0.35, metadata=_range(0, 1))
    character_threshold: float = field(default=0.85, metadata=_range(0, 1))
    # mcut: threshold at the largest gap between sorted probabilities, per clip.
    general_mode: Literal["threshold", "mcut"] = "threshold"
    character_mode: Literal["threshold", "mcut"] = "threshold"
    # Tag names as the tagger writes them (spaces or underscores). include: only these.
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    batch_size: int = field(default=32, metadata=_range(1, 4096))  # frames per model run
    device: Literal["auto", "cpu", "cuda"] = "auto"


@dataclass(frozen=True)
class CaptionerConfig:
    # Any transformers image-text-to-text model that reads several images: repo id or
    # folder; null: no caption.
    model: str | None = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"
    prompt: str = ("Describe this video in one or two sentences: what is shown and how it "
                   "moves.")
    frames: int = field(default=6, metadata=_range(1, 64))  # spread over the whole clip
    max_new_tokens: int = field(default=80, metadata=_range(1, 2048))
    batch_size: int = field(default=4, metadata=_range(1, 256))  # clips per generate()
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"


@dataclass(frozen=True)
class QualityConfig:
    # (motion levels: annotate.motion)
    # sharpness = variance of the Laplacian of the sampled frames.
    blurry_below: float = field(default=50.0, metadata=_range(0, None))
    # brightness = mean grey level, 0-255.
    dark_below: float = field(default=40.0, metadata=_range(0, 255))
    bright_above: float = field(default=215.0, metadata=_range(0, 255))
    # (near duplicates: annotate.duplicates)
    namespace_motion: str = "motion"
    namespace_quality: str = "quality"


# -- annotation signals (issue 14): flow, camera, cadence, burned-in text, duplicates --

@dataclass(frozen=True)
class MotionConfig:
    # Optical flow on `window_frames` consecutive frames from the clip's middle, decoded
    # `flow_width` px wide (in the one decode annotation does).
    window_frames: int = field(default=48, metadata=_range(2, 1000))
    flow_width: int = field(default=160, metadata=_range(32, 1024))
    # flow magnitude, in frame widths per second: below static_below -> motion:static,
    # from medium_above -> motion:medium, from high_above -> motion:high, else low.
    static_below: float = field(default=0.02, metadata=_range(0, None))
    medium_above: float = field(default=0.06, metadata=_range(0, None))
    high_above: float = field(default=0.3, metadata=_range(0, None))
    # camera: global shift (widths or heights per second) for a pan or tilt, log scale
    # per second for a zoom; below both: camera:static (if the picture is still).
    camera_pan_above: float = field(default=0.02, metadata=_range(0, None))
    camera_zoom_above: float = field(default=0.03, metadata=_range(0, None))
    # cadence: a pair of consecutive frames (64 px grey) repeats one drawing when it
    # changes less than hold_ratio of the larger change of the pairs beside it, and
    # those change by at least hold_diff mean grey levels. Tagged `motion:on twos`
    # (threes, fours) when at least cadence_min_held of the pairs repeat.
    hold_diff: float = field(default=1.0, metadata=_range(0, 255))
    hold_ratio: float = field(default=0.3, metadata=_range(0, 1))
    cadence_min_held: float = field(default=0.3, metadata=_range(0, 1))
    namespace_camera: str = "camera"


@dataclass(frozen=True)
class TextConfig:
    # Burned-in text (subtitles, logos, captions) from an OCR text detector (PP-OCR det
    # model shipped in the `rapidocr` package: extra `text`); false: not looked for.
    enabled: bool = True
    # Probability-map threshold of a text pixel, and the mean a box needs.
    pixel_threshold: float = field(default=0.3, metadata=_range(0, 1))
    box_threshold: float = field(default=0.6, metadata=_range(0, 1))
    # Of the tagger's sampled frames, this many spread evenly (first, middle, last ...)
    # go through the detector (its cost is per frame).
    frames: int = field(default=3, metadata=_range(1, 64))
    # Detector input: long side at most this, px (rounded to multiples of 32; the
    # frames are annotate.frame_size, so a larger value does not upscale).
    size: int = field(default=448, metadata=_range(64, 2048))
    # Fraction of the sampled frames with text (anywhere) for quality:text; with a wide
    # box in the lower third for quality:subtitles; with the same small box in a corner
    # for quality:logo.
    text_min_fraction: float = field(default=0.4, metadata=_range(0, 1))
    subtitle_min_fraction: float = field(default=0.2, metadata=_range(0, 1))
    logo_min_fraction: float = field(default=0.6, metadata=_range(0, 1))
    # A subtitle-band line read alike in at least this many of the clips annotated
    # together (one video's), and in half of them, is a watermark (quality:watermark:
    # a copyright or credit line), not subtitles. Needs verify (the line's text).
    watermark_min_clips: int = field(default=3, metadata=_range(2, 10_000))
    # Read each box with PP-OCR's recogniser (same wheel): it counts only when it reads
    # as min_chars characters at a mean confidence of read_threshold; texture the
    # detector mistakes for text reads as nothing or one unsure character.
    verify: bool = True
    min_chars: int = field(default=2, metadata=_range(1, 100))
    read_threshold: float = field(default=0.8, metadata=_range(0, 1))
    device: Literal["auto", "cpu", "cuda"] = "auto"


@dataclass(frozen=True)
class DuplicatesConfig:
    # A 64-bit dHash per sampled frame, kept in the state database for every clip; a clip
    # whose frames are on average within max_distance bits of an earlier clip's (any
    # video) is tagged quality:near duplicate. With group_tags, once both are in Hydrus
    # each also gets `duplicate group:<first 12 hex of the group's earliest clip>`, so one
    # search shows the whole group. (Hydrus keeps potential-duplicate pairs only for files
    # in its similar-files system, still images: it answers 200 to a pair of videos and
    # drops it, so the duplicate filter cannot hold our clips; see docs/CURATION.md.)
    enabled: bool = True
    max_distance: int = field(default=6, metadata=_range(0, 64))
    group_tags: bool = True


@dataclass(frozen=True)
class AnnotateConfig:
    # ingest annotates new clips before they are recorded; a failure leaves them untagged.
    enabled: bool = True
    # peak: frames from the middle of the clip (its subject, away from cut smear).
    sampling: Literal["peak", "uniform"] = "peak"
    frames: int = field(default=5, metadata=_range(1, 64))  # tagger frames per clip
    peak_fraction: float = field(default=0.5, metadata=_range(0.05, 1))  # of the clip
    frame_size: int = field(default=448, metadata=_range(32, 4096))  # decode long side, px
    tagger: TaggerConfig = field(default_factory=TaggerConfig)
    captioner: CaptionerConfig = field(default_factory=CaptionerConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    duplicates: DuplicatesConfig = field(default_factory=DuplicatesConfig)
