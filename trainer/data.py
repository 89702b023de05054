"""The dataset folder (hydrus-motion's export) -> clip records -> training samples.

Reads manifest.jsonl when present (frame counts, tags), else the WebVid-style
metadata.csv (then frame counts come from ffprobe). Every problem found while reading
the folder is collected and reported once; a clip that fails to decode later is
reported once and never tried again in this run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from trainer.video import BadClip, probe, read_frames, sample_indices

log = logging.getLogger("trainer")


@dataclass(frozen=True)
class Clip:
    videoid: str
    path: Path
    caption: str
    frames: int
    width: int
    height: int
    tags: tuple[str, ...] = field(default=())
    cadence: int = 1  # frames per drawing (animation on twos: 2), from the manifest


def cadence_stride(n_frames: int, count: int, stride: int, cadence: int) -> int:
    """The stride for a clip drawn on `cadence`s, so every sampled frame is a new drawing.

    A multiple of the cadence, the smallest not below `stride` when the clip is long
    enough for `count` frames at it, else the largest multiple that fits; a clip too
    short for even one cadence per step keeps `stride` (sample_indices shrinks it)."""
    if cadence <= 1 or count <= 1:
        return stride
    wanted = -(-stride // cadence) * cadence
    fits = (n_frames - 1) // (count - 1) // cadence * cadence
    if fits >= wanted:
        return wanted
    return fits if fits >= cadence else stride


class DatasetError(ValueError):
    """The dataset folder cannot be used at all (message names the file)."""


def load_clips(folder: Path, timeout_s: float = 60.0) -> tuple[list[Clip], list[str]]:
    """(usable clips, one problem line per skipped clip)."""
    folder = Path(folder)
    manifest, metadata = folder / "manifest.jsonl", folder / "metadata.csv"
    if manifest.is_file():
        rows = _read_manifest(manifest)
    elif metadata.is_file():
        rows = _read_metadata(metadata)
    else:
        raise DatasetError(f"{folder}: no manifest.jsonl or metadata.csv; is this a dataset "
                           "folder written by `hydrus-motion export`?")
    clips, problems = [], []
    for row in rows:
        if isinstance(row, str):
            problems.append(row)
            continue
        path = folder / "videos" / f"{row['videoid']}.mp4"
        if not path.is_file():
            problems.append(f"{path}: missing (listed for videoid {row['videoid']})")
            continue
        try:
            if not all(row.get(k) for k in ("frames", "width", "height")):
                found = probe(path, timeout_s)
                row = {**row, **{k: v for k, v in found.items() if not row.get(k)}}
        except BadClip as exc:
            problems.append(str(exc))
            continue
        clips.append(Clip(videoid=row["videoid"], path=path, caption=row["caption"],
                          frames=int(row["frames"]), width=int(row["width"]),
                          height=int(row["height"]), tags=tuple(row.get("tags") or ()),
                          cadence=max(1, int(row.get("cadence") or 1))))
    if not clips:
        raise DatasetError(f"{folder}: no usable clips ({len(problems)} skipped)"
                           + "".join(f"\n  - {p}" for p in problems[:20]))
    return clips, problems


def dataset_id(folder: Path) -> str:
    """dataset.json's dataset_id (export's content id) when present, else a hash of the list."""
    folder = Path(folder)
    info = folder / "dataset.json"
    if info.is_file():
        try:
            data = json.loads(info.read_text(encoding="utf-8"))
            if data.get("dataset_id"):
                return str(data["dataset_id"])
        except (OSError, ValueError):
            pass
    for name in ("manifest.jsonl", "metadata.csv"):
        if (folder / name).is_file():
            return "sha256:" + hashlib.sha256((folder / name).read_bytes()).hexdigest()[:16]
    return "unknown"


def _read_manifest(path: Path) -> list:
    rows: list = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            rows.append({"videoid": str(rec["videoid"]),
                         "caption": str(rec.get("caption") or rec.get("nl_caption") or ""),
                         "tags": [str(t) for t in rec.get("tags") or []],
                         "frames": rec.get("frames"), "width": rec.get("width"),
                         "height": rec.get("height"), "cadence": rec.get("cadence")})
        except (ValueError, KeyError, TypeError) as exc:
            rows.append(f"{path}:{number}: unreadable record ({exc})")
    return rows


def _read_metadata(path: Path) -> list:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"videoid", "name"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: header must name videoid and name (got "
                               f"{reader.fieldnames}); the WebVid format needs a header row")
        return [{"videoid": r["videoid"], "caption": r["name"] or ""} for r in reader]


def bucket_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(w, h), multiples of 64, near size*size pixels with the clip's aspect ratio."""
    aspect = max(0.5, min(2.0, width / height))
    w = max(64, round(size * aspect ** 0.5 / 64) * 64)
    h = max(64, round(size / aspect ** 0.5 / 64) * 64)
    return w, h


def caption_for(clip: Clip, rng: random.Random, dropout: float, tag_shuffle: bool) -> str:
    if rng.random() < dropout:
        return ""
    if tag_shuffle and clip.tags:
        tags = list(clip.tags)
        rng.shuffle(tags)
        return ", ".join(tags)
    return clip.caption


class ClipDataset:
    """Map-style dataset of pixel windows: dict(pixels (F,3,H,W) in [-1,1], caption, ...)."""

    def __init__(self, clips: list[Clip], frames: int, stride: int, size: int, flip: bool,
                 caption_dropout: float, tag_shuffle: bool, buckets: bool, seed: int,
                 timeout_s: float = 120.0):
        self.clips, self.frames, self.stride, self.size = clips, frames, stride, size
        self.flip, self.dropout, self.tag_shuffle = flip, caption_dropout, tag_shuffle
        self.buckets, self.timeout_s = buckets, timeout_s
        self.rng = random.Random(seed)
        self.bad: set[str] = set()

    def __len__(self) -> int:
        return len(self.clips)

    def stride_for(self, clip: Clip) -> int:
        return cadence_stride(clip.frames, self.frames, self.stride, clip.cadence)

    def target_size(self, clip: Clip) -> tuple[int, int]:
        return bucket_size(clip.width, clip.height, self.size) if self.buckets else \
            (self.size, self.size)

    def __getitem__(self, index: int) -> dict:
        import torch

        for attempt in range(len(self.clips)):  # bounded: each bad clip costs one try
            clip = self.clips[(index + attempt) % len(self.clips)]
            if clip.videoid in self.bad:
                continue
            start = self.rng.randint(0, max(0, clip.frames - 1))
            w, h = self.target_size(clip)
            try:
                frames = read_frames(clip.path, sample_indices(
                    clip.frames, self.frames, self.stride_for(clip), start), w, h,
                    self.timeout_s)
            except BadClip as exc:
                self.bad.add(clip.videoid)
                log.warning("skipping clip for the rest of the run: %s", exc)
                continue
            pixels = torch.from_numpy(frames.copy()).permute(0, 3, 1, 2).float() / 127.5 - 1
            if self.flip and self.rng.random() < 0.5:
                pixels = pixels.flip(-1)
            return {"pixels": pixels, "videoid": clip.videoid,
                    "caption": caption_for(clip, self.rng, self.dropout, self.tag_shuffle)}
        raise DatasetError(f"every clip failed to decode ({len(self.bad)} bad)")


class BucketBatches:
    """Batches whose clips share one target size (aspect-ratio buckets), reshuffled per epoch."""

    def __init__(self, sizes: list[tuple[int, int]], batch_size: int, seed: int):
        self.sizes, self.batch_size, self.rng = sizes, batch_size, random.Random(seed)

    def _batches(self) -> list[list[int]]:
        groups: dict[tuple[int, int], list[int]] = {}
        for index, size in enumerate(self.sizes):
            groups.setdefault(size, []).append(index)
        batches = []
        for members in groups.values():
            self.rng.shuffle(members)
            batches += [members[i:i + self.batch_size]
                        for i in range(0, len(members), self.batch_size)]
        self.rng.shuffle(batches)
        return batches

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        counts: dict[tuple[int, int], int] = {}
        for size in self.sizes:
            counts[size] = counts.get(size, 0) + 1
        return sum(-(-n // self.batch_size) for n in counts.values())
