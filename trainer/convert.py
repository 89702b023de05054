"""Motion-module state dicts: original AnimateDiff layout <-> diffusers MotionAdapter layout.

Original (what ComfyUI-AnimateDiff-Evolved, the A1111 extension and diffusers'
from_single_file load):
    down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0
        .attention_blocks.{0,1}.{to_q,to_k,to_v,to_out.0,pos_encoder.pe} .norms.{0,1} .ff_norm
diffusers:
    down_blocks.0.motion_modules.0.transformer_blocks.0.{attn1,attn2,norm1,norm2,norm3,pos_embed.pe}
The original stores the sinusoidal table twice per block (once per attention), diffusers
once; both hold the same values, so the two directions are exact inverses.
"""

from __future__ import annotations

import math
import re

# Applied in order, original -> diffusers; reversed for the other direction.
_RENAMES = [(".norms.0.", ".norm1."), (".norms.1.", ".norm2."), (".ff_norm.", ".norm3."),
            (".attention_blocks.0.", ".attn1."), (".attention_blocks.1.", ".attn2.")]
_MODULE = re.compile(r"^((?:down_blocks|up_blocks)\.\d+|mid_block)\.motion_modules\.(\d+)\.")
EXPORT_PE_LENGTH = 32  # v2/v3 style; length 24 without a mid block would be read as v1


def strip_container(state: dict) -> dict:
    """Unwrap {"state_dict": ...}, drop non-tensors and `module.`/`unet.` prefixes, keep only
    motion-module tensors (an official train.py checkpoint holds the whole UNet)."""
    import torch

    if isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    out = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in ("module.", "unet."):
            key = key[len(prefix):] if key.startswith(prefix) else key
        if ".motion_modules." in key:
            out[key] = value
    return out


def original_to_diffusers(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        if ".pos_encoder.pe" in key:
            if ".attention_blocks.0.pos_encoder.pe" in key:
                new = key.replace(".temporal_transformer.", ".").replace(
                    ".attention_blocks.0.pos_encoder.pe", ".pos_embed.pe")
                out[new] = value
            continue  # the second attention's copy is the same table
        new = key.replace(".temporal_transformer.", ".")
        for old, repl in _RENAMES:
            new = new.replace(old, repl)
        out[new] = value
    return out


def diffusers_to_original(state: dict, pe_length: int = EXPORT_PE_LENGTH) -> dict:
    """Original-layout dict; each pe table is written for both attentions, at `pe_length`
    rows (a shorter table is extended with the standard sinusoid, a longer one cut)."""
    out = {}
    for key, value in state.items():
        match = _MODULE.match(key)
        if not match:
            raise ValueError(f"not a motion-module key: {key}")
        new = key[: match.end()] + "temporal_transformer." + key[match.end():]
        if new.endswith(".pos_embed.pe"):
            table = fit_pe(value, pe_length)
            for attn in (0, 1):  # separate tensors: safetensors refuses shared storage
                out[new.replace(".pos_embed.pe", f".attention_blocks.{attn}.pos_encoder.pe")] \
                    = table if attn == 0 else table.clone()
            continue
        for old, repl in reversed(_RENAMES):
            new = new.replace(repl, old)
        out[new] = value
    return out


def sinusoidal_pe(length: int, channels: int, dtype=None, device=None):
    """The table AnimateDiff's PositionalEncoding registers: (1, length, channels)."""
    import torch

    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, channels, 2, dtype=torch.float32)
                         * (-math.log(10000.0) / channels))
    pe = torch.zeros(1, length, channels)
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term)
    return pe.to(dtype=dtype, device=device)


def fit_pe(table, length: int):
    import torch

    if table.shape[1] >= length:
        return table[:, :length]
    if table.device.type == "meta":
        return torch.empty(1, length, table.shape[2], dtype=table.dtype, device="meta")
    extra = sinusoidal_pe(length, table.shape[2], table.dtype, table.device)[:, table.shape[1]:]
    return torch.cat([table, extra], dim=1)


def adapter_config_from_original(state: dict) -> dict:
    """MotionAdapter kwargs that fit an original-layout motion-module dict."""
    channels, per_block, pe_length = {}, {}, None
    for key, value in state.items():
        match = _MODULE.match(key)
        if not match:
            continue
        block, index = match.group(1), int(match.group(2))
        if block.startswith("down_blocks."):
            per_block[block] = max(per_block.get(block, 0), index + 1)
            if key.endswith(".temporal_transformer.proj_in.bias"):
                channels[int(block.split(".")[1])] = value.shape[0]
        if key.endswith(".pos_encoder.pe") and pe_length is None:
            pe_length = value.shape[1]
    if not channels:
        raise ValueError("no down_blocks.N.motion_modules tensors: not a motion module")
    layers = set(per_block.values())
    if len(layers) != 1:
        raise ValueError(f"uneven motion layers per down block: {per_block}")
    return {"block_out_channels": tuple(channels[i] for i in sorted(channels)),
            "motion_layers_per_block": layers.pop(),
            "motion_max_seq_length": pe_length or EXPORT_PE_LENGTH,
            "use_motion_mid_block": any(k.startswith("mid_block.") for k in state)}
