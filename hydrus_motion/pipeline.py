"""The flows, in order. Each stage is a seam (see DESIGN.md); this file only wires them.

Ingest flow (per video):

    probe ─▶ detect scenes ─▶ write sidecar                 (`hydrus-motion scenes`)
    probe ─▶ read sidecar ─▶ [bars, fields] ─▶ plan spans ─▶ cut clips  (`slice`)
    a new video (no current sidecar): both from one decode, then cut what is left
    ... ─▶ record clips locally (queued) ─▶ push to Hydrus   (`hydrus-motion ingest`)
    recent pushes ─▶ re-check in Hydrus ─▶ repair            (`hydrus-motion reconcile`)

Nightly flow (`hydrus-motion nightly`, or the daemon at nightly.cron):

    push queued + re-check recent pushes                             (`reconcile`)
    search approved ─▶ tags + caption as they are now ─▶ download new clips
        (hash-checked) ─▶ build beside the current dataset ─▶ switch  (`export`)
    dataset changed (or a run was interrupted) ─▶ trainer as a child process   (`train`)
        ─▶ run.json ─▶ `current` checkpoint ─▶ samples + popup into Hydrus

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
from typing import Any

from hydrus_motion.annotate import annotate_clips
from hydrus_motion.annotate.annotator import annotation_parts
from hydrus_motion.annotate.captioner import Captioner
from hydrus_motion.annotate.wd_tagger import Tagger
from hydrus_motion.base import SYSTEM_CLOCK, Clock, Trainer
from hydrus_motion.clips.base import ClipCutter
from hydrus_motion.clips.cut import FfmpegCutter
from hydrus_motion.clips.done import RECORD_NAME as CUT_RECORD
from hydrus_motion.clips.fields import measure_scan
from hydrus_motion.clips.plan import plan_clips
from hydrus_motion.config import Config, clips_dir, dataset_dir, training_dir
from hydrus_motion.dataset.build import ExportResult, export_dataset
from hydrus_motion.dataset.manifest import read_dataset_json
from hydrus_motion.errors import HydrusMotionError, SidecarError
from hydrus_motion.hydrus.gateway import HydrusGateway
from hydrus_motion.hydrus.push import PushOutcome, push_clips
from hydrus_motion.hydrus.samples import announce, publish_samples
from hydrus_motion.hydrus.scheme import annotated_notes, clip_notes, clip_tags
from hydrus_motion.ingest.content import file_sha256, source_fingerprint
from hydrus_motion.probe import frame_count_slack, probe_video
from hydrus_motion.progress import Progress, no_progress
from hydrus_motion.promotion import gate_decision, keep_candidate, promote_run, read_decision
from hydrus_motion.records import Clip, ClipPlan, ClipSpan, Scan, SceneList, VideoInfo
from hydrus_motion.reports import ExportReport, NightlyDetails, TrainReport
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
from hydrus_motion.tools import fit_name
from hydrus_motion.train import SubprocessTrainer
from hydrus_motion.training_runs import (
    TrainingPlan,
    current_run,
    latest_finished,
    mark_published,
    plan_training,
    read_run,
    samples_published,
)

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

    return OnePassCutter(cfg).run(info, out_dir, settle)


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


class NightlyFailed(HydrusMotionError):
    """A nightly step failed; `details` holds what was done before it (run history)."""

    def __init__(self, message: str, details: NightlyDetails, hint: str | None = None):
        super().__init__(message, hint)
        self.details = details


def nightly(cfg: Config, store: Store, gateway: HydrusGateway, *,
            trainer: Trainer | None = None, clock: Clock = SYSTEM_CLOCK) -> NightlyDetails:
    """The nightly job (`hydrus-motion nightly`, the daemon's schedule). Returns what it
    did for the run history; raises NightlyFailed with the same, and the previous
    checkpoint stays current. `trainer`: SubprocessTrainer unless given."""
    from hydrus_motion.hydrus.push import summarise

    details = NightlyDetails()
    outcomes = reconcile(gateway, store, cfg)
    details.reconcile = {"checked": len(outcomes), **summarise(outcomes)}
    try:
        exported = export(gateway, cfg, dataset_dir(cfg))
    except HydrusMotionError as exc:
        raise NightlyFailed(f"export failed: {exc.message}", details, exc.hint) from None
    details.export = ExportReport(
        dataset_id=exported.dataset_id, changed=exported.changed, clips=len(exported.entries),
        new=exported.new, removed=exported.removed, skipped=len(exported.skipped),
        frames=sum(e.frames or 0 for e in exported.entries))
    root = training_dir(cfg)
    plan = plan_training(root, exported.dataset_id, cfg.nightly.train, clock.now())
    if plan.action != "skip" and not exported.entries:
        plan = TrainingPlan("skip", "no approved clips yet")
    if plan.action != "skip" and not cfg.train.pretrained_model:
        plan = TrainingPlan("skip", "train.pretrained_model is not set")
    details.train = TrainReport(plan.action, plan.reason, plan.run_id)
    log.info("nightly: training: %s (%s)", plan.action, plan.reason)
    if plan.action != "skip":
        started = time.monotonic()
        try:
            run = (trainer or SubprocessTrainer()).train(
                cfg, exported.build, plan.run_dir, resume=plan.action == "resume",
                init_module=plan.init_module, sample_prompts=cfg.nightly.sample_prompts)
        except HydrusMotionError as exc:
            details.train.outcome, details.train.error = "failed", exc.message
            raise NightlyFailed(f"training run {plan.run_id} failed: {exc.message}", details,
                                hint="the previous checkpoint stays current; an interrupted "
                                     "run is resumed by the next nightly run") from None
        details.train = dataclasses.replace(
            details.train, outcome="trained", steps=run["steps"], final_loss=run["final_loss"],
            seconds=round(time.monotonic() - started, 1), dataset_clips=len(exported.entries),
            eval=eval_summary(run))
        details.promotion = gate_and_promote(cfg, root, plan.run_dir, run)
    newest, current = latest_finished(root), current_run(root)
    for shown in dict.fromkeys(r for r in (newest, current) if r is not None):
        if samples_published(shown):
            continue  # also retries a failed try
        try:
            details.samples = publish_run_to_hydrus(gateway, cfg, shown)
        except HydrusMotionError as exc:
            raise NightlyFailed(f"the samples of run {shown.name} could not be put into "
                                f"Hydrus: {exc.message}", details,
                                hint="the checkpoints are in place; the next nightly run "
                                     "tries the samples again") from None
    return details


def gate_and_promote(cfg: Config, root: Path, run_dir: Path, run: dict[str, Any]) -> dict:
    """The promotion gate: current only when the held-out loss is no worse than the
    current module's by more than nightly.gate_margin; else kept as a candidate."""
    current = current_run(root)
    decision = gate_decision(run, current, read_run(current), cfg.nightly)
    if decision.promoted:
        return promote_run(root, run_dir, cfg.nightly, decision)
    return keep_candidate(run_dir, decision)


def eval_summary(run: dict[str, Any]) -> dict[str, Any]:
    ev = run.get("eval") or {}
    return {"before": (ev.get("before") or {}).get("loss"),
            "after": (ev.get("after") or {}).get("loss"),
            "reference": (ev.get("reference") or {}).get("loss"),
            "clips": len(ev.get("measured") or [])}


def publish_run_to_hydrus(gateway: HydrusGateway, cfg: Config, run_dir: Path) -> dict[str, Any]:
    """The current run's samples into Hydrus, and a popup saying what finished."""
    run = read_run(run_dir) or {}
    trained_on = read_dataset_json(Path(run.get("dataset") or run_dir)) or {}
    run = {**run, "clips": trained_on.get("counts", {}).get("clips", "?"),
           "decision": read_decision(run_dir)}
    outputs = run.get("outputs", {})
    files = [Path(s[kind]) for s in outputs.get("compare") or outputs.get("samples") or []
             for kind in ("mp4", "gif")]
    if outputs.get("loss_curve"):
        files.append(Path(outputs["loss_curve"]))
    published = publish_samples(gateway, cfg, run, run_dir.name, files)
    hashes = [p.hash for p in published if p.result.wrote]
    mark_published(run_dir, hashes)
    loss = run.get("final_loss")
    loss_text = f", loss {loss:.4f}" if isinstance(loss, (int, float)) else ""
    decision = run["decision"] or {}
    verdict = "" if decision.get("promoted", True) else \
        f"; NOT promoted ({decision.get('reason')}): hydrus-motion promote {run_dir.name}"
    text = (f"motion module run {run_dir.name} finished: {run.get('steps')} steps{loss_text}; "
            f"{len(hashes)} sample(s){verdict}")
    popup = cfg.nightly.popup and announce(gateway, text, hashes)
    return {"files": len(files), "in_hydrus": len(hashes), "popup": bool(popup)}
