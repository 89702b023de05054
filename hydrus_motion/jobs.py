"""What each queue stage does for one video; the order and the pools are the stage
table's (hydrus_motion/stages.py), one row per function here.

    detect     probe, find scenes, write VIDEO.scenes.txt        (CPU worker)
    slice      cut the clips, record them locally as queued       (CPU worker)
    annotate   tags / captions / quality for the video's clips    (GPU worker)
    push       clips into Hydrus; then archive (or keep/delete) the video
    reconcile  a while later: re-check the clips in Hydrus, repair what a crash lost

Every stage may run again after a crash and does no harm: the sidecar is rewritten
atomically, clips are known by hash and cut through a scratch folder, and a push adds
only what Hydrus lacks. Errors are raised; the daemon's worker decides (retry, wait for
Hydrus, or quarantine).
"""

from __future__ import annotations

import glob
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hydrus_motion.config import Config, archive_dir
from hydrus_motion.errors import HydrusMotionError
from hydrus_motion.hydrus.gateway import HydrusGateway
from hydrus_motion.ingest.dispose import finish_video
from hydrus_motion.store.db import Store
from hydrus_motion.store.states import PushStatus, SourceStatus

if TYPE_CHECKING:  # the queue reads the stage table, which names these runners
    from hydrus_motion.store.queue import Job, JobQueue, Source

log = logging.getLogger(__name__)


class SourceGone(HydrusMotionError):
    """The video left the watch folder before we were done with it."""


@dataclass
class StageContext:
    cfg: Config
    store: Store
    queue: JobQueue
    gateway: Callable[[], HydrusGateway]  # the push worker's live connection


def detect(ctx: StageContext, job: Job) -> None:
    from hydrus_motion.pipeline import scenes_unless_current, source_clips_dir
    from hydrus_motion.scenes.sidecar import default_sidecar_path

    video = _video(ctx, job)
    sidecar = default_sidecar_path(video)
    # a sidecar write that a kill cut short (names may hold glob characters: "[1080p]")
    for stale in video.parent.glob(glob.escape(f".{sidecar.name}.") + "*.part"):
        stale.unlink(missing_ok=True)
    out_dir = source_clips_dir(ctx.cfg, video, job.source_sha256)
    _remove_scratch(out_dir)  # a one pass that a kill cut short
    # one decode where it can: the clips it cut while detecting wait, finished, for `slice`
    scenes_unless_current(video, ctx.cfg, sidecar, out_dir)


def slice_clips(ctx: StageContext, job: Job) -> None:
    from hydrus_motion.pipeline import ingest_video, source_clips_dir

    video = _video(ctx, job)
    _remove_scratch(source_clips_dir(ctx.cfg, video, job.source_sha256))
    # the sidecar is current (no detection); annotation is the next stage's, on the GPU
    result = ingest_video(video, ctx.cfg, ctx.store, annotate=False)
    if result.source_sha256 != job.source_sha256:
        raise SourceGone(f"{video}: the file changed after it was taken (hash "
                         f"{result.source_sha256[:12]}, was {job.source_sha256[:12]})",
                         hint="drop the new version into the watch folder again")
    ctx.queue.update_source(job.source_sha256, clips=len(result.clips))
    drops = result.plan.drop_summary(ctx.cfg.clips.min_frames) if result.plan else None
    if not result.clips:
        log.warning("%s: no clip: %s", video.name, drops or "no scenes")
    elif drops:
        log.info("%s: %d clip(s); dropped: %s", video.name, len(result.clips), drops)


def annotate(ctx: StageContext, job: Job) -> None:
    """Tags, caption and quality on the GPU worker(s), before the push reads the records."""
    from hydrus_motion.pipeline import annotate_records

    records = ctx.store.clips_of_source(job.source_sha256)
    errors = annotate_records(ctx.store, records, ctx.cfg)
    if errors:  # the clips go on without those tags: nothing is lost, the reason is told
        first = next(iter(errors.values()))[0]
        log.warning("%s: %d of %d clip(s) not annotated: %s", _source(ctx, job).name,
                    len(errors), len(records), first)


def push(ctx: StageContext, job: Job) -> None:
    from hydrus_motion.hydrus.push import push_clips, summarise

    own = ctx.store.clips_of_source(job.source_sha256)
    records = [r for r in own if r.push_status is PushStatus.QUEUED]
    outcomes = push_clips(ctx.gateway(), ctx.store, records)  # raises if Hydrus is down
    source = _source(ctx, job)
    # clips with the bytes of clips recorded before belong to that earlier video
    already = max(0, (source.clips or 0) - len(own))
    action = ctx.cfg.daemon.after_success
    present = Path(source.path).exists()
    moved = finish_video(Path(source.path), action, archive_dir(ctx.cfg), source.sha256)
    ctx.queue.update_source(source.sha256, status=SourceStatus.DONE,
                            path=str(moved) if moved else None)
    if moved != Path(source.path):  # it left the watch folder: that name is free again
        ctx.queue.forget(source.path)
    counts = ", ".join(f"{n} {what}" for what, n in summarise(outcomes).items())
    if not present:
        where = "already moved before a restart"
    else:
        where = {"move": f"archived to {moved}", "keep": "kept in place",
                 "delete": "deleted"}[action]
    log.info("%s: done: %d clip(s)%s%s; source %s", source.name, len(records) + already,
             f", {already} already known" if already else "",
             f" ({counts})" if counts else "", where)


def reconcile(ctx: StageContext, job: Job) -> None:
    from hydrus_motion.hydrus.push import PushResult, push_clips

    records = [r for r in ctx.store.clips_of_source(job.source_sha256)
               if r.push_status is PushStatus.PUSHED]
    outcomes = push_clips(ctx.gateway(), ctx.store, records)
    repaired = sum(o.result is PushResult.REPAIRED for o in outcomes)
    if repaired:
        log.info("%s: reconcile repaired %d clip(s) Hydrus had lost",
                 _source(ctx, job).name, repaired)


def push_queued(ctx: StageContext) -> int:
    """Push clips queued in the state database that no job of ours owns (`ingest` queued
    them while Hydrus was down, or with --no-push). Returns how many were pushed."""
    from hydrus_motion.hydrus.push import push_clips, summarise

    records = ctx.store.queued_without_job()
    if not records:
        return 0
    outcomes = push_clips(ctx.gateway(), ctx.store, records)  # raises if Hydrus is down
    counts = ", ".join(f"{n} {what}" for what, n in summarise(outcomes).items())
    log.info("hydrus: pushed %d clip(s) queued outside the daemon (%s)", len(records), counts)
    return len(records)


def _source(ctx: StageContext, job: Job) -> Source:
    source = ctx.queue.source(job.source_sha256)
    if source is None:  # the queue's foreign key makes this a bug, not bad input
        raise AssertionError(f"job {job.id} has no source row")
    return source


def _video(ctx: StageContext, job: Job) -> Path:
    video = Path(_source(ctx, job).path)
    if not video.is_file():
        raise SourceGone(f"{video}: the file left the watch folder before it was processed",
                         hint="drop it into the watch folder again")
    return video


def _remove_scratch(out_dir: Path) -> None:
    """Scratch folders a killed run left in this video's clip folder (see FfmpegCutter)."""
    for stale in out_dir.glob(".hydrus-motion-*.tmp") if out_dir.is_dir() else ():
        shutil.rmtree(stale, ignore_errors=True)
        log.info("%s: removed %s left by an interrupted run", out_dir.name, stale.name)
