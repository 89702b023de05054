"""Typed configuration: the only home of defaults.

A config file is YAML whose structure mirrors the dataclasses below. Loading checks the
whole file before anything runs and reports every problem at once (key path, the value
found, what is allowed); unknown keys are errors, so a typo never silently falls back
to a default. `config.example.yaml` shows every key; a test keeps the two in step.

    cfg = load_config(Path("config.yaml"))   # or load_config(None) for all defaults
    cfg.clips.min_frames
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hydrus_motion import places
from hydrus_motion.errors import ConfigError

ENV_VAR = places.ENV_VAR
ACCESS_KEY_ENV = "HYDRUS_MOTION_ACCESS_KEY"

DetectorName = Literal["adaptive", "content", "hash", "histogram", "threshold", "transnetv2"]
X264Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                     "slower", "veryslow"]


def _range(lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    return {"range": (lo, hi)}


@dataclass(frozen=True)
class ContentParams:
    threshold: float = field(default=27.0, metadata=_range(0, 255))
    luma_only: bool = False


@dataclass(frozen=True)
class AdaptiveParams:
    adaptive_threshold: float = field(default=3.0, metadata=_range(0.01, None))
    window_width: int = field(default=2, metadata=_range(1, 100))
    min_content_val: float = field(default=15.0, metadata=_range(0, 255))
    luma_only: bool = False


@dataclass(frozen=True)
class HashParams:
    threshold: float = field(default=0.35, metadata=_range(0, 1))
    size: int = field(default=8, metadata=_range(2, 64))
    lowpass: int = field(default=2, metadata=_range(1, 16))


@dataclass(frozen=True)
class HistogramParams:
    threshold: float = field(default=0.20, metadata=_range(0, 1))
    bins: int = field(default=128, metadata=_range(2, 256))


@dataclass(frozen=True)
class ThresholdParams:
    threshold: float = field(default=12.0, metadata=_range(0, 255))
    fade_bias: float = field(default=0.0, metadata=_range(-1, 1))
    method: Literal["floor", "ceiling"] = "floor"


@dataclass(frozen=True)
class TransNetV2Params:
    # Per-frame transition probability above which a frame is part of a transition.
    threshold: float = field(default=0.5, metadata=_range(0, 1))
    # auto picks cuda when torch sees a GPU, else cpu.
    device: Literal["auto", "cpu", "cuda"] = "auto"


@dataclass(frozen=True)
class ScenesConfig:
    # Adaptive had the best hard-cut recall/precision balance on the goldens and on our
    # generated camera-motion videos; docs/SCENES.md has the measurements.
    detector: DetectorName = "adaptive"
    # Seconds, not frames, so the meaning does not change with the frame rate (and VFR works).
    min_scene_len: float = field(default=0.6, metadata=_range(0, 60))
    # Frames are analysed at this many pixels on their long side (PySceneDetect's auto
    # downscale target); more costs time and rarely changes a hard cut.
    analysis_size: int = field(default=256, metadata=_range(32, 4096))
    # Skip the H.264/HEVC deblocking filter while *detecting* (clips are always cut from a
    # full decode). Faster, but it moved a borderline cut on the goldens, so it is opt-in.
    fast_decode: bool = False
    content: ContentParams = field(default_factory=ContentParams)
    adaptive: AdaptiveParams = field(default_factory=AdaptiveParams)
    hash: HashParams = field(default_factory=HashParams)
    histogram: HistogramParams = field(default_factory=HistogramParams)
    threshold: ThresholdParams = field(default_factory=ThresholdParams)
    # Neural detector (extra `transnetv2`): also finds dissolves and fades, and keeps
    # their frames out of every scene. About 10x slower than adaptive on a CPU.
    transnetv2: TransNetV2Params = field(default_factory=TransNetV2Params)


@dataclass(frozen=True)
class ClipsConfig:
    # 16 frames at stride 2: (16 - 1) * 2 + 1 = 31 source frames, about a second, so the
    # short shots of real films and anime are kept. The trainer samples train.frames at
    # train.stride where a clip is long enough and spreads them over the whole clip
    # where it is not (a 31-frame clip is read at stride 2).
    min_frames: int = field(default=31, metadata=_range(1, None))
    # ~10 s at 24 fps: long enough for several distinct 61-frame windows, short enough
    # that a reviewer judges one shot. Longer scenes are split into equal chunks.
    max_frames: int = field(default=240, metadata=_range(1, None))
    # Frames dropped on each side of a detected cut: detectors mark the first frame of
    # the new shot, but encoders blur the neighbours and soft cuts span 1-2 frames.
    # Never more than the scene can spare above min_frames: a short shot is kept whole.
    trim_frames: int = field(default=2, metadata=_range(0, 1000))
    # -- black bars (issue 14) --
    # auto: letterbox / pillarbox bars found per scene while detecting are cut away
    # (crop before scale); off: clips keep the full frame.
    crop: Literal["auto", "off"] = "auto"
    # A row or column is bar when its mean grey level (0-255, full range: video black is
    # 0) is at most this and under 2 % of its pixels are brighter than twice this. 12 is
    # about ffmpeg cropdetect's default (24 on limited-range luma). docs/CLIPS.md.
    crop_black_level: int = field(default=12, metadata=_range(0, 127))
    # Bars thinner than this fraction of the width/height are left alone.
    crop_min_bar: float = field(default=0.01, metadata=_range(0, 0.5))


@dataclass(frozen=True)
class EncodeConfig:
    # x264 (libx264, CPU) or nvenc (h264_nvenc: an NVIDIA GPU and an ffmpeg built with
    # it; checked before the first cut, with a clear error where either is missing).
    # nvenc reads crf as its constant quality (-cq) and the preset as the nearest p1-p7.
    codec: Literal["x264", "nvenc"] = "x264"
    crf: int = field(default=18, metadata=_range(0, 51))
    preset: X264Preset = "medium"
    # 0 keeps the source size. SD1.5 motion modules train at 256-512 px short side and
    # the tagger/captioner read <= 512 px; 720 leaves room for crops and a sharp review
    # in Hydrus while encoding ~2.25x fewer pixels than 1080p. Use 1024 or 0 for
    # SDXL-class trainers. Never upscales; output pixels are square.
    max_short_side: int = field(default=720, metadata=_range(0, 8192))
    # null keeps the source timing (VFR stays VFR); a number resamples every clip to it.
    fps: float | None = field(default=None, metadata=_range(1, 240))
    # The source's audio of each clip (AAC), added in one short run per clip (clips/audio.py).
    keep_audio: bool = False
    # Any of x264's own tuning names (film, animation, grain, ...); null for none.
    tune: str | None = None
    # -- cutting in batches (issue 18): a film's clips go through several ffmpeg runs,
    # each seeking to its first clip and holding at most this many clips (memory and
    # command line stay bounded; a kill loses at most one batch).
    clips_per_run: int = field(default=50, metadata=_range(1, 1000))
    # MiB that must stay free on the clips' disk after a cut (checked, with an estimate
    # of the clips' size, before cutting starts).
    keep_free_mb: int = field(default=1024, metadata=_range(0, None))
    # -- fields (issue 14) --
    # auto: measured on a sample of the source (ffmpeg idet): interlaced -> bwdif,
    # telecined -> fieldmatch (no decimate: frame numbers stay exact), else nothing;
    # always: every source is deinterlaced (fieldmatch when telecined); off: never.
    deinterlace: Literal["auto", "off", "always"] = "auto"


@dataclass(frozen=True)
class ToolsConfig:
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    # Seconds any one ffmpeg/ffprobe run may take before it is killed.
    timeout_s: float = field(default=6 * 3600, metadata=_range(1, None))


@dataclass(frozen=True)
class PathsConfig:
    # Local state (the SQLite record of every clip and push). `~` is expanded. null: the
    # platform's state folder ($XDG_STATE_HOME/hydrus-motion, else
    # ~/.local/state/hydrus-motion on Linux; %LOCALAPPDATA%\hydrus-motion on Windows).
    state_dir: str | None = None
    # Where ingest writes clips (one folder per source video); null: <state_dir>/clips.
    # Keep them: reconcile re-uploads from here if Hydrus lost a file.
    clips_dir: str | None = None
    # The dataset folder `export` keeps current (a link to its newest build); null:
    # <state_dir>/dataset. `export --out` overrides it.
    dataset_dir: str | None = None
    # Nightly training runs (runs/<id>/) and `current`, a link to the newest finished one
    # (current/motion_module.safetensors is what a UI should load); null:
    # <state_dir>/training.
    training_dir: str | None = None


@dataclass(frozen=True)
class HydrusTagsConfig:
    clip: str = "motion:clip"
    pending: str = "motion:pending"
    approved: str = "approved"
    rejected: str = "rejected"
    source_namespace: str = "source"
    scene_namespace: str = "scene"
    # Validation samples of a nightly training run: `motion:sample` and `motion run:<id>`.
    sample: str = "motion:sample"
    run_namespace: str = "motion run"


@dataclass(frozen=True)
class HydrusNotesConfig:
    caption: str = "caption"
    provenance: str = "hydrus-motion"
    run: str = "motion run"  # on samples: what the run was trained on and how it went


@dataclass(frozen=True)
class HydrusConfig:
    api_url: str = "http://127.0.0.1:45869/"
    # 64 hex digits. HYDRUS_MOTION_ACCESS_KEY wins over this, so the key need not sit in
    # a file. It never appears in logs, errors or anything we write.
    access_key: str | None = field(default=None, metadata={"secret": True})
    # Local tag service (by name) that receives every tag we write.
    tag_service: str = "my tags"
    # path: Hydrus reads the clip from our folder (same machine); bytes: upload it;
    # auto: path on a loopback api_url, falling back to bytes if Hydrus cannot read it.
    import_by: Literal["auto", "path", "bytes"] = "auto"
    # Seconds to wait for an answer; uploads get upload_timeout_s to send the bytes.
    timeout_s: float = field(default=30.0, metadata=_range(1, 3600))
    upload_timeout_s: float = field(default=600.0, metadata=_range(1, 86400))
    # Connection errors and 503 (database busy) are retried with doubling waits
    # starting at backoff_s (capped at 60 s); other errors are not.
    retries: int = field(default=4, metadata=_range(0, 20))
    backoff_s: float = field(default=1.0, metadata=_range(0, 60))
    # Hashes per file_metadata request: the list travels in the URL.
    metadata_chunk: int = field(default=256, metadata=_range(1, 2000))
    # Hydrus commits every 30 s, so a crash loses recent writes; reconcile re-checks
    # clips pushed within this many hours.
    reconcile_hours: float = field(default=48.0, metadata=_range(0, None))
    tags: HydrusTagsConfig = field(default_factory=HydrusTagsConfig)
    notes: HydrusNotesConfig = field(default_factory=HydrusNotesConfig)


@dataclass(frozen=True)
class DatasetConfig:
    # A clip's training caption. {caption}: its caption note as it is in Hydrus now;
    # {tags}: its tags in tag_order. Separators next to an empty part are dropped, so a
    # clip without a caption note gets its tags alone.
    caption_template: str = "{caption}, {tags}"
    # Which tags go into {tags}, group by group, in Danbooru/NovelAI order. Names are
    # namespaces; `general` means unnamespaced tags. Namespaces not listed (motion:,
    # source:, scene: bookkeeping) and the approved/rejected tags are left out. The
    # namespace is dropped in the caption except for rating ("rating:general").
    tag_order: tuple[str, ...] = ("rating", "character", "series", "creator", "general", "meta")
    # spaces: "long hair" (kaomoji such as ^_^ keep theirs) | underscores: "long_hair".
    underscores: Literal["spaces", "underscores"] = "spaces"
    # true: a clip without a caption note fails the export (the previous dataset stays);
    # false: it is captioned by its tags. A clip whose caption comes out empty is left out.
    require_caption: bool = False
    # Also write webdataset shards (shards/*.tar with <id>.mp4, .txt, .json).
    shards: bool = False
    shard_max_clips: int = field(default=1000, metadata=_range(1, None))
    # report.md (counts, lengths, tag frequencies) and contact_sheet.jpg (first frames).
    report: bool = True
    contact_sheet_max: int = field(default=256, metadata=_range(0, 10000))
    # Older builds kept beside the current one, so a trainer that opened one keeps it.
    keep_builds: int = field(default=1, metadata=_range(0, 100))
    # Clips carrying any of these tags (issue 14: e.g. quality:text) are left out of the
    # export and listed as skipped with the tag.
    exclude_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainConfig:
    # SD 1.5 base: a diffusers folder or one .safetensors/.ckpt; `train` needs it.
    pretrained_model: str | None = None
    # Start from: an original AnimateDiff .ckpt/.safetensors (v1/v2/v3), a diffusers
    # adapter folder, or null for a fresh module (zero-initialised output projections).
    motion_module: str | None = None
    # Fresh modules only: v3 (no mid block) or v2 (mid block).
    fresh_variant: Literal["v2", "v3"] = "v3"
    # Frames are resized on their short side to this, then centre-cropped square.
    size: int = field(default=256, metadata=_range(64, 2048))
    frames: int = field(default=16, metadata=_range(1, 32))
    stride: int = field(default=4, metadata=_range(1, 64))
    max_steps: int = field(default=1000, metadata=_range(1, None))
    batch_size: int = field(default=1, metadata=_range(1, 256))
    gradient_accumulation: int = field(default=1, metadata=_range(1, 1024))
    learning_rate: float = field(default=1e-4, metadata=_range(0, 1))
    mixed_precision: Literal["no", "fp16", "bf16"] = "bf16"
    gradient_checkpointing: bool = True
    # Cache VAE latents and text embeddings on disk (keyed by clip hash + settings).
    cache: bool = True
    ema: bool = False
    seed: int = 42
    checkpoint_every: int = field(default=500, metadata=_range(1, None))
    checkpoint_limit: int = field(default=3, metadata=_range(1, 1000))
    export_dtype: Literal["fp16", "fp32", "bf16"] = "fp16"
    # Validation samples (mp4 + gif) rendered after the last step, one per prompt; the
    # nightly job puts them into Hydrus. Empty: none (nightly: nightly.sample_prompts).
    validation_prompts: tuple[str, ...] = ()
    validation_steps: int = field(default=25, metadata=_range(1, 1000))  # denoising steps
    # A trainer RUN.yaml whose keys win over the ones written from this section
    # (buckets, tag shuffle, noise schedule, ...).
    run_overrides: str | None = None
    # auto: `accelerate launch` when accelerate is installed, else `python -m trainer`.
    launcher: Literal["auto", "accelerate", "python"] = "auto"
    timeout_h: float = field(default=24.0, metadata=_range(0.01, None))
    # -- evaluation and samples (issue 15) --
    # Share of approved clips held out, never trained on (chosen by clip hash, stable as
    # the dataset grows); their loss decides promotion (nightly.gate).
    holdout: float = field(default=0.1, metadata=_range(0, 0.9))
    eval_timesteps: int = field(default=8, metadata=_range(1, 1000))  # fixed, over the schedule
    # One prompt per line: `prompt | negative prompt | seed` (the last two optional);
    # wins over validation_prompts. Blank lines and lines starting with # are skipped.
    prompts_file: str | None = None
    before_after: bool = True  # samples of the starting module beside the new one
    report_to: Literal["tensorboard", "wandb", "none"] = "tensorboard"
    # -- motion LoRA (issue 15) --
    # full: finetune the whole motion module, each night from the current one. lora: train
    # LoRA layers on its attention (to_q/to_k/to_v/to_out) over train.motion_module, the
    # fixed base (required), each night from that same base, so nothing drifts; the run
    # writes motion_lora.safetensors (ComfyUI-AnimateDiff-Evolved) and
    # motion_lora_diffusers/ besides the merged motion_module.safetensors.
    method: Literal["full", "lora"] = "full"
    lora_rank: int = field(default=32, metadata=_range(1, 1024))
    lora_alpha: float = field(default=32.0, metadata=_range(1e-6, None))  # scale alpha/rank


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


# Video containers the watch folder takes by default (daemon.include).
VIDEO_GLOBS = tuple(f"*.{ext}" for ext in (
    "mp4", "m4v", "mkv", "webm", "mov", "avi", "ts", "m2ts", "mts", "mpg", "mpeg", "wmv",
    "flv", "3gp", "ogv", "vob", "asf", "divx", "f4v"))


@dataclass(frozen=True)
class DaemonConfig:
    # The folder `hydrus-motion daemon` watches for new videos. null: `watch` in the
    # platform's data folder ($XDG_DATA_HOME/hydrus-motion/watch, else
    # ~/.local/share/hydrus-motion/watch on Linux), created when missing.
    watch_dir: str | None = None
    # Also take videos from folders inside watch_dir.
    recursive: bool = True
    # Which files in watch_dir are videos to take: glob patterns matched, ignoring case,
    # against the file name (or, with a "/", the path inside watch_dir). A file is taken
    # when it matches an include and no exclude; all others (subtitles, .nfo, .info.json,
    # thumbnails) are left where they are, never moved or quarantined.
    include: tuple[str, ...] = VIDEO_GLOBS
    exclude: tuple[str, ...] = ()
    # Where a video goes when done, and a broken one with its .reason.txt.
    # null: <state_dir>/archive and <state_dir>/quarantine.
    archive_dir: str | None = None
    quarantine_dir: str | None = None
    # What happens to a video (and its sidecar) once its clips are in Hydrus:
    # move it to archive_dir, keep it where it is, or delete it.
    after_success: Literal["move", "keep", "delete"] = "move"
    # A file is taken once its size and mtime stayed the same for this many seconds
    # (a copy or download in progress keeps changing them).
    settle_s: float = field(default=10.0, metadata=_range(0, 86400))
    # Full rescan of watch_dir every this many seconds, besides file-system events
    # (network drives often deliver none).
    rescan_s: float = field(default=60.0, metadata=_range(0.05, 86400))
    # How often idle workers look for due jobs.
    poll_s: float = field(default=1.0, metadata=_range(0.01, 60))
    # Parallel jobs: CPU stages (detect, slice; each runs ffmpeg) and the GPU stage
    # (annotate). Pushes to Hydrus run one at a time.
    cpu_workers: int = field(default=1, metadata=_range(1, 64))
    gpu_workers: int = field(default=1, metadata=_range(1, 16))
    # Failed stage attempts (not counting Hydrus being down) before a job is given up;
    # the wait between attempts starts at retry_backoff_s and doubles.
    max_attempts: int = field(default=5, metadata=_range(1, 100))
    retry_backoff_s: float = field(default=60.0, metadata=_range(0, 86400))
    # While Hydrus is unreachable, pushes wait and it is asked again this often.
    hydrus_retry_s: float = field(default=30.0, metadata=_range(0.05, 3600))
    # Each video's clips are re-checked in Hydrus this long after their push, to repair
    # what a Hydrus crash lost before its 30 s commit.
    reconcile_after_s: float = field(default=300.0, metadata=_range(0, 86400))
    # -- failures of this machine (issue 18) --
    # No space, permission denied, out of memory, ffmpeg killed: the job waits (never
    # counted, never quarantined); the wait starts at local_retry_s, doubles, is capped.
    local_retry_s: float = field(default=60.0, metadata=_range(0.01, 86400))
    local_retry_max_s: float = field(default=1800.0, metadata=_range(0.01, 86400))
    # GiB; intake pauses while the state or clips folder has less free space (0: never).
    min_free_gb: float = field(default=2.0, metadata=_range(0, 100000))
    # Seconds between looks for clips queued by others (`ingest` while Hydrus was down,
    # `ingest --no-push`), which the daemon then pushes.
    push_queued_s: float = field(default=60.0, metadata=_range(0.05, 86400))


@dataclass(frozen=True)
class NightlyConfig:
    # Run the nightly job from inside the daemon. Off: use `hydrus-motion nightly` from a
    # systemd timer or Task Scheduler instead (services/).
    enabled: bool = True
    # Standard 5-field cron expression: minute hour day-of-month month day-of-week.
    cron: str = "30 3 * * *"
    # IANA zone name such as Europe/Berlin; null: the machine's local zone.
    timezone: str | None = None
    # A scheduled run missed while the daemon was down: run it once at start-up, or skip
    # to the next scheduled time.
    missed: Literal["run", "skip"] = "run"
    # Train after the export when the dataset changed since the current checkpoint was
    # trained (changed), every night (always), or never (export only).
    train: Literal["changed", "always", "never"] = "changed"
    # Finished training runs kept besides the current one (older ones are deleted).
    keep_runs: int = field(default=2, metadata=_range(0, 1000))
    # Without train.validation_prompts, the captions of this many dataset clips are the
    # sample prompts (0: no samples).
    sample_prompts: int = field(default=2, metadata=_range(0, 32))
    # A popup in the Hydrus client when a run finished (needs the "manage popups"
    # permission; without it there is just no popup).
    popup: bool = True
    # -- promotion (issue 15) --
    # A run becomes current only when its held-out loss is at most (1 + gate_margin)
    # times the current module's; otherwise it is kept as a candidate (`promote RUN`).
    gate: bool = True
    gate_margin: float = field(default=0.02, metadata=_range(0, 10))  # relative, 0.02 = 2%
    # Also copy each promoted module here as hydrus-motion-<run>.safetensors (e.g.
    # ComfyUI/models/animatediff_models); null: only under the training folder.
    publish_dir: str | None = None
    # train.method lora: also copy each promoted run's motion LoRA here as
    # hydrus-motion-lora-<run>.safetensors (e.g. ComfyUI/models/animatediff_motion_lora).
    publish_lora_dir: str | None = None


@dataclass(frozen=True)
class Config:
    scenes: ScenesConfig = field(default_factory=ScenesConfig)
    clips: ClipsConfig = field(default_factory=ClipsConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    hydrus: HydrusConfig = field(default_factory=HydrusConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    nightly: NightlyConfig = field(default_factory=NightlyConfig)


def resolve_config_path(cli_value: str | None) -> Path | None:
    """The config file to read: see places.find_config (None: all defaults)."""
    return places.find_config(cli_value).path


def load_config(path: Path | None) -> Config:
    """Read and validate `path` (None: defaults). Raises ConfigError listing every problem."""
    if path is None:
        return Config()
    import yaml  # late: only needed when a file is given

    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
        duplicates = _duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML: {exc}"]) from None
    if duplicates:  # YAML lets the last one win silently; a person meant one of them
        raise ConfigError(source, duplicates)
    return config_from_dict(data or {}, source)


def _duplicate_keys(node: Any, prefix: str = "") -> list[str]:
    """'KEY: given twice (lines A and B)' for every mapping key repeated in the document."""
    import yaml

    problems: list[str] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name = f"{prefix}{key.value}" if isinstance(key, yaml.ScalarNode) else None
            line = key.start_mark.line + 1
            if name is not None and name in first:
                problems.append(f"{name}: given twice (lines {first[name]} and {line}); "
                                "keep one")
            elif name is not None:
                first[name] = line
            problems += _duplicate_keys(value, f"{name or prefix}.")
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems += _duplicate_keys(item, prefix)
    return problems


def config_from_dict(data: Any, source: str = "config") -> Config:
    problems: list[str] = []
    cfg = _build(Config, data, "", problems)
    if isinstance(cfg, Config):
        _check_relations(cfg, problems)
    if problems:
        raise ConfigError(source, problems)
    return cfg


def _check_relations(cfg: Config, problems: list[str]) -> None:
    c = cfg.clips
    if c.max_frames < c.min_frames:
        problems.append(f"clips.max_frames: {c.max_frames} is below clips.min_frames "
                        f"({c.min_frames}); allowed: >= min_frames")
    key = cfg.hydrus.access_key
    if key is not None and not is_access_key(key):
        problems.append("hydrus.access_key: (value hidden) is not allowed; allowed: 64 hex "
                        "digits, as Hydrus shows under services > review services > client api")
    url = cfg.hydrus.api_url
    if not url.startswith(("http://", "https://")):
        problems.append(f"hydrus.api_url: {url!r} is not allowed; allowed: an http:// or "
                        "https:// URL such as http://127.0.0.1:45869/")
    if cfg.encode.codec == "nvenc" and cfg.encode.tune:
        problems.append(f"encode.tune: {cfg.encode.tune!r} is not allowed with encode.codec "
                        "nvenc; allowed: null (tune names are x264's)")
    _check_caption_template(cfg.dataset.caption_template, problems)
    _check_nightly(cfg.nightly, problems)
    if cfg.train.method == "lora" and not cfg.train.motion_module:
        problems.append("train.method: 'lora' is not allowed without train.motion_module; "
                        "allowed: set motion_module to the base module the LoRA trains over "
                        "(e.g. v3_sd15_mm.ckpt), or method: full")


def _check_caption_template(template: str, problems: list[str]) -> None:
    import string

    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        problems.append(f"dataset.caption_template: {template!r} is not allowed: {exc}")
        return
    unknown = fields - {"caption", "tags"}
    if unknown:
        problems.append(f"dataset.caption_template: {template!r} is not allowed; allowed: "
                        "text with the fields {caption} and {tags}")


def _check_nightly(nightly: NightlyConfig, problems: list[str]) -> None:
    from hydrus_motion.schedule import cron_problem, timezone_problem

    for key, problem in (("cron", cron_problem(nightly.cron)),
                         ("timezone", timezone_problem(nightly.timezone))):
        if problem:
            problems.append(f"nightly.{key}: {problem}")


def is_access_key(value: str) -> bool:
    return len(value) == 64 and all(ch in "0123456789abcdefABCDEF" for ch in value)


def access_key(cfg: Config) -> str | None:
    """The key to use: HYDRUS_MOTION_ACCESS_KEY, else the config's."""
    return os.environ.get(ACCESS_KEY_ENV) or cfg.hydrus.access_key


def state_dir(cfg: Config) -> Path:
    if cfg.paths.state_dir is None:
        return places.user_state_dir()
    return Path(cfg.paths.state_dir).expanduser()


def watch_dir(cfg: Config) -> Path:
    """daemon.watch_dir, or the default watch folder in the platform's data folder."""
    if cfg.daemon.watch_dir is None:
        return places.default_watch_dir()
    return Path(cfg.daemon.watch_dir).expanduser()


def clips_dir(cfg: Config) -> Path:
    return _folder(cfg, cfg.paths.clips_dir, "clips")


def dataset_dir(cfg: Config) -> Path:
    return _folder(cfg, cfg.paths.dataset_dir, "dataset")


def training_dir(cfg: Config) -> Path:
    return _folder(cfg, cfg.paths.training_dir, "training")


def archive_dir(cfg: Config) -> Path:
    return _folder(cfg, cfg.daemon.archive_dir, "archive")


def quarantine_dir(cfg: Config) -> Path:
    return _folder(cfg, cfg.daemon.quarantine_dir, "quarantine")


def _folder(cfg: Config, configured: str | None, default_name: str) -> Path:
    """A configured folder (`~` expanded), or `<state_dir>/<default_name>`."""
    return Path(configured).expanduser() if configured else state_dir(cfg) / default_name


def _build(cls: type, data: Any, prefix: str, problems: list[str]) -> Any:
    if not isinstance(data, dict):
        problems.append(f"{prefix or '(top level)'}: expected a mapping of keys, got "
                        f"{_show(data)}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            problems.append(f"{prefix}{key}: unknown key; allowed keys here: "
                            f"{', '.join(fields)}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            continue
        path = f"{prefix}{name}"
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, data[name], path + ".", problems)
            continue
        value, problem = _check_value(data[name], hint, f.metadata.get("range"))
        if problem and f.metadata.get("secret"):  # never echo a secret back
            problems.append(f"{path}: (value hidden) is not allowed; allowed: "
                            f"{problem.rpartition('allowed: ')[2]}")
        elif problem:
            problems.append(f"{path}: {problem}")
        else:
            values[name] = value
    return cls(**values)


def _check_value(value: Any, hint: Any, bounds: tuple | None) -> tuple[Any, str | None]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None, None
        (hint,) = [a for a in args if a is not type(None)]
        return _check_value(value, hint, bounds)
    if origin is tuple and args[1:] == (Ellipsis,):  # a YAML list of one item type
        if not isinstance(value, (list, tuple)):
            return None, f"{_show(value)} is not allowed; allowed: a list"
        items = []
        for n, item in enumerate(value):
            checked, problem = _check_value(item, args[0], bounds)
            if problem:
                return None, f"item {n}: {problem}"
            items.append(checked)
        return tuple(items), None
    if typing.get_origin(hint) is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            return None, f"{_show(value)} is not allowed; allowed: {', '.join(map(str, allowed))}"
        return value, None
    if hint is bool:
        if not isinstance(value, bool):
            return None, f"{_show(value)} is not allowed; allowed: true or false"
        return value, None
    if hint in (int, float):
        ok = isinstance(value, int) if hint is int else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            return None, f"{_show(value)} is not allowed; allowed: {_describe(hint, bounds)}"
        lo, hi = bounds or (None, None)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return None, f"{_show(value)} is out of range; allowed: {_describe(hint, bounds)}"
        return hint(value), None
    if hint is str:
        if not isinstance(value, str) or not value:
            return None, f"{_show(value)} is not allowed; allowed: a non-empty string"
        return value, None
    raise TypeError(f"config type {hint!r} has no checker")  # a bug in this module


def _describe(hint: type, bounds: tuple | None) -> str:
    kind = "an integer" if hint is int else "a number"
    lo, hi = bounds or (None, None)
    if lo is not None and hi is not None:
        return f"{kind} from {lo} to {hi}"
    if lo is not None:
        return f"{kind} >= {lo}"
    return kind


def _show(value: Any) -> str:
    return "null" if value is None else repr(value)


def as_dict(cfg: Any) -> dict[str, Any]:
    """The effective config as plain data (for `doctor` and provenance); secrets masked."""
    data = dataclasses.asdict(cfg)
    if isinstance(cfg, Config) and data["hydrus"]["access_key"] is not None:
        data["hydrus"]["access_key"] = "(set)"
    return data
