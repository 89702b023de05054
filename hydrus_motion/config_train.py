"""train: the nightly training run's settings, as the daemon's config holds them.

Part of hydrus_motion.config (which re-exports every name). What the trainer also has
(RUN.yaml, trainer/config.py) takes its default from there: one home for each training
default, since the trainer runs without hydrus_motion and keeps its own. The ranges here
are the daemon's own, narrower where a nightly run needs it. train.run_config maps these
keys into RUN.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hydrus_motion.typed_yaml import in_range as _range
from trainer.config import RunConfig

_RUN = RunConfig()  # the trainer's defaults


def _r(default, lo=None, hi=None):
    """A field whose value must lie in [lo, hi]."""
    return field(default=default, metadata=_range(lo, hi))


@dataclass(frozen=True)
class AppTrainConfig:
    # SD 1.5 base: a diffusers folder or one .safetensors/.ckpt; `train` needs it.
    pretrained_model: str | None = None
    # Start from: an original AnimateDiff .ckpt/.safetensors (v1/v2/v3), a diffusers
    # adapter folder, or null for a fresh module (zero-initialised output projections).
    motion_module: str | None = None
    # Fresh modules only: v3 (no mid block) or v2 (mid block).
    fresh_variant: Literal["v2", "v3"] = _RUN.fresh_variant
    # Frames are resized on their short side to this, then centre-cropped square.
    size: int = _r(_RUN.data.size, 64, 2048)
    frames: int = _r(_RUN.data.frames, 1, 32)
    stride: int = _r(_RUN.data.stride, 1, 64)
    max_steps: int = _r(_RUN.train.max_steps, 1, None)
    batch_size: int = _r(_RUN.train.batch_size, 1, 256)
    gradient_accumulation: int = _r(_RUN.train.gradient_accumulation, 1, 1024)
    learning_rate: float = _r(_RUN.train.learning_rate, 0, 1)
    mixed_precision: Literal["no", "fp16", "bf16"] = _RUN.train.mixed_precision
    gradient_checkpointing: bool = _RUN.train.gradient_checkpointing
    # Cache VAE latents and text embeddings on disk (keyed by clip hash + settings).
    cache: bool = _RUN.train.cache
    ema: bool = _RUN.train.ema
    seed: int = _RUN.train.seed
    checkpoint_every: int = _r(_RUN.checkpoints.every_steps, 1, None)
    checkpoint_limit: int = _r(_RUN.checkpoints.limit, 1, 1000)
    export_dtype: Literal["fp16", "fp32", "bf16"] = _RUN.export_dtype
    # Validation samples (mp4 + gif) rendered after the last step, one per prompt; the
    # nightly job puts them into Hydrus. Empty: none (nightly: nightly.sample_prompts).
    validation_prompts: tuple[str, ...] = ()
    # denoising steps per sample
    validation_steps: int = _r(_RUN.validation.num_inference_steps, 1, 1000)
    # A trainer RUN.yaml whose keys win over the ones written from this section
    # (buckets, tag shuffle, noise schedule, ...).
    run_overrides: str | None = None
    # auto: `accelerate launch` when accelerate is installed, else `python -m trainer`.
    launcher: Literal["auto", "accelerate", "python"] = "auto"
    timeout_h: float = _r(24.0, 0.01, None)
    # -- evaluation and samples (issue 15) --
    # Share of approved clips held out, never trained on (chosen by clip hash, stable as
    # the dataset grows); their loss decides promotion (nightly.gate).
    holdout: float = _r(_RUN.eval.holdout, 0, 0.9)
    eval_timesteps: int = _r(_RUN.eval.timesteps, 1, 1000)  # fixed, over the schedule
    # One prompt per line: `prompt | negative prompt | seed` (the last two optional);
    # wins over validation_prompts. Blank lines and lines starting with # are skipped.
    prompts_file: str | None = None
    before_after: bool = _RUN.validation.before_after  # samples of the module in use too
    report_to: Literal["tensorboard", "wandb", "none"] = _RUN.train.report_to
    # -- motion LoRA (issue 15) --
    # full: finetune the whole motion module, each night from the current one. lora: train
    # LoRA layers on its attention (to_q/to_k/to_v/to_out) over train.motion_module, the
    # fixed base (required), each night from that same base, so nothing drifts; the run
    # writes motion_lora.safetensors (ComfyUI-AnimateDiff-Evolved) and
    # motion_lora_diffusers/ besides the merged motion_module.safetensors.
    method: Literal["full", "lora"] = _RUN.train.method
    lora_rank: int = _r(_RUN.train.lora_rank, 1, 1024)
    lora_alpha: float = _r(_RUN.train.lora_alpha, 1e-6, None)  # scale alpha/rank
