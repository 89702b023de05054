"""Nightly training runs on disk: which checkpoint is current, which run to resume.

    <training_dir>/runs/<run id>/   one trainer --out each (run.json once it finished)
    <training_dir>/current          link to the promoted run: current/
                                    motion_module.safetensors is what a UI should load

A run becomes current only after the trainer wrote its run.json (its last file), so a
failed or killed run never replaces a good checkpoint, and only when the promotion gate
lets it (promotion.py); a run kept back stays beside it as a candidate. A run that was
killed after a resumable state is continued the next night instead of starting over.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hydrus_motion.files import atomic_write_text, point_link, read_json_object

RUNS, CURRENT = "runs", "current"
PUBLISHED = "published.json"  # written once the run's samples are in Hydrus


@dataclass(frozen=True)
class TrainingPlan:
    action: Literal["train", "resume", "skip"]
    reason: str
    run_dir: Path | None = None
    init_module: Path | None = None  # start from these weights (None: train.motion_module)

    @property
    def run_id(self) -> str:
        return self.run_dir.name if self.run_dir else ""


def read_run(folder: Path | None) -> dict[str, Any] | None:
    """run.json of a finished run, else None."""
    return read_json_object(folder / "run.json") if folder is not None else None


def current_run(root: Path) -> Path | None:
    link = root / CURRENT
    return link.resolve() if read_run(link) is not None else None


def plan_training(root: Path, dataset_id: str, when: str, now: float) -> TrainingPlan:
    """Resume a killed run, train a new one, or skip; and from which weights."""
    current = current_run(root)
    if when == "never":
        return TrainingPlan("skip", "nightly.train is never")
    unfinished = _unfinished(root, after=current)
    init = current / "motion_module.safetensors" if current else None
    if unfinished is not None:
        return TrainingPlan("resume", f"run {unfinished.name} was interrupted", unfinished,
                            init)
    trained_on = (read_run(current) or {}).get("dataset_id")
    if when == "changed" and trained_on == dataset_id:
        return TrainingPlan("skip", f"the dataset is unchanged since run {current.name}")
    newest = latest_finished(root)
    if when == "changed" and newest not in (None, current) and \
            (read_run(newest) or {}).get("dataset_id") == dataset_id:
        return TrainingPlan("skip", f"run {newest.name} trained on this dataset and was not "
                                    f"promoted (hydrus-motion promote {newest.name})")
    run_dir = root / RUNS / time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    reason = "first run" if current is None else (
        "the dataset changed" if when == "changed" else "nightly.train is always")
    return TrainingPlan("train", reason, run_dir, init)


def latest_finished(root: Path) -> Path | None:
    """The newest run that wrote its run.json, current or not."""
    runs = root / RUNS
    if not runs.is_dir():
        return None
    for run in sorted(runs.iterdir(), key=lambda p: p.name, reverse=True):
        if read_run(run) is not None:
            return run.resolve()
    return None


def make_current(root: Path, run_dir: Path, keep: int) -> Path:
    """Point `current` at a finished run; delete all but the `keep` newest other finished
    runs, and runs older than it that never finished (their reason is in the history)."""
    shown = point_link(root / CURRENT, run_dir)
    others = [p for p in (root / RUNS).iterdir() if p.is_dir() and p.resolve() != shown]
    finished = sorted((p for p in others if read_run(p) is not None),
                      key=lambda p: p.name, reverse=True)
    failed = [p for p in others if read_run(p) is None and p.name < run_dir.name]
    for old in finished[keep:] + failed:
        shutil.rmtree(old, ignore_errors=True)
    return shown


def samples_published(run_dir: Path) -> bool:
    return (run_dir / PUBLISHED).is_file()


def mark_published(run_dir: Path, hashes: list[str]) -> None:
    atomic_write_text(run_dir / PUBLISHED, json.dumps({"hashes": hashes}) + "\n")


def _unfinished(root: Path, after: Path | None) -> Path | None:
    """The newest run newer than the current one that has a resumable state."""
    runs = root / RUNS
    if not runs.is_dir():
        return None
    for run in sorted(runs.iterdir(), key=lambda p: p.name, reverse=True):
        if after is not None and run.name <= after.name:
            return None
        if read_run(run) is None and any((run / "checkpoints").glob("checkpoint-*")):
            return run
    return None
