"""RUN.yaml: one training run's settings, checked in full before anything loads.

Defaults reproduce the official AnimateDiff motion-module recipe (linear betas
0.00085-0.012, 1000 steps, epsilon, AdamW 1e-4, 16 frames at stride 4, 10% empty
captions) with our memory and speed settings on top (bf16, gradient checkpointing,
cached latents and text embeddings).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


class RunConfigError(ValueError):
    """RUN.yaml is invalid; the message lists every problem."""


@dataclass
class DataConfig:
    size: int = 256                   # short side resize, then centre crop to size x size
    frames: int = 16                  # frames per sample (<= the module's pe length)
    stride: int = 4                   # source frames between samples; shrinks for short clips
    flip: bool = True                 # random horizontal flip, same for every frame
    caption_dropout: float = 0.1      # share of samples trained with the empty caption
    tag_shuffle: bool = False         # caption = shuffled tags (manifest.jsonl only)
    buckets: bool = False             # aspect-ratio buckets at size*size pixels
    num_workers: int = 0
    decode_timeout_s: float = 120.0


@dataclass
class NoiseConfig:
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: Literal["linear", "scaled_linear"] = "linear"
    prediction_type: Literal["epsilon", "v_prediction"] = "epsilon"


@dataclass
class TrainConfig:
    max_steps: int = 1000             # optimizer steps
    batch_size: int = 1
    gradient_accumulation: int = 1
    learning_rate: float = 1e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    lr_scheduler: str = "constant"    # any diffusers get_scheduler name
    lr_warmup_steps: int = 0
    max_grad_norm: float = 1.0
    mixed_precision: Literal["no", "fp16", "bf16"] = "bf16"
    # Frozen UNet weights in the mixed-precision dtype (the official loop keeps fp32).
    half_frozen_weights: bool = True
    gradient_checkpointing: bool = True
    cache: bool = True                # cache VAE latents and text embeddings on disk
    cache_windows: int = 4            # frame windows cached per clip (random one per step)
    ema: bool = False
    ema_decay: float = 0.9999
    seed: int = 42


@dataclass
class CheckpointConfig:
    every_steps: int = 500
    limit: int = 3                    # accelerate states kept (oldest removed)


@dataclass
class ValidationConfig:
    prompts: list = field(default_factory=list)
    every_steps: int = 0              # 0: only after the last step
    num_inference_steps: int = 25
    guidance_scale: float = 8.0
    seed: int = 42
    fps: int = 8


@dataclass
class RunConfig:
    dataset: str = ""
    output_dir: str = ""
    # SD 1.5 base: a diffusers folder, or a single .safetensors/.ckpt
    pretrained_model: str = ""
    # original AnimateDiff .ckpt/.safetensors, a diffusers adapter folder, or null (fresh)
    motion_module: str | None = None
    # fresh modules only: v3 (no mid block) or v2 (mid block); both pe length 32
    fresh_variant: Literal["v2", "v3"] = "v3"
    cache_dir: str | None = None      # default <output_dir>/cache
    export_dtype: Literal["fp16", "fp32", "bf16"] = "fp16"
    data: DataConfig = field(default_factory=DataConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoints: CheckpointConfig = field(default_factory=CheckpointConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.output_dir) / "cache"


def load_run_config(path: Path) -> RunConfig:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RunConfigError(f"{path}: cannot read the run config: {exc}") from None
    return run_config_from_dict(data, str(path))


def run_config_from_dict(data: dict, source: str = "run config") -> RunConfig:
    problems: list[str] = []
    cfg = _build(RunConfig, data, "", problems)
    for name in ("dataset", "output_dir", "pretrained_model"):
        if not getattr(cfg, name):
            problems.append(f"{name}: required")
    if cfg.data.size % 64:
        problems.append(f"data.size: {cfg.data.size} is not a multiple of 64")
    if not 0 <= cfg.data.caption_dropout <= 1:
        problems.append("data.caption_dropout: allowed 0-1")
    for name in ("frames", "stride", "size"):
        if getattr(cfg.data, name) < 1:
            problems.append(f"data.{name}: must be >= 1")
    for name in ("max_steps", "batch_size", "gradient_accumulation", "cache_windows"):
        if getattr(cfg.train, name) < 1:
            problems.append(f"train.{name}: must be >= 1")
    if problems:
        raise RunConfigError(f"{source}: {len(problems)} problem(s):\n"
                             + "\n".join(f"  - {p}" for p in problems))
    return cfg


def as_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _build(cls: type, data: Any, prefix: str, problems: list[str]) -> Any:
    if not isinstance(data, dict):
        problems.append(f"{prefix or '(top level)'}: expected a mapping, got {data!r}")
        return cls()
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        if key not in names:
            problems.append(f"{prefix}{key}: unknown key; allowed: {', '.join(sorted(names))}")
            continue
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, f"{prefix}{key}.", problems)
            continue
        problem = _check(value, hint)
        if problem:
            problems.append(f"{prefix}{key}: {value!r} {problem}")
        else:
            values[key] = float(value) if hint is float else value
    return cls(**values)


def _check(value: Any, hint: Any) -> str | None:
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    if typing.get_origin(hint) is Literal:
        return None if value in typing.get_args(hint) else f"is not one of {typing.get_args(hint)}"
    if hint is bool:
        return None if isinstance(value, bool) else "is not true/false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else \
            "is not an integer"
    if hint is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else \
            "is not a number"
    if hint is str:
        return None if isinstance(value, str) else "is not a string"
    if hint is list or typing.get_origin(hint) is list:
        return None if isinstance(value, list) else "is not a list"
    return None
