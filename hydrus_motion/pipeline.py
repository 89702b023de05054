"""The flows, in order. Each stage is a seam (see DESIGN.md); this file only wires them.

Ingest flow (per video):

    probe ─▶ detect scenes ─▶ write sidecar                 (`hydrus-motion scenes`)
    probe ─▶ read sidecar ─▶ [bars, fields] ─▶ plan spans ─▶ cut clips  (`slice`)
    a new video (no current sidecar): both from one decode, then cut what is left
    ... ─▶ record clips locally (queued) ─▶ push to Hydrus   (`hydrus-motion ingest`)
    recent pushes ─▶ re-check in Hydrus ─▶ repair            (`hydrus-motion reconcile`)

The nightly flow (export, train, gate, samples) is in nightly.py.

The sidecar sits between detection and cutting on purpose: a person may edit it, and
`slice` and `ingest` honour the edit. Clips are recorded before any request to Hydrus,
so a Hydrus that is down or crashes loses nothing. New clips are annotated (tags,
caption, quality) before they are recorded, so the push carries them; a clip whose
annotation fails is recorded and pushed without it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from hydrus_motion.annotate import annotate_clips
from hydrus_motion.annotate.annotator import annotation_parts
from hydrus_motion.annotate.captioner import Captioner
from hydrus_motion.annotate.wd_tagger import Tagger
from hydrus_motion.clips.base import ClipCutter
from hydrus_motion.clips.cut import FfmpegCutter
from hydrus_motion.clips.done import RECORD_NAME as CUT_RECORD
from hydrus_motion.clips.fields import measure_scan
from hydrus_motion.clips.plan import plan_clips
from hydrus_motion.config import Config, clips_dir
from hydrus_motion.dataset.build import ExportResult, export_dataset
from hydrus_motion.errors import SidecarError
from hydrus_motion.files import fit_name
from hydrus_motion.hydrus.gateway import HydrusGateway
from hydrus_motion.hydrus.push import PushOutcome, push_clips
from hydrus_motion.hydrus.scheme import annotated_notes, clip_notes, clip_tags
from hydrus_motion.ingest.content import file_sha256, source_fingerprint
from hydrus_motion.probe import frame_count_slack, probe_video
from hydrus_motion.progress import Progress, no_progress
from hydrus_motion.records import Clip, ClipPlan, ClipSpan, Scan, SceneList, VideoInfo
from hydrus_motion.scenes import make_detector
from hydrus_motion.scenes.bars import sample_crops
from hydrus_motion.scenes.base import SceneDetector
from hydrus_motion.scenes.sidecar import (
    default_sidecar_path,
    read_header,
    read_sidecar,
    sidecar_unedited,
    write_sidecar,
)
from hydrus_motion.store.db import ClipRecord, Store
from hydrus_motion.store.signatures import SignatureLibrary
from hydrus_motion.store.states import PushStatus

log = logging.getLogger(__name__)


def detect_scenes(video: Path, cfg: Config, sidecar: Path | None = None,
                  detector: SceneDetector | None = None,
                  progress: Progress = no_progress) -> SceneList:
    info = probe_video(video, cfg.tools)
    scenes = (detector or make_detector(cfg)).detect(info, progress)
    write_sidecar(scenes, sidecar or default_sidecar_path(video), source_fingerprint(video))
    return scenes


@dataclass(frozen=True)
class SliceResult:
    clips: list[Clip]
    plan: ClipPlan  # what was cut and which scenes were dropped, and why


def slice_video(video: Path, cfg: Config, out_dir: Path, sidecar: Path | None = None,
                cutter: ClipCutter | None = None, progress: Progress | None = None) -> list[Clip]:
    return slice_planned(video, cfg, out_dir, sidecar, cutter, progress).clips


def slice_planned(video: Path, cfg: Config, out_dir: Path, sidecar: Path | None = None,
                  cutter: ClipCutter | None = None,
                  progress: Progress | None = None) -> SliceResult:
    """Cut the sidecar's clips; `progress(done, total)` hears of each finished batch. Clips
    a killed earlier run finished in `out_dir` are kept, not cut again."""
    info, plan = plan_video(video, cfg, sidecar)
    clips = (cutter or FfmpegCutter(cfg.encode, cfg.tools)).cut(info, list(plan.spans), out_dir,
                                                                progress)
    return SliceResult(clips, plan)


def plan_video(video: Path, cfg: Config, sidecar: Path | None = None,
               scan: Scan | None = None) -> tuple[VideoInfo, ClipPlan]:
    """The video as probed (interlacing measured unless encode.deinterlace is off or
    `scan` says it already) and its clip plan from the sidecar (black bars sampled when
    the sidecar has none)."""
    info = probe_video(video, cfg.tools)
    sidecar = sidecar or default_sidecar_path(video)
    scenes = read_sidecar(sidecar, video)
    drift = abs(info.frames_hint - scenes.frames) if info.frames_hint else 0
    if drift > frame_count_slack(scenes.frames):
        raise SidecarError(f"{sidecar}: made for a video of {scenes.frames} frames, but "
                           f"{video} has {info.frames_hint}",
                           hint="the video changed since detection; run `scenes` again")
    _check_crops(sidecar, scenes, info)
    if cfg.clips.crop == "auto" and not scenes.bars_measured:
        scenes = sample_crops(info, scenes, cfg.clips, cfg.tools, cfg.scenes.analysis_size)
    if cfg.encode.deinterlace != "off":
        info = dataclasses.replace(info, scan=scan or measure_scan(info, cfg.tools))
    plan = plan_clips(scenes, cfg.clips)
    if summary := plan.drop_summary(cfg.clips.min_frames):
        log.info("%s: %d clip(s) planned; %s", video.name, len(plan.spans), summary)
    return info, plan


def detect_and_cut(video: Path, cfg: Config, sidecar: Path,
                   out_dir: Path) -> tuple[VideoInfo, ClipPlan] | None:
    """`scenes` and most of `slice` from one decode (clips/onepass.py): the sidecar is
    written as `scenes` writes it; clips equal to its plan's spans are left finished in
    `out_dir`, so the cutter cuts only the rest. None (nothing done) where the one pass
    does not apply to this video or config."""
    from hydrus_motion.clips.inprocess import GiveUp
    from hydrus_motion.clips.onepass import OnePassCutter, unsupported

    if unsupported(cfg) is not None:
        return None
    info = probe_video(video, cfg.tools)
    if (reason := unsupported(cfg, info)) is not None:
        log.info("%s: detecting and cutting in two passes: %s", video.name, reason)
        return None
    if cfg.encode.deinterlace != "off":
        info = dataclasses.replace(info, scan=measure_scan(info, cfg.tools))

    def settle(scenes: SceneList) -> tuple[VideoInfo, ClipPlan]:
        write_sidecar(scenes, sidecar, source_fingerprint(video))
        return plan_video(video, cfg, sidecar, scan=info.scan)

    try:
        return OnePassCutter(cfg).run(info, out_dir, settle)
    except GiveUp as exc:  # before any sidecar or clip: the two passes redo it all
        log.info("%s: detecting and cutting in two passes: %s", video.name, exc)
        return None


def _check_crops(sidecar: Path, scenes: SceneList, info: VideoInfo) -> None:
    for s in scenes.scenes:
        c = s.crop
        if c and (c.x + c.width > info.width or c.y + c.height > info.height):
            raise SidecarError(f"{sidecar}: scene {s.index}: crop {c} reaches outside the "
                               f"{info.width}x{info.height} frame",
                               hint="fix the crop column, or write - for no crop")


@dataclass(frozen=True)
class IngestResult:
    video: Path
    source_sha256: str
    clips: list[ClipRecord]
    reused: bool  # the clips of this exact plan were already cut and recorded
    # clip sha256 -> why (part of) its annotation failed; such clips go on without it
    annotation_errors: dict[str, list[str]] = field(default_factory=dict)
    plan: ClipPlan | None = None  # the spans and the dropped scenes, with their reasons


def ingest_video(video: Path, cfg: Config, store: Store, *,
                 detector: SceneDetector | None = None,
                 cutter: ClipCutter | None = None, tagger: Tagger | None = None,
                 captioner: Captioner | None = None, annotate: bool = True,
                 progress: Progress | None = None) -> IngestResult:
    """Scenes (unless a current sidecar exists), clips, local records, then annotations
    (unless `annotate` is False: the daemon annotates in its own stage). No Hydrus yet.
    `progress(done, total)` hears of the cut's clips, batch by batch."""
    source_sha256 = file_sha256(video)
    sidecar = default_sidecar_path(video)
    out_dir = source_clips_dir(cfg, video, source_sha256)
    planned = scenes_unless_current(video, cfg, sidecar, out_dir, detector,
                                    one_pass=detector is None and cutter is None)
    info, plan = planned or plan_video(video, cfg, sidecar)
    spans = list(plan.spans)
    known = store.clips_of_source(source_sha256)
    if known and _same_plan(known, spans) and all(r.path.is_file() for r in known):
        return IngestResult(video, source_sha256, known, reused=True, plan=plan)
    clips = (cutter or FfmpegCutter(cfg.encode, cfg.tools)).cut(info, spans, out_dir, progress)
    source = {"name": video.name, "sha256": source_sha256, "frames": info.frames_hint,
              "fps": float(info.fps), "width": info.width, "height": info.height,
              "scan": str(info.scan) if info.scan else None}
    records, already = [], 0
    for clip in clips:
        record = ClipRecord(
            sha256=file_sha256(clip.path), path=clip.path, source_path=str(video.resolve()),
            source_sha256=source_sha256, scene=clip.scene, start_frame=clip.start_frame,
            end_frame=clip.end_frame, tags=tuple(clip_tags(cfg, video.stem, clip.scene)),
            notes=clip_notes(cfg, clip, source))
        if not store.add_clip(record):  # the same bytes as a clip recorded before
            already += 1
        records.append(store.clip(record.sha256) or record)
    if already:
        log.info("%s: %d clip(s), %d already known (same content as clips recorded before)",
                 video.name, len(clips), already)
    errors = annotate_records(store, records, cfg, tagger, captioner) if annotate else {}
    records = [store.clip(r.sha256) or r for r in records]
    return IngestResult(video, source_sha256, records, reused=False, annotation_errors=errors,
                        plan=plan)


def annotate_records(store: Store, records: list[ClipRecord], cfg: Config,
                     tagger: Tagger | None = None,
                     captioner: Captioner | None = None) -> dict[str, list[str]]:
    """Tags, caption and quality for recorded clips not yet pushed, written to the record
    so the push carries them. Returns the failures per clip; a failed clip keeps its
    bookkeeping tags and is pushed all the same."""
    todo = [r for r in records if r.push_status is PushStatus.QUEUED]
    if not cfg.annotate.enabled or not todo:
        return {}
    errors = {}
    dup = cfg.annotate.duplicates
    library = SignatureLibrary(store) if dup.enabled else None
    for record, note in zip(todo, annotate_clips([r.path for r in todo], cfg, tagger,
                                                 captioner)):
        if library is not None and note.quality:  # against every earlier clip, any video
            match = library.add(record.sha256, note.quality.signature,
                                max_distance=dup.max_distance, relate=dup.group_tags)
            note.near_duplicate_sha256 = match.sha256 if match else None
        extra_tags, caption, models = annotation_parts(note, cfg, tagger, captioner)
        tags = clip_tags(cfg, Path(record.source_path).stem, record.scene, extra_tags)
        store.set_annotation(record.sha256, tuple(tags),
                             annotated_notes(cfg, record.notes, caption, models))
        if note.errors:
            errors[record.sha256] = note.errors
    return errors


def push(gateway: HydrusGateway, store: Store, records: list[ClipRecord]) -> list[PushOutcome]:
    """Push (or confirm) the given clips; they stay queued if Hydrus is unavailable."""
    return push_clips(gateway, store, records)


def reconcile(gateway: HydrusGateway, store: Store, cfg: Config) -> list[PushOutcome]:
    """Push what is queued and re-check recent pushes, re-applying what Hydrus lost."""
    since = time.time() - cfg.hydrus.reconcile_hours * 3600
    return push_clips(gateway, store, store.due(pushed_since=since))


def export(gateway: HydrusGateway, cfg: Config, out: Path,
           progress: Progress = no_progress) -> ExportResult:
    """Approved clips, with the tags and captions people gave them, into the dataset at `out`."""
    return export_dataset(gateway, cfg, out, progress)


def source_clips_dir(cfg: Config, video: Path, source_sha256: str) -> Path:
    """The folder a video's clips go to (name fitted to the file-name limit)."""
    return clips_dir(cfg) / fit_name(video.stem, f"-{source_sha256[:8]}")


def scenes_unless_current(video: Path, cfg: Config, sidecar: Path, out_dir: Path,
                          detector: SceneDetector | None = None, one_pass: bool = True
                          ) -> tuple[VideoInfo, ClipPlan] | None:
    """The sidecar, detected unless a current one is there (ingest and the daemon's detect
    stage): in one pass with its clips where `one_pass` and the video allow (their plan
    returned), else by detection alone (None)."""
    current = sidecar_is_current(sidecar, video)
    if current and not cut_again_in_one_pass(sidecar, out_dir):
        log.info("%s: using the existing sidecar %s", video.name, sidecar.name)
        return None
    if not current:
        keep_hand_made(sidecar, video)
    planned = detect_and_cut(video, cfg, sidecar, out_dir) if one_pass else None
    if planned is None and not current:
        detect_scenes(video, cfg, sidecar, detector)
    return planned


def cut_again_in_one_pass(sidecar: Path, out_dir: Path) -> bool:
    """A current sidecar that we wrote and nobody edited, and no clip cut from it here
    (the state was lost, or the clips folder removed): the one pass again, since it gives
    the clips it gave the first time byte for byte, and a two-pass cut would not (one
    x264 session per batch, not per clip): Hydrus would get every clip twice."""
    return sidecar_unedited(sidecar) and not (out_dir / CUT_RECORD).is_file()


def sidecar_is_current(sidecar: Path, video: Path) -> bool:
    """Made for this very content: the source fingerprint in its header matches (however
    the mtimes stand: a copy changes them). A sidecar without one (hand-made, or from an
    older version) counts if it is newer than its video."""
    header = read_header(sidecar)
    if header is None:
        return False
    if "source" in header:
        return header["source"] == source_fingerprint(video)
    try:
        return sidecar.stat().st_mtime >= video.stat().st_mtime
    except FileNotFoundError:
        return False


def keep_hand_made(sidecar: Path, video: Path) -> Path | None:
    """Before detection replaces a sidecar that is not current: one without a source
    fingerprint was made or edited by a person, so it is kept beside (NAME.old) and the
    log says so. Returns where it went."""
    header = read_header(sidecar)
    if header is None or "source" in header:
        return None  # absent, not ours, or machine-made for other content
    kept = sidecar.with_name(fit_name(Path(sidecar.name).stem, ".txt.old"))
    sidecar.replace(kept)
    log.warning("%s: the sidecar %s is older than the video and does not say which content "
                "it was made for, so scenes are detected again; it is kept as %s (to use "
                "it, rename it back after this run)", video.name, sidecar.name, kept.name)
    return kept


def _same_plan(known: list[ClipRecord], spans: list[ClipSpan]) -> bool:
    return {(r.start_frame, r.end_frame) for r in known} == \
        {(s.start_frame, s.end_frame) for s in spans}
