"""Would each UI load this motion_module.safetensors (or motion LoRA), as what we meant?

Re-implements the detection rules of ComfyUI-AnimateDiff-Evolved, the A1111 extension
and diffusers' single-file loader as the reference describes them (shared/reference/
animatediff_training_facts.md, sections 2.4, 3.1, 3.2, 3.3). Returns problems, never
raises: the exporter refuses to publish a file with any.
"""

from __future__ import annotations

_DIFFUSERS_MARKER = ("down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0"
                     ".attention_blocks.0.pos_encoder.pe")
_PER_MODULE = [
    "norm.weight", "norm.bias", "proj_in.weight", "proj_in.bias", "proj_out.weight",
    "proj_out.bias",
    *[f"transformer_blocks.0.attention_blocks.{a}.{p}" for a in (0, 1) for p in (
        "to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight", "to_out.0.bias",
        "pos_encoder.pe")],
    *[f"transformer_blocks.0.norms.{n}.{p}" for n in (0, 1) for p in ("weight", "bias")],
    "transformer_blocks.0.ff.net.0.proj.weight", "transformer_blocks.0.ff.net.0.proj.bias",
    "transformer_blocks.0.ff.net.2.weight", "transformer_blocks.0.ff.net.2.bias",
    "transformer_blocks.0.ff_norm.weight", "transformer_blocks.0.ff_norm.bias",
]


def expected_shapes(channels=(320, 640, 1280, 1280), mid: bool = False, pe_length: int = 32,
                    layers: int = 2) -> dict[str, tuple]:
    """The full original key -> shape map of an SD 1.5 motion module (28 tensors each)."""
    modules = [(f"down_blocks.{b}.motion_modules.{m}", c)
               for b, c in enumerate(channels) for m in range(layers)]
    modules += [(f"up_blocks.{b}.motion_modules.{m}", c)
                for b, c in enumerate(reversed(channels)) for m in range(layers + 1)]
    if mid:
        modules.append(("mid_block.motion_modules.0", channels[-1]))
    shapes = {}
    for prefix, c in modules:
        for name in _PER_MODULE:
            if name.endswith("pe"):
                shape = (1, pe_length, c)
            elif name.endswith("ff.net.0.proj.weight"):
                shape = (8 * c, c)
            elif name.endswith("ff.net.0.proj.bias"):
                shape = (8 * c,)
            elif name.endswith("ff.net.2.weight"):
                shape = (c, 4 * c)
            elif name.endswith(".weight") and ("proj_" in name or ".to_" in name):
                shape = (c, c)
            else:
                shape = (c,)
            shapes[f"{prefix}.temporal_transformer.{name}"] = shape
    return shapes


def detect_versions(state: dict) -> dict[str, str | None]:
    """What each loader would call this file (None: it would not load it as AnimateDiff)."""
    pes = [v for k, v in state.items() if k.endswith("pos_encoder.pe")]
    pe_len = pes[0].shape[1] if pes else None
    has_mid = any(k.startswith("mid_block.") for k in state)
    # diffusers single_file_utils.infer_diffusers_model_type
    if _DIFFUSERS_MARKER not in state:
        diffusers = None
    elif "mid_block.motion_modules.0.temporal_transformer.norm.bias" in state:
        diffusers = "v2"
    else:
        diffusers = "v1" if state[_DIFFUSERS_MARKER].shape[1] == 24 else "v3"
    # ADE normalize_ad_state_dict: SD type from the down-block index, then version
    downs = [k.split(".")[1] for k in state if "down_blocks" in k]
    sd_type = max((int(d) if d.isdigit() else -1 for d in downs), default=-1)
    if sd_type != 3 or any(k.endswith("pos_encoder.positional_encoding") for k in state):
        ade = None
    elif not pes:
        ade = "animatelcm"
    else:
        ade = "v2" if has_mid else ("v3" if pe_len == 32 else "v1")
    # A1111 MotionModuleType.get_mm_type
    if has_mid:
        a1111 = "v2" if pes else "animatelcm"
    elif any("down_blocks.3" in k for k in state) and pes:
        a1111 = "v3" if 32 in tuple(pes[0].shape) else "v1"
    else:
        a1111 = None
    return {"diffusers": diffusers, "ade": ade, "a1111": a1111}


def check_exported(state: dict, variant: str) -> list[str]:
    """Problems that would stop a UI from loading `state` as motion module `variant`."""
    import torch

    problems = []
    bad_values = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad_values:
        problems.append(f"non-tensor entries (ADE loads weights_only): {bad_values[:3]}")
    no_temporal = [k for k in state if "temporal" not in k]
    if no_temporal:
        problems.append(f"ADE drops keys without 'temporal': {no_temporal[:3]}")
    for loader, found in detect_versions(state).items():
        if found != variant:
            problems.append(f"{loader} would load it as {found or 'not a motion module'}, "
                            f"not {variant}")
    pes = {tuple(v.shape)[1] for k, v in state.items() if k.endswith("pos_encoder.pe")}
    want_len = 24 if variant == "v1" else 32
    if pes != {want_len}:
        problems.append(f"pe lengths {sorted(pes)}; A1111 builds {variant} with {want_len}")
    channels = tuple(state[f"down_blocks.{b}.motion_modules.0.temporal_transformer.proj_in.bias"]
                     .shape[0] for b in range(4)
                     if f"down_blocks.{b}.motion_modules.0.temporal_transformer.proj_in.bias"
                     in state)
    if len(channels) == 4:  # A1111 loads strict=True: exact key set and shapes
        want = expected_shapes(channels, mid=variant == "v2", pe_length=want_len)
        missing = sorted(set(want) - set(state))
        extra = sorted(set(state) - set(want))
        wrong = [k for k in want if k in state and tuple(state[k].shape) != want[k]]
        for label, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong)):
            if keys:
                problems.append(f"A1111 strict load: {len(keys)} {label} key(s), e.g. {keys[0]}")
    else:
        problems.append("fewer than 4 down blocks with motion modules (SD 1.5 needs 4)")
    return problems


def check_evolved_lora(lora: dict, module: dict | None = None) -> list[str]:
    """Problems that would stop ComfyUI-AnimateDiff-Evolved (or AnimateDiff's own loader)
    applying `lora` (original MotionLoRA keys) to `module` (original motion-module keys,
    when given), as ADE's load_motion_lora_as_patches maps them."""
    import torch

    from trainer.lora import EVOLVED_KEY, ade_model_key

    if not lora:
        return ["no tensors: ADE refuses a LoRA without temporal keys"]
    problems = _tensor_problems(lora)
    odd = [k for k in lora if not EVOLVED_KEY.match(k)]
    if odd:
        problems.append(f"{len(odd)} key(s) outside the MotionLoRA scheme, e.g. {odd[0]}")
    half = [k for k, v in lora.items() if isinstance(v, torch.Tensor) and
            v.dtype != torch.float32]
    if half:
        problems.append(f"not fp32 (MotionLoRA files are): {half[0]} is {lora[half[0]].dtype}")
    downs = {k: k.replace(".down.", ".up.") for k in lora if k.endswith(".down.weight")}
    problems += _pair_problems(lora, downs, "down", "up")
    if module is None:
        return problems
    attention = {k for k in module if ".attention_blocks." in k and k.endswith(
        ("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight"))}
    patched = {}
    for down, up in downs.items():
        if up in lora and ("mid_block" not in down or any(k.startswith("mid_block.")
                                                          for k in module)):
            patched[ade_model_key(down)] = (lora[up].shape[0], lora[down].shape[1])
    problems += _fit_problems(patched, {k: tuple(module[k].shape) for k in attention}, "ADE")
    return problems


def check_diffusers_lora(lora: dict, module: dict | None = None) -> list[str]:
    """Problems that would stop `AnimateDiffPipeline.load_lora_weights` putting `lora`
    (unet.-prefixed peft keys) on the motion modules (diffusers names, when given)."""
    from trainer.lora import DIFFUSERS_KEY

    if not lora:
        return ["no tensors"]
    problems = _tensor_problems(lora)
    odd = [k for k in lora if not (k.startswith("unet.") and DIFFUSERS_KEY.match(k[5:]))]
    if odd:
        problems.append(f"{len(odd)} key(s) not unet.<motion attention>.lora_A|B.weight, "
                        f"e.g. {odd[0]}")
    downs = {k: k.replace(".lora_A.", ".lora_B.") for k in lora if ".lora_A." in k}
    problems += _pair_problems(lora, downs, "lora_A", "lora_B")
    if module is None:
        return problems
    attention = {k for k in module if ".motion_modules." in k and ".attn" in k and k.endswith(
        ("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight"))}
    patched = {down[5:].replace(".lora_A.weight", ".weight"):
               (lora[up].shape[0], lora[down].shape[1]) for down, up in downs.items()
               if up in lora}
    problems += _fit_problems(patched, {k: tuple(module[k].shape) for k in attention},
                              "diffusers")
    return problems


def _tensor_problems(state: dict) -> list[str]:
    import torch

    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    return [f"non-tensor entries: {bad[:3]}"] if bad else []


def _pair_problems(lora: dict, pairs: dict, down: str, up: str) -> list[str]:
    problems = []
    alone = [d for d, u in pairs.items() if u not in lora]
    alone += [k for k in lora if f".{up}." in k and k.replace(f".{up}.", f".{down}.")
              not in lora]
    if alone:
        problems.append(f"{len(alone)} {down}/{up} tensor(s) without their pair, "
                        f"e.g. {alone[0]}")
    ranks = {lora[d].shape[0] for d, u in pairs.items() if u in lora and lora[d].ndim == 2}
    wrong = [d for d, u in pairs.items() if u in lora and (
        lora[d].ndim != 2 or lora[u].ndim != 2 or lora[u].shape[1] != lora[d].shape[0])]
    if wrong:
        problems.append(f"{len(wrong)} pair(s) whose {up} @ {down} is not defined, "
                        f"e.g. {wrong[0]}")
    if len(ranks) > 1:
        problems.append(f"more than one rank: {sorted(ranks)}")
    return problems


def _fit_problems(patched: dict, attention: dict, loader: str) -> list[str]:
    """`patched` {module key: up @ down shape} against the module's attention weights."""
    problems = []
    unknown = sorted(set(patched) - set(attention))
    if unknown:
        problems.append(f"{loader} maps {len(unknown)} LoRA layer(s) onto no module weight, "
                        f"e.g. {unknown[0]}")
    wrong = [k for k in patched if k in attention and patched[k] != attention[k]]
    if wrong:
        problems.append(f"{len(wrong)} LoRA layer(s) of the wrong shape, e.g. {wrong[0]}: "
                        f"{patched[wrong[0]]} vs {attention[wrong[0]]}")
    bare = sorted(set(attention) - set(patched))
    if bare:
        problems.append(f"{len(bare)} motion attention weight(s) without a LoRA layer, "
                        f"e.g. {bare[0]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """`python -m trainer.selfcheck FILE [--module MM]`: what each UI would load FILE as
    (a motion module, or a motion LoRA in either format); exit 1 on problems."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m trainer.selfcheck")
    parser.add_argument("file", help="motion module or motion LoRA (.safetensors or .ckpt; a "
                                     "diffusers LoRA folder works too)")
    parser.add_argument("--variant", choices=("v1", "v2", "v3"),
                        help="the version it must load as (default: what diffusers detects)")
    parser.add_argument("--module", help="motion LoRAs: the motion module they go on (the "
                                         "base); its shapes are checked too")
    args = parser.parse_args(argv)
    from pathlib import Path

    from trainer.convert import original_to_diffusers, strip_container
    from trainer.lora import DIFFUSERS_FILE
    from trainer.models import read_state_file

    path = Path(args.file)
    raw = read_state_file(path / DIFFUSERS_FILE if path.is_dir() else path)
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else {}
    if any("_lora." in k or ".lora_A." in k for k in state):
        module = None
        if args.module:
            module = strip_container(read_state_file(Path(args.module)))
        evolved = not any(".lora_A." in k for k in state)
        if evolved:
            problems = check_evolved_lora(state, module)
        else:
            problems = check_diffusers_lora(
                state, original_to_diffusers(module) if module is not None else None)
        print(json.dumps({"file": args.file, "format": "motion LoRA, " + (
            "original / ComfyUI-AnimateDiff-Evolved" if evolved else "diffusers"),
            "layers": sum(1 for k in state if k.endswith((".down.weight", ".lora_A.weight"))),
            "checked_against": args.module, "problems": problems}, indent=2))
        return 1 if problems else 0
    versions = detect_versions(state)
    variant = args.variant or versions["diffusers"] or "v3"
    problems = check_exported(state, variant)
    print(json.dumps({"file": args.file, "detected": versions, "variant": variant,
                      "motion_tensors": len(strip_container(raw)), "problems": problems},
                     indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
