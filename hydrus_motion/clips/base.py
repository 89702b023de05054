"""The ClipCutter seam: spans of a probed video in, finished clip files out.

Implementation: `FfmpegCutter` (cut.py, frame-exact, in batches); tests use a fake
(tests/fakes.py). Callers depend only on this protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from hydrus_motion.progress import Progress
from hydrus_motion.records import Clip, ClipSpan, VideoInfo


class ClipCutter(Protocol):
    def cut(self, info: VideoInfo, spans: list[ClipSpan], out_dir: Path,
            progress: Progress | None = None) -> list[Clip]:
        """Every span as a clip file in `out_dir`, checked against its plan;
        `progress(done, total)` hears of each finished batch."""
        ...
