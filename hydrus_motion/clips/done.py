"""Which clips in a folder are finished: the record that makes a cut resumable.

`.clips-cut.json` in the clips folder lists every clip a cut verified, under its
file name, with a key for what it was cut from and how (source size and mtime, span,
crop, encode settings) and the file's size and mtime as they were when it was verified.
A clip is reused only when its key is the one the new plan gives and the file still has
that size and mtime: one stat per clip, so a re-run over 2,000 finished clips is instant,
and a clip replaced, truncated or cut with other settings is cut again.

Entries are written before the clips are renamed into place (a rename keeps the mtime):
a kill between the two leaves a recorded clip missing, which is simply cut again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from hydrus_motion.config import EncodeConfig
from hydrus_motion.files import atomic_write_text, read_json_object
from hydrus_motion.records import Clip, ClipSpan, VideoInfo

RECORD_NAME = ".clips-cut.json"
_VERSION = 1
_NOT_OUTPUT = ("clips_per_run", "keep_free_mb")  # settings that do not change a clip


@dataclass(frozen=True)
class DoneClip:
    key: str
    size: int
    mtime_ns: int
    frames: int
    fps: float
    width: int
    height: int
    deinterlace: str | None = None  # the filter that undid fields, as Clip.deinterlace


def clip_key(info: VideoInfo, encode: EncodeConfig, span: ClipSpan) -> str:
    stat = info.path.stat()
    settings = {k: v for k, v in dataclasses.asdict(encode).items() if k not in _NOT_OUTPUT}
    if settings.get("codec") == "x264":  # the default: keys of clips cut before it existed
        del settings["codec"]
    crop = dataclasses.asdict(span.crop) if span.crop else None
    text = json.dumps([stat.st_size, stat.st_mtime_ns, span.scene, span.start_frame,
                       span.end_frame, crop, settings], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def load_done(out_dir: Path) -> dict[str, DoneClip]:
    data = read_json_object(out_dir / RECORD_NAME) or {}
    if data.get("version") != _VERSION:
        return {}
    done = {}
    for name, entry in (data.get("clips") or {}).items():
        try:
            done[name] = DoneClip(**entry)
        except TypeError:
            continue
    return done


def save_done(out_dir: Path, done: dict[str, DoneClip]) -> None:
    clips = {name: dataclasses.asdict(d) for name, d in sorted(done.items())}
    atomic_write_text(out_dir / RECORD_NAME,
                      json.dumps({"version": _VERSION, "clips": clips}, indent=0) + "\n")


def finished_clip(path: Path, key: str, span: ClipSpan, done: dict[str, DoneClip]) -> Clip | None:
    """The clip at `path` if the record says it was verified for this very plan."""
    entry = done.get(path.name)
    if entry is None or entry.key != key:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    if (stat.st_size, stat.st_mtime_ns) != (entry.size, entry.mtime_ns):
        return None
    return Clip(path=path, scene=span.scene, start_frame=span.start_frame,
                end_frame=span.end_frame, frames=entry.frames, fps=entry.fps,
                width=entry.width, height=entry.height, crop=span.crop,
                deinterlace=entry.deinterlace)


def done_entry(segment: Path, key: str, clip: Clip) -> DoneClip:
    stat = os.stat(segment)
    return DoneClip(key=key, size=stat.st_size, mtime_ns=stat.st_mtime_ns, frames=clip.frames,
                    fps=clip.fps, width=clip.width, height=clip.height,
                    deinterlace=clip.deinterlace)
