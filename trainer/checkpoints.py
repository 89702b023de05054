"""Resumable accelerate states: <out>/checkpoints/checkpoint-<step>/, oldest rotated out.

A state is saved under a temporary name and renamed when complete, so `--resume latest`
never picks a half-written one after a kill. The per-step loss log lives beside them so
a resumed run still reports the loss of the steps before the kill.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger("trainer")
_NAME = re.compile(r"^checkpoint-(\d+)$")


def folder(out: Path) -> Path:
    return Path(out) / "checkpoints"


def existing(out: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = folder(out)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name)]
    return sorted(found, key=step_of)


def step_of(path: Path) -> int:
    return int(_NAME.match(Path(path).name).group(1))


def find(out: Path, resume: str) -> Path | None:
    """`latest` (None when there is none yet: a fresh start) or a checkpoint folder."""
    if resume == "latest":
        found = existing(out)
        return found[-1] if found else None
    path = Path(resume)
    if not path.is_dir() or not _NAME.match(path.name):
        raise FileNotFoundError(f"{path}: not a checkpoint-<step> folder to resume from")
    return path


def save(accelerator, out: Path, step: int, limit: int) -> Path:
    target = folder(out) / f"checkpoint-{step}"
    if accelerator.is_main_process:
        for old in existing(out)[: max(0, len(existing(out)) - limit + 1)]:
            shutil.rmtree(old, ignore_errors=True)
    tmp = folder(out) / f".tmp-checkpoint-{step}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        log.info("saved state %s", target)
    return target


def record_loss(out: Path, step: int, loss: float, main: bool) -> None:
    if main:
        with (Path(out) / "loss.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": step, "loss": loss}) + "\n")


def final_loss(out: Path, last_step: int, window: int = 10) -> float | None:
    """Mean loss of the last `window` steps up to `last_step` (the latest try of each step)."""
    path = Path(out) / "loss.jsonl"
    if not path.is_file():
        return None
    by_step = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            by_step[int(rec["step"])] = float(rec["loss"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill
    steps = sorted(s for s in by_step if s <= last_step)[-window:]
    return sum(by_step[s] for s in steps) / len(steps) if steps else None
