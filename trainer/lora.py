"""Motion LoRA: low-rank layers on the motion modules' attention over a fixed base module.

    params = add_motion_lora(unet, rank, alpha)       # before accelerate.prepare
    lora = lora_state(unet, alpha / rank)             # diffusers names, scale folded into B
    evolved_layout(lora)                              # ComfyUI-AnimateDiff-Evolved / original
    diffusers_layout(lora)                            # AnimateDiffPipeline.load_lora_weights
    merged_state(base_state, lora)                    # base + LoRA as one motion module

Only to_q/to_k/to_v/to_out.0 of the temporal transformer blocks (attn1, attn2 in diffusers
names; attention_blocks.0/1 in the original ones) get LoRA layers, trained with peft
through diffusers' `add_adapter`; every other tensor, the base motion module included,
stays frozen (in the mixed-precision dtype with train.half_frozen_weights, like the rest of
the UNet; the LoRA layers are fp32), so each night starts from the same base and nothing
drifts.

No loader applies alpha (AnimateDiff's and ADE's merge is `W += strength * up @ down`;
diffusers reads neither an alpha key nor, without metadata, any rank scale), so both
files carry alpha/rank folded into `up` (lora_B): they load as trained everywhere.
Key scheme: shared/reference/animatediff_training_facts.md, 1.8, 2.3 and 3.1.10.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

# peft matches a str target with re.fullmatch on each module's name
TARGET_MODULES = (r".*\.motion_modules\.\d+\.transformer_blocks\.\d+\.attn[12]"
                  r"\.(to_q|to_k|to_v|to_out\.0)")
EVOLVED_FILE = "motion_lora.safetensors"
DIFFUSERS_DIR = "motion_lora_diffusers"
DIFFUSERS_FILE = "pytorch_lora_weights.safetensors"  # the name load_lora_weights looks for
DIFFUSERS_KEY = re.compile(
    r"^(?P<block>(down_blocks|up_blocks)\.\d+|mid_block)\.motion_modules\.(?P<m>\d+)"
    r"\.transformer_blocks\.(?P<t>\d+)\.attn(?P<a>[12])\.(?P<proj>to_q|to_k|to_v|to_out\.0)"
    r"\.lora_(?P<ab>[AB])\.weight$")
EVOLVED_KEY = re.compile(
    r"^(?P<block>(down_blocks|up_blocks)\.\d+|mid_block)\.motion_modules\.(?P<m>\d+)"
    r"\.temporal_transformer\.transformer_blocks\.(?P<t>\d+)\.attention_blocks\.(?P<a>\d+)"
    r"\.processor\.(?P<proj>to_q|to_k|to_v|to_out)_lora\.(?P<ud>down|up)\.weight$")


def add_motion_lora(unet, rank: int, alpha: float) -> list:
    """Freeze the whole UNet and add LoRA layers (fp32) on the motion attention; returns
    the trainable parameters. lora_B starts at zero: the UNet's output is unchanged."""
    import torch

    try:
        from peft import LoraConfig
    except ImportError:
        from trainer.config import RunConfigError

        raise RunConfigError("train.method: lora needs peft (pip install peft, or the "
                             "package's `train` extra)") from None
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=True,
                                target_modules=TARGET_MODULES))
    params = [p for p in unet.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.to(torch.float32)
    return params


def lora_state(unet, scale: float) -> dict:
    """{diffusers module name.lora_A|lora_B.weight: fp32 tensor}, `scale` folded into B."""
    import torch
    from peft.utils import get_peft_model_state_dict

    state = {}
    for key, value in get_peft_model_state_dict(unet).items():
        value = value.detach().to("cpu", torch.float32)
        state[key] = (value * scale if ".lora_B." in key else value).contiguous()
    return state


def evolved_key(key: str) -> str:
    """diffusers LoRA key -> original MotionLoRA key (`...processor.to_q_lora.down.weight`)."""
    m = DIFFUSERS_KEY.match(key)
    if m is None:
        raise ValueError(f"{key}: not a motion-attention LoRA key")
    proj = "to_out" if m["proj"] == "to_out.0" else m["proj"]
    return (f"{m['block']}.motion_modules.{m['m']}.temporal_transformer.transformer_blocks."
            f"{m['t']}.attention_blocks.{int(m['a']) - 1}.processor.{proj}_lora."
            f"{'down' if m['ab'] == 'A' else 'up'}.weight")


def diffusers_key(key: str) -> str:
    """Original MotionLoRA key -> diffusers LoRA key (the inverse of evolved_key)."""
    m = EVOLVED_KEY.match(key)
    if m is None:
        raise ValueError(f"{key}: not an original MotionLoRA key")
    proj = "to_out.0" if m["proj"] == "to_out" else m["proj"]
    return (f"{m['block']}.motion_modules.{m['m']}.transformer_blocks.{m['t']}."
            f"attn{int(m['a']) + 1}.{proj}.lora_{'A' if m['ud'] == 'down' else 'B'}.weight")


def ade_model_key(key: str) -> str:
    """The motion-module key ComfyUI-AnimateDiff-Evolved patches for a LoRA `down` key
    (load_motion_lora_as_patches: drop processor., _lora, down., up.; to_out. -> to_out.0.)."""
    bare = key.replace("processor.", "").replace("_lora", "").replace("down.", "")
    return bare.replace("up.", "").replace("to_out.", "to_out.0.")


def evolved_layout(lora: dict) -> dict:
    return {evolved_key(k): v for k, v in lora.items()}


def diffusers_layout(lora: dict) -> dict:
    return {f"unet.{k}": v for k, v in lora.items()}


def deltas(lora: dict) -> dict:
    """{diffusers module weight name: up @ down} (fp32)."""
    out = {}
    for key, down in lora.items():
        if ".lora_A." in key:
            up = lora[key.replace(".lora_A.", ".lora_B.")]
            out[key.replace(".lora_A.weight", ".weight")] = up.float() @ down.float()
    return out


def merged_state(base: dict, lora: dict) -> dict:
    """Base motion tensors with the LoRA merged in (W + up @ down), fp32 where merged."""
    merged = {k: v.detach().cpu().clone() for k, v in base.items()}
    for key, delta in deltas(lora).items():
        merged[key] = merged[key].float() + delta
    return merged


@contextmanager
def motion_weights(unet, state: dict):
    """`state` (diffusers motion-module names) in place of the UNet's motion tensors for a
    while, LoRA layers disabled; every tensor is put back bit for bit afterwards."""
    import torch

    live = dict(unet.named_parameters())
    live.update(dict(unet.named_buffers()))
    by_name = {k.replace(".base_layer", ""): v for k, v in live.items() if ".lora_" not in k}
    motion = {k for k in by_name if ".motion_modules." in k}
    unfit = sorted((set(state) ^ motion) | {k for k in set(state) & motion
                                            if by_name[k].shape != state[k].shape})
    if unfit:
        raise ValueError(f"{len(unfit)} tensor(s) do not fit this UNet's motion modules, "
                         f"e.g. {unfit[0]}")
    saved = {k: by_name[k].detach().clone() for k in state}
    lora = any(".lora_" in k for k in live)
    with torch.no_grad():
        for key, value in state.items():
            by_name[key].copy_(value)
    if lora:
        unet.disable_adapters()
    try:
        yield
    finally:
        with torch.no_grad():
            for key, value in saved.items():
                by_name[key].copy_(value)
        if lora:
            unet.enable_adapters()
