"""What a clip looks like in Hydrus: its tags and notes (DESIGN.md, Hydrus scheme).

Pure functions. Tags are cleaned the way Hydrus cleans them on write (lowercase, trimmed,
runs of spaces collapsed), so what we record equals what Hydrus stores and a re-check
compares like with like.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from hydrus_motion import __version__
from hydrus_motion.config import Config
from hydrus_motion.records import Clip

_SPACES = re.compile(r"\s+")
DUPLICATE_GROUP = "duplicate group"  # namespace of the near-duplicate group tag


def duplicate_group_tag(root_sha256: str) -> str:
    """The tag every clip of a near-duplicate group carries: its earliest clip's hash."""
    return f"{DUPLICATE_GROUP}:{root_sha256[:12]}"


def clean_tag(tag: str) -> str:
    """Hydrus' own normalisation: lowercase, trimmed, one space between words."""
    return _SPACES.sub(" ", tag).strip().lower()


def clip_tags(cfg: Config, source_name: str, scene: int,
              annotation_tags: Iterable[str] = ()) -> list[str]:
    """Every tag a new clip gets, cleaned, de-duplicated, in a stable order."""
    t = cfg.hydrus.tags
    tags = [t.clip, t.pending, f"{t.source_namespace}:{source_name}",
            f"{t.scene_namespace}:{scene}", *annotation_tags]
    seen: dict[str, None] = {}
    for tag in tags:
        cleaned = clean_tag(tag)
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


def clip_notes(cfg: Config, clip: Clip, source: Mapping[str, Any], caption: str | None = None,
               models: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The `caption` note (when there is one) and the `hydrus-motion` provenance note."""
    provenance = {
        "tool": "hydrus-motion", "version": __version__,
        "source": dict(source),
        "clip": {"scene": clip.scene, "start_frame": clip.start_frame,
                 "end_frame": clip.end_frame, "frames": clip.frames, "fps": clip.fps,
                 "width": clip.width, "height": clip.height},
        "scenes": {"detector": cfg.scenes.detector, "trim_frames": cfg.clips.trim_frames,
                   "min_frames": cfg.clips.min_frames, "max_frames": cfg.clips.max_frames,
                   "crop": cfg.clips.crop, "crop_black_level": cfg.clips.crop_black_level,
                   "crop_min_bar": cfg.clips.crop_min_bar},
        "encode": {"crf": cfg.encode.crf, "preset": cfg.encode.preset,
                   "max_short_side": cfg.encode.max_short_side, "fps": cfg.encode.fps,
                   "deinterlace": cfg.encode.deinterlace},
        # the source picture this clip keeps: crop (x, y, width, height in source pixels;
        # null: full frame) and the filter that undid interlacing (null: none)
        "picture": {"crop": dataclasses.asdict(clip.crop) if clip.crop else None,
                    "deinterlace": clip.deinterlace},
        "models": dict(models or {}),
    }
    notes = {cfg.hydrus.notes.provenance: json.dumps(provenance, sort_keys=True,
                                                     ensure_ascii=False)}
    if caption:
        notes[cfg.hydrus.notes.caption] = caption
    return notes


def annotated_notes(cfg: Config, notes: Mapping[str, str], caption: str | None,
                    models: Mapping[str, Any]) -> dict[str, str]:
    """A clip's notes with its caption added and the models that made it in provenance."""
    out = dict(notes)
    name = cfg.hydrus.notes.provenance
    try:
        provenance = json.loads(out.get(name) or "{}")
    except ValueError:
        provenance = {}
    provenance["models"] = dict(models)
    out[name] = json.dumps(provenance, sort_keys=True, ensure_ascii=False)
    if caption:
        out[cfg.hydrus.notes.caption] = caption
    return out


def review_query(cfg: Config) -> list[str]:
    """Clips a person approved and did not also reject."""
    t = cfg.hydrus.tags
    return [clean_tag(t.clip), clean_tag(t.approved), f"-{clean_tag(t.rejected)}"]
