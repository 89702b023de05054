"""RUN.yaml: one training run's settings, checked in full before anything loads.

Defaults reproduce the official AnimateDiff motion-module recipe (linear betas
0.00085-0.012, 1000 steps, epsilon, AdamW 1e-4, 16 frames at stride 4, 10% empty
captions) with our memory and speed settings on top (bf16, gradient checkpointing,
cached latents and text embeddings).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from trainer.typed_yaml import build, in_range


class RunConfigError(ValueError):
    """RUN.yaml is invalid; the message lists every problem."""


def _r(default, lo=None, hi=None, *, open_lo: bool = False):
    """A field whose value must lie in [lo, hi] ((lo, hi] with open_lo)."""
    return field(default=default, metadata=in_range(lo, hi, above=open_lo))


SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
              "constant_with_warmup", "piecewise_constant")


@dataclass
class DataConfig:
    size: int = _r(256, 64, 4096)     # short side resize, then centre crop to size x size
    frames: int = _r(16, 1, 64)       # frames per sample (<= the module's pe length)
    stride: int = _r(4, 1, 256)       # source frames between samples; shrinks for short clips
    flip: bool = True                 # random horizontal flip, same for every frame
    caption_dropout: float = _r(0.1, 0, 1)  # share of samples trained with the empty caption
    tag_shuffle: bool = False         # caption = shuffled tags (manifest.jsonl only)
    buckets: bool = False             # aspect-ratio buckets at size*size pixels
    num_workers: int = _r(0, 0, 256)
    decode_timeout_s: float = _r(120.0, 0, None, open_lo=True)


@dataclass
class NoiseConfig:
    num_train_timesteps: int = _r(1000, 1, 100_000)
    beta_start: float = _r(0.00085, 0, 1, open_lo=True)
    beta_end: float = _r(0.012, 0, 1, open_lo=True)
    beta_schedule: Literal["linear", "scaled_linear"] = "linear"
    prediction_type: Literal["epsilon", "v_prediction"] = "epsilon"


@dataclass
class TrainConfig:
    max_steps: int = _r(1000, 1)      # optimizer steps
    batch_size: int = _r(1, 1, 4096)
    gradient_accumulation: int = _r(1, 1, 4096)
    learning_rate: float = _r(1e-4, 0, 10, open_lo=True)
    adam_beta1: float = _r(0.9, 0, 1)
    adam_beta2: float = _r(0.999, 0, 1)
    weight_decay: float = _r(1e-2, 0, 1)
    adam_epsilon: float = _r(1e-8, 0, 1, open_lo=True)
    lr_scheduler: Literal[SCHEDULERS] = "constant"  # a diffusers get_scheduler name
    lr_warmup_steps: int = _r(0, 0)
    max_grad_norm: float = _r(1.0, 0, None, open_lo=True)
    mixed_precision: Literal["no", "fp16", "bf16"] = "bf16"
    # Frozen UNet weights in the mixed-precision dtype (the official loop keeps fp32).
    half_frozen_weights: bool = True
    gradient_checkpointing: bool = True
    cache: bool = True                # cache VAE latents and text embeddings on disk
    cache_windows: int = _r(4, 1, 1024)  # frame windows cached per clip (random one per step)
    ema: bool = False
    ema_decay: float = _r(0.9999, 0, 1)
    seed: int = _r(42, 0)
    report_to: Literal["tensorboard", "wandb", "none"] = "tensorboard"
    # full: finetune the motion modules; lora: LoRA layers on their attention (to_q, to_k,
    # to_v, to_out) over the fixed motion_module, which stays unchanged (trainer/lora.py)
    method: Literal["full", "lora"] = "full"
    lora_rank: int = _r(32, 1, 1024)
    lora_alpha: float = _r(32.0, 0, None, open_lo=True)  # scale alpha/rank, folded into up


@dataclass
class CheckpointConfig:
    every_steps: int = _r(500, 1)
    limit: int = _r(3, 1, 1000)       # accelerate states kept (oldest removed)


@dataclass
class EvalConfig:
    # share of clips held out (never trained on): a clip is held out iff
    # sha256(videoid) mod 1000 < holdout * 1000, so the set is stable as clips are added
    holdout: float = _r(0.1, 0, 1)
    max_clips: int = _r(64, 1, 100_000)   # held-out clips measured (lowest hashes first)
    timesteps: int = _r(8, 1, 1000)       # fixed timesteps spread over the schedule
    bands: int = _r(4, 1, 100)            # timestep bands reported besides the overall loss
    seed: int = _r(0, 0)                  # noise per clip from (seed, videoid), not the run's
    # a motion module measured on the same set before step 1 besides the starting weights
    # (the nightly job: the current module, when a LoRA run starts from the fixed base)
    reference: str | None = None


@dataclass
class ValidationConfig:
    # a prompt, or {prompt, negative_prompt, seed}; one mp4 + gif each
    prompts: list = field(default_factory=list)
    every_steps: int = _r(0, 0)       # 0: only after the last step
    num_inference_steps: int = _r(25, 1, 1000)
    guidance_scale: float = _r(8.0, 0, 100)
    seed: int = _r(42, 0)
    fps: int = _r(8, 1, 120)
    # also render each prompt before step 1 (with eval.reference in place when it fits,
    # else the starting weights), and write both side by side
    before_after: bool = True


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
    eval: EvalConfig = field(default_factory=EvalConfig)
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
    cfg = build(RunConfig, data, "", problems)
    for name in ("dataset", "output_dir", "pretrained_model"):
        if not getattr(cfg, name):
            problems.append(f"{name}: required")
    if cfg.data.size % 64:
        problems.append(f"data.size: {cfg.data.size} is not a multiple of 64")
    if cfg.noise.beta_end <= cfg.noise.beta_start:
        problems.append(f"noise.beta_end: {cfg.noise.beta_end} must be above beta_start "
                        f"({cfg.noise.beta_start})")
    if cfg.train.method == "lora" and not cfg.motion_module:
        problems.append("train.method: lora needs motion_module, the fixed base module the "
                        "LoRA is trained over (a fresh module's zero proj_out would pass it "
                        "no gradient)")
    if cfg.eval.bands > cfg.eval.timesteps:
        problems.append(f"eval.bands: {cfg.eval.bands} is more than eval.timesteps "
                        f"({cfg.eval.timesteps}); each band needs a timestep")
    for index, item in enumerate(cfg.validation.prompts):
        problem = prompt_problem(item)
        if problem:
            problems.append(f"validation.prompts[{index}]: {problem}")
    if problems:
        raise RunConfigError(f"{source}: {len(problems)} problem(s):\n"
                             + "\n".join(f"  - {p}" for p in problems))
    return cfg


def as_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def prompt_problem(item: Any) -> str | None:
    """A validation prompt is a non-empty string or {prompt, negative_prompt, seed}."""
    if isinstance(item, str):
        return None if item.strip() else "is empty"
    if not isinstance(item, dict):
        return f"{item!r} is neither a prompt nor a mapping"
    unknown = set(item) - {"prompt", "negative_prompt", "seed"}
    if unknown:
        return f"unknown key(s) {sorted(unknown)}; allowed: prompt, negative_prompt, seed"
    if not isinstance(item.get("prompt"), str) or not item["prompt"].strip():
        return "prompt: required, a non-empty string"
    if not isinstance(item.get("negative_prompt", ""), (str, type(None))):
        return "negative_prompt: is not a string"
    seed = item.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        return f"seed: {seed!r} is not a non-negative integer"
    return None
