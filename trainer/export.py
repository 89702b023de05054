"""Publish a run's outputs: motion_module.safetensors, motion_adapter/, run.json (and a
LoRA run's motion_lora.safetensors + motion_lora_diffusers/).

Every file is written under a temporary name and renamed into place, so a killed run
leaves the previous complete output or none, never half a file. The original-layout
file is checked against the UIs' loader rules (selfcheck) before it is published.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from trainer.convert import EXPORT_PE_LENGTH, diffusers_to_original, original_to_diffusers
from trainer.selfcheck import check_exported

DTYPES = {"fp16": "float16", "fp32": "float32", "bf16": "bfloat16"}


class ExportError(RuntimeError):
    """The exported file would not load in a UI; the message lists why."""


def original_layout(diffusers_state: dict, dtype: str = "fp16") -> dict:
    import torch

    want = getattr(torch, DTYPES[dtype])
    return {k: v.detach().to("cpu", want).contiguous()
            for k, v in diffusers_to_original(diffusers_state, EXPORT_PE_LENGTH).items()}


def verify_round_trip(original: dict) -> list[str]:
    """original -> diffusers -> original must give back every tensor bit for bit."""
    import torch

    back = diffusers_to_original(original_to_diffusers(original), EXPORT_PE_LENGTH)
    if set(back) != set(original):
        return [f"round trip changed the key set ({len(set(back) ^ set(original))} differ)"]
    return [f"round trip changed {k}" for k in original
            if not torch.equal(back[k], original[k])][:5]


def publish_motion_module(diffusers_state: dict, variant: str, out_dir: Path,
                          dtype: str = "fp16", metadata: dict | None = None) -> Path:
    from safetensors.torch import save_file

    state = original_layout(diffusers_state, dtype)
    problems = check_exported(state, variant) + verify_round_trip(state)
    if problems:
        raise ExportError("refusing to publish motion_module.safetensors:\n"
                          + "\n".join(f"  - {p}" for p in problems))
    target = Path(out_dir) / "motion_module.safetensors"
    with _temp_beside(target) as tmp:
        save_file(state, str(tmp), metadata={k: str(v) for k, v in (metadata or {}).items()})
        _publish(tmp, target)
    return target


def publish_adapter(diffusers_state: dict, adapter_config: dict, out_dir: Path) -> Path:
    """diffusers MotionAdapter folder (save_pretrained), swapped in whole."""
    from diffusers import MotionAdapter

    keep = {k: v for k, v in adapter_config.items() if not k.startswith("_")}
    adapter = MotionAdapter(**keep)
    adapter.load_state_dict({k: v.detach().cpu() for k, v in diffusers_state.items()})
    target = Path(out_dir) / "motion_adapter"
    staging = Path(tempfile.mkdtemp(prefix=".motion_adapter.", dir=out_dir))
    try:
        adapter.save_pretrained(staging, safe_serialization=True)
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; UIs may run as others
        _swap_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def publish_lora(lora: dict, module_state: dict, out_dir: Path,
                 metadata: dict | None = None) -> tuple[Path, Path]:
    """A LoRA run's two files: motion_lora.safetensors (original MotionLoRA keys, what
    ComfyUI-AnimateDiff-Evolved loads) and motion_lora_diffusers/ (what diffusers'
    load_lora_weights loads), both fp32 with alpha/rank folded into `up`; each checked
    against the motion module (`module_state`, diffusers names) first."""
    from safetensors.torch import save_file

    from trainer.lora import (
        DIFFUSERS_DIR,
        DIFFUSERS_FILE,
        EVOLVED_FILE,
        diffusers_layout,
        evolved_layout,
    )
    from trainer.selfcheck import check_diffusers_lora, check_evolved_lora

    evolved, diffusers = evolved_layout(lora), diffusers_layout(lora)
    problems = check_evolved_lora(evolved, original_layout(module_state, "fp32")) + \
        check_diffusers_lora(diffusers, module_state)
    if problems:
        raise ExportError("refusing to publish the motion LoRA:\n"
                          + "\n".join(f"  - {p}" for p in problems))
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    target = Path(out_dir) / EVOLVED_FILE
    with _temp_beside(target) as tmp:
        save_file(evolved, str(tmp), metadata=meta)
        _publish(tmp, target)
    folder = Path(out_dir) / DIFFUSERS_DIR
    staging = Path(tempfile.mkdtemp(prefix=f".{DIFFUSERS_DIR}.", dir=out_dir))
    try:
        save_file(diffusers, str(staging / DIFFUSERS_FILE), metadata=meta)
        os.chmod(staging / DIFFUSERS_FILE, 0o666 & ~_umask())
        staging.chmod(0o777 & ~_umask())
        _swap_dir(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, folder


def write_json(path: Path, data: dict) -> Path:
    with _temp_beside(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        _publish(tmp, path)
    return path


class _temp_beside:
    """A temp path next to `target` (same filesystem, so os.replace is atomic); removed on
    error."""

    def __init__(self, target: Path):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        self.path = Path(name)

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)


def _publish(tmp: Path, target: Path) -> None:
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; UIs may run as others
    os.replace(tmp, target)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _swap_dir(new: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)
