"""`hydrus-motion ingest`: many videos cut, recorded and pushed, one report for them all.

A video that fails is reported and the others go on; once Hydrus is unreachable (or
refuses the key) it is not asked again for every video: the rest are recorded as queued
and the next `ingest`, `reconcile` or daemon pass pushes them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from hydrus_motion.config import Config
from hydrus_motion.errors import HydrusMotionError
from hydrus_motion.hydrus.gateway import HydrusError, HydrusGateway, connect_gateway
from hydrus_motion.hydrus.push import leave_queued
from hydrus_motion.policy import message_of
from hydrus_motion.reports import ClipLine, IngestReport, VideoReport
from hydrus_motion.store.db import Store

log = logging.getLogger("hydrus_motion")  # the CLI's logger: its lines read as before


def ingest_videos(videos: Iterable[Path], cfg: Config, store: Store, *, push: bool = True,
                  on_video: Callable[[VideoReport], None] = lambda video: None,
                  ) -> IngestReport:
    """Ingest each video in turn; `on_video` sees each one's report as it is done."""
    from hydrus_motion import pipeline

    report = IngestReport()
    gateway: HydrusGateway | None = None
    hydrus_error: HydrusError | None = None
    for video in videos:
        entry = VideoReport(str(video))
        report.videos.append(entry)
        try:
            result = pipeline.ingest_video(video, cfg, store)
        except Exception as exc:  # this video only; the others go on
            message = message_of(exc)
            if not isinstance(exc, HydrusMotionError) and not message.startswith(str(video)):
                message = f"{video}: {message}"
            log.error("%s", message)
            entry.ok, entry.error = False, message
            on_video(entry)
            continue
        entry.source_sha256 = result.source_sha256
        if result.plan is not None:
            entry.plan = result.plan.as_json(cfg.clips.min_frames)
        pushed: dict[str, str] = {}
        if push and result.clips:
            try:
                if hydrus_error:  # no point asking again for every video
                    raise hydrus_error
                gateway = gateway or connect_gateway(cfg)
                done = pipeline.push(gateway, store, result.clips)
                report.pushes.update(str(o.result) for o in done)
                pushed = {o.sha256: o.result for o in done}
            except HydrusError as exc:
                if hydrus_error is None:
                    log.error("%s", exc)
                hydrus_error = exc
                leave_queued(store, result.clips, exc)
        for r in result.clips:
            record = store.clip(r.sha256) or r
            entry.clips.append(ClipLine(
                path=str(record.path), sha256=record.sha256, scene=record.scene,
                start_frame=record.start_frame, end_frame=record.end_frame,
                push=pushed.get(record.sha256, record.push_status), error=record.last_error,
                annotation_errors=result.annotation_errors.get(record.sha256, [])))
        on_video(entry)
    report.hydrus_error = hydrus_error and hydrus_error.message
    return report
