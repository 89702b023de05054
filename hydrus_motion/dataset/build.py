"""Export approved clips into the dataset folder, never leaving a half-built one in view.

Each export is built in full in a hidden `.<name>.builds/` folder beside `out` and then
switched in: `out` is a symbolic link that is replaced in one atomic rename, so a trainer
sees the old dataset or the new one, never a mixture. Clips already in the current build
are hard-linked (no download, no extra space); only newly approved clips are downloaded,
each checked against its hash. Any failure (Hydrus gone, a damaged file) discards the
new build and leaves the current one exactly as it was.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydrus_motion.config import Config
from hydrus_motion.dataset.manifest import (
    FORMAT_VERSION,
    VIDEOS,
    DatasetEntry,
    Skipped,
    export_dataset_id,
    manifest_jsonl,
    metadata_csv,
    plan_entries,
    read_dataset_json,
)
from hydrus_motion.dataset.report import write_report
from hydrus_motion.dataset.shards import write_shards
from hydrus_motion.errors import HydrusMotionError
from hydrus_motion.files import point_link, usual_permissions
from hydrus_motion.hydrus.gateway import HydrusGateway
from hydrus_motion.hydrus.review import approved_clips
from hydrus_motion.progress import Progress, no_progress

log = logging.getLogger(__name__)
STALE_STAGING_S = 6 * 3600  # a staging folder this old belongs to a killed export


class DatasetFolderError(HydrusMotionError):
    """The output folder cannot hold a dataset (it is someone else's folder)."""


@dataclass(frozen=True)
class ExportResult:
    out: Path
    build: Path  # the folder `out` now shows
    dataset_id: str
    changed: bool  # False: the approved clips and captions are what the current build has
    entries: list[DatasetEntry]
    skipped: list[Skipped]
    new: int  # downloaded from Hydrus
    kept: int  # carried over from the previous build
    removed: int  # in the previous build, no longer approved (or deleted)


def export_dataset(gateway: HydrusGateway, cfg: Config, out: Path,
                   progress: Progress = no_progress) -> ExportResult:
    """Build the dataset at `out`; `progress(clips in the build, clips in all)`."""
    out = out.absolute()
    _check_out(out)
    entries, skipped = plan_entries(approved_clips(gateway, cfg), cfg)
    ident = export_dataset_id(entries)
    current = _current_build(out)
    current_ids = _video_ids(current)
    wanted = {e.videoid for e in entries}
    removed = len(current_ids - wanted)
    info = read_dataset_json(current) if current else None
    if info and info.get("dataset_id") == ident and wanted <= current_ids \
            and _has_captions(current, entries):
        log.info("export: %d clips, unchanged since %s", len(entries), info.get("built_at"))
        return ExportResult(out, current, ident, False, entries, skipped, 0, len(entries), 0)

    builds = _builds_dir(out)
    builds.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(builds)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=builds))
    usual_permissions(staging)  # it becomes the dataset folder a trainer reads
    try:
        new = _fill_videos(gateway, entries, staging / VIDEOS, current, progress)
        for entry in entries:  # the training caption beside each clip (other trainers)
            (staging / entry.caption_file).write_text(entry.caption, encoding="utf-8")
        (staging / "metadata.csv").write_text(metadata_csv(entries), encoding="utf-8")
        (staging / "manifest.jsonl").write_text(manifest_jsonl(entries), encoding="utf-8")
        if cfg.dataset.shards:
            write_shards(staging, entries, cfg.dataset.shard_max_clips)
        if cfg.dataset.report:
            write_report(staging, entries, skipped, cfg)
        now = time.time()  # milliseconds: builds a second apart must still sort in order
        built_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + \
            f".{int(now * 1000) % 1000:03d}Z"
        summary = {"format_version": FORMAT_VERSION, "dataset_id": ident, "built_at": built_at,
                   "counts": {"clips": len(entries), "new": new, "kept": len(entries) - new,
                              "removed": removed, "skipped": len(skipped),
                              "frames": sum(e.frames or 0 for e in entries)},
                   "caption_template": cfg.dataset.caption_template,
                   "tag_order": list(cfg.dataset.tag_order)}
        (staging / "dataset.json").write_text(json.dumps(summary, indent=2) + "\n",
                                              encoding="utf-8")
        build = builds / f"{built_at.replace(':', '').replace('-', '')}-{ident[:12]}"
        os.rename(staging, build)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shown = _switch(out, build)
    _prune(builds, keep=cfg.dataset.keep_builds, current=shown)
    log.info("export: %d clips (%d new, %d kept, %d removed, %d skipped) -> %s",
             len(entries), new, len(entries) - new, removed, len(skipped), out)
    return ExportResult(out, shown, ident, True, entries, skipped, new, len(entries) - new,
                        removed)


def _fill_videos(gateway: HydrusGateway, entries: Sequence[DatasetEntry], videos: Path,
                 current: Path | None, progress: Progress) -> int:
    """Link what the current build has, download the rest; returns how many downloaded."""
    videos.mkdir()
    downloaded = 0
    for done, entry in enumerate(entries, start=1):
        dest = videos / f"{entry.videoid}.mp4"
        old = current / entry.file if current else None
        if old is not None and old.is_file():
            _link_or_copy(old, dest)
        else:
            size = gateway.download(entry.videoid, dest)
            downloaded += 1
            log.debug("export: downloaded %s (%d bytes)", entry.videoid, size)
        progress(done, len(entries))
    return downloaded


def _has_captions(build: Path, entries: Sequence[DatasetEntry]) -> bool:
    """A build from before caption files were written gets them at the next export."""
    return all((build / e.caption_file).is_file() for e in entries)


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another filesystem, or links not supported there
        shutil.copy2(src, dest)


def _builds_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.builds"


def _current_build(out: Path) -> Path | None:
    """The folder `out` shows now, if it is a dataset we built."""
    if out.exists() and read_dataset_json(out) is not None:
        return out.resolve()
    return None


def _video_ids(build: Path | None) -> set[str]:
    if build is None or not (build / VIDEOS).is_dir():
        return set()
    return {p.stem for p in (build / VIDEOS).glob("*.mp4")}


def _switch(out: Path, build: Path) -> Path:
    """Make `out` show `build`; returns where the dataset now lives."""
    _check_out(out)
    if out.is_dir() and not out.is_symlink() and read_dataset_json(out) is None:
        out.rmdir()  # empty (checked above): nothing to keep
    return point_link(out, build)


def _check_out(out: Path) -> None:
    """Refuse, before any work, a folder that holds something other than our dataset."""
    if out.is_dir() and not out.is_symlink() and read_dataset_json(out) is None \
            and any(out.iterdir()):
        raise DatasetFolderError(
            f"{out}: is a folder with other files in it, not a dataset hydrus-motion "
            "built; nothing was changed there",
            hint="give export an empty or new --out folder (or set paths.dataset_dir)")
    if out.exists() and not out.is_dir():
        raise DatasetFolderError(f"{out}: is a file, not a folder",
                                 hint="give export a folder path with --out")


def _prune(builds: Path, keep: int, current: Path) -> None:
    """Keep the current build and the `keep` newest others."""
    others = [p for p in builds.iterdir()
              if p.is_dir() and not p.name.startswith(".") and p.resolve() != current]
    others.sort(key=lambda p: (read_dataset_json(p) or {}).get("built_at", ""), reverse=True)
    for old in others[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale_staging(builds: Path) -> None:
    now = time.time()
    for staging in builds.glob(".building-*"):
        newest = max((p.stat().st_mtime for p in (staging, staging / VIDEOS) if p.exists()),
                     default=0)
        if now - newest > STALE_STAGING_S:
            shutil.rmtree(staging, ignore_errors=True)
