"""Typed configuration: the only home of defaults (train:'s shared with the trainer come
from trainer/config.py, see config_train.py).

A config file is YAML whose structure mirrors the dataclasses below. Loading checks the
whole file before anything runs and reports every problem at once (key path, the value
found, what is allowed); unknown keys are errors, so a typo never silently falls back
to a default. `config.example.yaml` shows every key; a test keeps the two in step.

    cfg = load_config(Path("config.yaml"))   # or load_config(None) for all defaults
    cfg.clips.min_frames
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hydrus_motion import places
from hydrus_motion.config_annotate import (
    AnnotateConfig,
    CaptionerConfig,
    DuplicatesConfig,
    MotionConfig,
    QualityConfig,
    TaggerConfig,
    TextConfig,
)
from hydrus_motion.config_daemon import VIDEO_GLOBS, DaemonConfig, NightlyConfig
from hydrus_motion.config_hydrus import HydrusConfig, HydrusNotesConfig, HydrusTagsConfig
from hydrus_motion.config_paths import (
    ACCESS_KEY_ENV,
    access_key,
    archive_dir,
    clips_dir,
    dataset_dir,
    is_access_key,
    quarantine_dir,
    state_dir,
    training_dir,
    watch_dir,
)
from hydrus_motion.config_train import AppTrainConfig
from hydrus_motion.errors import ConfigError
from hydrus_motion.typed_yaml import build
from hydrus_motion.typed_yaml import in_range as _range

# Each section's dataclass lives with its concern (config_*.py); this module assembles
# them, loads and checks a file, and is where the rest of the code imports them from.
__all__ = [
    "ACCESS_KEY_ENV", "ENV_VAR", "VIDEO_GLOBS", "AdaptiveParams", "AnnotateConfig",
    "AppTrainConfig", "CaptionerConfig", "ClipsConfig", "Config", "ContentParams",
    "DaemonConfig", "DatasetConfig", "DuplicatesConfig", "EncodeConfig", "HashParams",
    "HistogramParams", "HydrusConfig", "HydrusNotesConfig", "HydrusTagsConfig",
    "MotionConfig", "NightlyConfig", "PathsConfig", "QualityConfig", "ScenesConfig",
    "TaggerConfig", "TextConfig", "ThresholdParams", "ToolsConfig", "TransNetV2Params",
    "access_key", "archive_dir", "as_dict", "clips_dir", "config_from_dict", "dataset_dir",
    "is_access_key", "load_config", "quarantine_dir", "resolve_config_path", "state_dir",
    "training_dir", "watch_dir",
]

ENV_VAR = places.ENV_VAR

DetectorName = Literal["adaptive", "content", "hash", "histogram", "threshold", "transnetv2"]
X264Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                     "slower", "veryslow"]


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
class Config:
    scenes: ScenesConfig = field(default_factory=ScenesConfig)
    clips: ClipsConfig = field(default_factory=ClipsConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    hydrus: HydrusConfig = field(default_factory=HydrusConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    train: AppTrainConfig = field(default_factory=AppTrainConfig)
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
    cfg = build(Config, data, "", problems)
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


def as_dict(cfg: Any) -> dict[str, Any]:
    """The effective config as plain data (for `doctor` and provenance); secrets masked."""
    data = dataclasses.asdict(cfg)
    if isinstance(cfg, Config) and data["hydrus"]["access_key"] is not None:
        data["hydrus"]["access_key"] = "(set)"
    return data
