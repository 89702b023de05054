"""What goes into a dataset, decided before any byte is downloaded (pure functions).

The folder contract (DESIGN.md): `videos/<videoid>.mp4` with its caption in
`videos/<videoid>.txt`, `metadata.csv` (AnimateDiff /
WebVid columns videoid,name,page_dir), `manifest.jsonl`, optional shards, `dataset.json`.
The videoid is the clip's sha256, which is also its Hydrus hash.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydrus_motion.annotate.motion import cadence_of_tags
from hydrus_motion.config import Config
from hydrus_motion.dataset.captions import caption_tags, training_caption
from hydrus_motion.errors import HydrusMotionError
from hydrus_motion.files import read_json_object
from hydrus_motion.hydrus.review import ReviewedClip
from hydrus_motion.hydrus.scheme import clean_tag

FORMAT_VERSION = 1
VIDEOS = "videos"
PAGE_DIR = VIDEOS  # WebVid's page_dir column: read by AnimateDiff's loader, never used


@dataclass(frozen=True)
class DatasetEntry:
    videoid: str
    caption: str  # the training caption: template of caption note and tags
    nl_caption: str | None  # the caption note as it is in Hydrus
    tags: tuple[str, ...]  # the caption's tags, in caption order
    frames: int | None
    fps: float | None
    width: int | None
    height: int | None
    source: dict[str, Any] = field(default_factory=dict)
    cadence: int = 1  # frames per drawing (motion:on twos -> 2): the trainer's stride unit

    @property
    def file(self) -> str:
        return f"{VIDEOS}/{self.videoid}.mp4"

    @property
    def caption_file(self) -> str:
        """The caption beside the clip, as musubi-tuner, diffusion-pipe and kohya read it."""
        return f"{VIDEOS}/{self.videoid}.txt"

    def record(self) -> dict[str, Any]:
        """One manifest.jsonl line."""
        return {"videoid": self.videoid, "file": self.file, "caption": self.caption,
                "nl_caption": self.nl_caption, "tags": list(self.tags), "frames": self.frames,
                "fps": self.fps, "width": self.width, "height": self.height,
                "hydrus_hash": self.videoid, "source": self.source, "cadence": self.cadence}


@dataclass(frozen=True)
class Skipped:
    videoid: str
    reason: str


class MissingCaption(HydrusMotionError):
    """dataset.require_caption is on and approved clips have no caption note."""


def plan_entries(clips: Sequence[ReviewedClip],
                 cfg: Config) -> tuple[list[DatasetEntry], list[Skipped]]:
    """The dataset's entries (sorted by videoid) and the approved clips left out, with why."""
    uncaptioned = [c.hash for c in clips if not (c.caption or "").strip()]
    if cfg.dataset.require_caption and uncaptioned:
        shown = ", ".join(uncaptioned[:5]) + (" ..." if len(uncaptioned) > 5 else "")
        raise MissingCaption(
            f"{len(uncaptioned)} approved clip(s) have no '{cfg.hydrus.notes.caption}' note: "
            f"{shown}",
            hint="caption them in Hydrus (or let annotation do it), or set "
                 "dataset.require_caption: false to caption them by their tags")
    entries, skipped = [], []
    excluded = {clean_tag(t) for t in cfg.dataset.exclude_tags}
    motion_ns = cfg.annotate.quality.namespace_motion
    for clip in sorted(clips, key=lambda c: c.hash):
        hit = sorted(excluded.intersection(clean_tag(t) for t in clip.tags))
        if hit:
            skipped.append(Skipped(clip.hash, f"tagged {', '.join(hit)} "
                                              "(dataset.exclude_tags)"))
            continue
        note = (clip.caption or "").strip() or None
        caption = training_caption(note, clip.tags, cfg)
        if not caption:
            skipped.append(Skipped(clip.hash, "no caption note and no caption tags"))
            continue
        entries.append(DatasetEntry(
            videoid=clip.hash, caption=caption, nl_caption=note,
            tags=tuple(caption_tags(clip.tags, cfg)), **_geometry(clip),
            source=_source(clip.provenance),
            cadence=cadence_of_tags([clean_tag(t) for t in clip.tags], motion_ns)))
    return entries, skipped


def _geometry(clip: ReviewedClip) -> dict[str, Any]:
    """Frames, fps and size: Hydrus' own reading, our provenance note for the exact fps."""
    meta, ours = clip.metadata, clip.provenance.get("clip") or {}
    frames = meta.get("num_frames") or ours.get("frames")
    fps = ours.get("fps")
    if not fps and frames and meta.get("duration"):
        fps = round(frames / (meta["duration"] / 1000), 3)
    return {"frames": frames, "fps": fps, "width": meta.get("width") or ours.get("width"),
            "height": meta.get("height") or ours.get("height")}


def _source(provenance: dict[str, Any]) -> dict[str, Any]:
    source, clip = provenance.get("source") or {}, provenance.get("clip") or {}
    picked = {"name": source.get("name"), "sha256": source.get("sha256"),
              "scene": clip.get("scene"), "start_frame": clip.get("start_frame"),
              "end_frame": clip.get("end_frame")}
    return {k: v for k, v in picked.items() if v is not None}


def export_dataset_id(entries: Sequence[DatasetEntry]) -> str:
    """Identity of the content: the same clips with the same captions give the same id."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(json.dumps(entry.record(), sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def metadata_csv(entries: Sequence[DatasetEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["videoid", "name", "page_dir"])
    writer.writerows([e.videoid, e.caption, PAGE_DIR] for e in entries)
    return out.getvalue()


def manifest_jsonl(entries: Sequence[DatasetEntry]) -> str:
    return "".join(json.dumps(e.record(), ensure_ascii=False) + "\n" for e in entries)


def read_dataset_json(folder: Path) -> dict[str, Any] | None:
    """dataset.json of a folder we built, or None when there is none (or it is unreadable)."""
    return read_json_object(folder / "dataset.json")
