"""The `hydrus:` section of the config: the Client API, our tags and notes.

Part of hydrus_motion.config (which re-exports every name); defaults live here only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hydrus_motion.typed_yaml import in_range as _range


@dataclass(frozen=True)
class HydrusTagsConfig:
    clip: str = "motion:clip"
    pending: str = "motion:pending"
    approved: str = "approved"
    rejected: str = "rejected"
    source_namespace: str = "source"
    scene_namespace: str = "scene"
    # Validation samples of a nightly training run: `motion:sample` and `motion run:<id>`.
    sample: str = "motion:sample"
    run_namespace: str = "motion run"


@dataclass(frozen=True)
class HydrusNotesConfig:
    caption: str = "caption"
    provenance: str = "hydrus-motion"
    run: str = "motion run"  # on samples: what the run was trained on and how it went


@dataclass(frozen=True)
class HydrusConfig:
    api_url: str = "http://127.0.0.1:45869/"
    # 64 hex digits. HYDRUS_MOTION_ACCESS_KEY wins over this, so the key need not sit in
    # a file. It never appears in logs, errors or anything we write.
    access_key: str | None = field(default=None, metadata={"secret": True})
    # Local tag service (by name) that receives every tag we write.
    tag_service: str = "my tags"
    # path: Hydrus reads the clip from our folder (same machine); bytes: upload it;
    # auto: path on a loopback api_url, falling back to bytes if Hydrus cannot read it.
    import_by: Literal["auto", "path", "bytes"] = "auto"
    # Seconds to wait for an answer; uploads get upload_timeout_s to send the bytes.
    timeout_s: float = field(default=30.0, metadata=_range(1, 3600))
    upload_timeout_s: float = field(default=600.0, metadata=_range(1, 86400))
    # Connection errors and 503 (database busy) are retried with doubling waits
    # starting at backoff_s (capped at 60 s); other errors are not.
    retries: int = field(default=4, metadata=_range(0, 20))
    backoff_s: float = field(default=1.0, metadata=_range(0, 60))
    # Hashes per file_metadata request: the list travels in the URL.
    metadata_chunk: int = field(default=256, metadata=_range(1, 2000))
    # Hydrus commits every 30 s, so a crash loses recent writes; reconcile re-checks
    # clips pushed within this many hours.
    reconcile_hours: float = field(default=48.0, metadata=_range(0, None))
    tags: HydrusTagsConfig = field(default_factory=HydrusTagsConfig)
    notes: HydrusNotesConfig = field(default_factory=HydrusNotesConfig)
