"""Review queries: which clips did a person approve, and how do they read in Hydrus now.

The export takes tags and caption as they are in Hydrus at that moment (human edits
win), so they are read from Hydrus, never from our local record.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from hydrus_motion.config import Config
from hydrus_motion.hydrus.gateway import HydrusGateway
from hydrus_motion.hydrus.scheme import review_query

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReviewedClip:
    hash: str
    tags: tuple[str, ...]  # current tags on our tag service, siblings/parents applied
    caption: str | None
    provenance: dict[str, Any]  # our `hydrus-motion` note, {} if absent or unreadable
    metadata: dict[str, Any]  # mime, size, width, height, duration (ms), num_frames...


def approved_clips(gateway: HydrusGateway, cfg: Config) -> list[ReviewedClip]:
    hashes = gateway.search(review_query(cfg))
    states = gateway.files(hashes)
    clips = []
    for file_hash in hashes:
        state = states[file_hash]
        if not state.present:  # approved, then deleted: nothing to export
            continue
        clips.append(ReviewedClip(
            hash=file_hash, tags=tuple(sorted(state.display_tags)),
            caption=state.notes.get(cfg.hydrus.notes.caption),
            provenance=_provenance(state.notes.get(cfg.hydrus.notes.provenance), file_hash),
            metadata=state.metadata))
    return clips


def _provenance(text: str | None, file_hash: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        log.warning("%s: the provenance note is not JSON (edited by hand?); ignored", file_hash)
        return {}
    return data if isinstance(data, dict) else {}
