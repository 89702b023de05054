"""Load the frozen SD 1.5 parts and the motion adapter the way users have them.

Base: a diffusers folder (vae/, text_encoder/, tokenizer/, unet/) or one .safetensors/
.ckpt (diffusers' single-file loader; it needs the SD 1.5 config from the HF cache or
the network). Motion module: an original AnimateDiff file (v1/v2/v3, .ckpt or
.safetensors, also a full-UNet train.py checkpoint), a diffusers adapter folder, or
none (a fresh module whose output projections are zero, so it starts as an identity).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.convert import (
    adapter_config_from_original,
    original_to_diffusers,
    strip_container,
)

log = logging.getLogger("trainer")
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


class ModelLoadError(ValueError):
    """A model path cannot be used; the message names it and says why."""


@dataclass
class BaseModel:
    vae: Any
    text_encoder: Any
    tokenizer: Any
    unet: Any  # UNet2DConditionModel


def load_base(path: str) -> BaseModel:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    p = Path(path).expanduser()
    if p.is_dir():
        missing = [s for s in ("vae", "text_encoder", "tokenizer", "unet") if not (p / s).is_dir()]
        if missing:
            raise ModelLoadError(f"{p}: not a diffusers SD 1.5 folder (missing {missing})")
        return BaseModel(vae=AutoencoderKL.from_pretrained(p, subfolder="vae"),
                         text_encoder=CLIPTextModel.from_pretrained(p, subfolder="text_encoder"),
                         tokenizer=CLIPTokenizer.from_pretrained(p, subfolder="tokenizer"),
                         unet=UNet2DConditionModel.from_pretrained(p, subfolder="unet"))
    if p.is_file() and p.suffix.lower() in SINGLE_FILE_SUFFIXES:
        from diffusers import StableDiffusionPipeline

        try:
            pipe = StableDiffusionPipeline.from_single_file(str(p), safety_checker=None)
        except Exception as exc:  # diffusers raises many kinds; the user needs one message
            raise ModelLoadError(
                f"{p}: cannot load as an SD 1.5 single file ({type(exc).__name__}: {exc}); "
                "without network access the SD 1.5 config must be in the HF cache, or "
                "convert the file to a diffusers folder") from exc
        return BaseModel(pipe.vae, pipe.text_encoder, pipe.tokenizer, pipe.unet)
    raise ModelLoadError(f"{p}: not found, or not a diffusers folder / .safetensors / .ckpt")


def read_state_file(path: Path) -> dict:
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    try:  # weights_only: the same rule ComfyUI applies, and no code runs from a pickle
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"{path}: not a readable tensor checkpoint ({exc})") from exc


def load_adapter(spec: str | None, unet2d, fresh_variant: str = "v3"):
    """(MotionAdapter, where it came from)."""
    from diffusers import MotionAdapter

    groups = unet2d.config.norm_num_groups
    if spec is None:
        adapter = MotionAdapter(block_out_channels=tuple(unet2d.config.block_out_channels),
                                motion_layers_per_block=unet2d.config.layers_per_block,
                                motion_norm_num_groups=groups, motion_max_seq_length=32,
                                use_motion_mid_block=fresh_variant == "v2")
        zero_output_projections(adapter)
        return adapter, f"fresh ({fresh_variant}-style, zero-initialised proj_out)"
    p = Path(spec).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelLoadError(f"{p}: no config.json; not a diffusers MotionAdapter folder")
        return MotionAdapter.from_pretrained(p), f"diffusers adapter {p}"
    if not p.is_file():
        raise ModelLoadError(f"{p}: motion module not found")
    state = strip_container(read_state_file(p))
    if not state:
        raise ModelLoadError(f"{p}: holds no motion_modules tensors; not a motion module")
    try:
        config = adapter_config_from_original(state)
    except ValueError as exc:
        raise ModelLoadError(f"{p}: {exc}") from None
    adapter = MotionAdapter(**config, motion_norm_num_groups=groups)
    result = adapter.load_state_dict(original_to_diffusers(state), strict=False)
    # pe is recomputed when a file lacks it (current AnimateDiff main saves none)
    missing = [k for k in result.missing_keys if not k.endswith("pos_embed.pe")]
    if missing or result.unexpected_keys:
        raise ModelLoadError(f"{p}: does not fit a motion adapter built for it: "
                             f"{len(missing)} missing (e.g. {missing[:1]}), "
                             f"{len(result.unexpected_keys)} unexpected "
                             f"(e.g. {result.unexpected_keys[:1]})")
    version = "v2" if config["use_motion_mid_block"] else (
        "v1" if config["motion_max_seq_length"] == 24 else "v3")
    return adapter, f"original {version} file {p}"


def zero_output_projections(adapter) -> None:
    """AnimateDiff's zero_initialize: each module's proj_out is zero, so it adds nothing."""
    import torch

    with torch.no_grad():
        for name, module in adapter.named_modules():
            if name.endswith("proj_out") and isinstance(module, torch.nn.Linear):
                module.weight.zero_()
                module.bias.zero_()


def motion_unet(unet2d, adapter):
    """UNetMotionModel with only the motion modules trainable."""
    from diffusers import UNetMotionModel

    unet = UNetMotionModel.from_unet2d(unet2d, motion_adapter=adapter)
    unet.freeze_unet2d_params()
    return unet


def motion_modules(unet) -> list:
    mods = [m for b in unet.down_blocks for m in b.motion_modules]
    mods += [m for b in unet.up_blocks for m in b.motion_modules]
    if hasattr(unet.mid_block, "motion_modules"):
        mods += list(unet.mid_block.motion_modules)
    return mods


def checkpoint_motion_modules(unet) -> None:
    """Wrap each motion module in activation checkpointing.

    diffusers checkpoints the resnets and spatial transformers but never the motion
    modules, which are the only layers holding activations for trainable weights.
    """
    import torch
    from torch.utils.checkpoint import checkpoint

    for module in motion_modules(unet):
        inner = module.forward

        def forward(*args, _inner=inner, _module=module, **kwargs):
            if _module.training and torch.is_grad_enabled():
                return checkpoint(_inner, *args, use_reentrant=False, **kwargs)
            return _inner(*args, **kwargs)

        module.forward = forward


def motion_state_dict(unet) -> dict:
    """diffusers-layout motion-module tensors of a UNetMotionModel (adapter key names)."""
    return {k: v for k, v in unet.state_dict().items() if ".motion_modules." in k}


def adapter_variant(adapter_config: Any) -> str:
    return "v2" if adapter_config["use_motion_mid_block"] else "v3"
