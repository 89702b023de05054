"""Frame-exact cutting of any number of clips, in batches, resumable.

    clips = FfmpegCutter(cfg.encode, cfg.tools).cut(info, spans, out_dir, progress)

Clips go through ffmpeg in batches of `encode.clips_per_run` (see batch.py): each run
seeks to the key frame at or before its first clip and decodes only from there, so a
two-hour film with 2,000 clips costs about one decode and one encode of the frames it
keeps, with bounded memory and command lines. Frame indexes decide what is kept; the
time of every kept frame is checked against the container's timeline (timeline.py), and
a batch whose frames disagree is cut again from the start of the file. Interlaced and
telecined sources go through bwdif or fieldmatch first (clips/fields.py), one frame out
per frame in, so frame numbers stay exact.

Each batch writes into a hidden scratch folder beside the output; every clip is checked
against its plan (frame count, from its MP4 index) and recorded as finished
(done.py) before it is renamed into place, so a failure leaves no partial clip and a
re-run after a kill cuts only what is not finished yet. Free space is checked before
the first batch, from an estimate of the clips' size.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from fractions import Fraction
from pathlib import Path

from hydrus_motion.clips import batch as batching
from hydrus_motion.clips.audio import add_audio
from hydrus_motion.clips.batch import Batch, CutPlan, kept_frames
from hydrus_motion.clips.codec import check_codec
from hydrus_motion.clips.done import (
    clip_key,
    done_entry,
    finished_clip,
    load_done,
    save_done,
)
from hydrus_motion.clips.fields import deinterlace_filter, filter_name
from hydrus_motion.clips.mp4 import Mp4Error, read_mp4_video
from hydrus_motion.clips.plan import resample_ratio, resampled_frames
from hydrus_motion.clips.timeline import SeekPoint, Timeline, read_timeline
from hydrus_motion.config import EncodeConfig, ToolsConfig
from hydrus_motion.errors import BadVideo, LocalFailure, ToolFailed
from hydrus_motion.files import fit_name, temp_dir_beside
from hydrus_motion.probe import ffmpeg_failure
from hydrus_motion.progress import Progress, no_progress
from hydrus_motion.records import Clip, ClipSpan, VideoInfo
from hydrus_motion.tools import find_tool, run_tool

log = logging.getLogger(__name__)

_SHOWN = re.compile(rb"\[Parsed_showinfo_\d+ @ [^\]]+\] n:\s*\d+ pts:\s*(-?\d+)")
_TIME_BASE = re.compile(rb"\[Parsed_showinfo_\d+ @ [^\]]+\] config in time_base: (\d+)/(\d+)")


def clip_filename(video: Path, span: ClipSpan) -> str:
    """Named after the source; a stem too long for the file-name limit gets a hash."""
    return fit_name(video.stem, f"-scene{span.scene:03d}-{span.start_frame}-"
                                f"{span.end_frame}.mp4")


def estimate_bytes(frames: int, width: int, height: int, crf: int, preset: str) -> int:
    """A generous size for `frames` frames of H.264 at this quality: 0.5 bit per pixel at
    crf 18 (grainy footage; clean footage needs about a third of it), halving every 6 crf,
    doubled for the fastest presets, plus container overhead per frame."""
    bits = 0.5 * 2 ** ((18 - crf) / 6) * (2 if preset in ("ultrafast", "superfast") else 1)
    return int(frames * (width * height * bits / 8 + 200))


class FfmpegCutter:
    def __init__(self, encode: EncodeConfig, tools: ToolsConfig):
        self.encode = encode
        self.tools = tools

    def cut(self, info: VideoInfo, spans: list[ClipSpan], out_dir: Path,
            progress: Progress | None = None) -> list[Clip]:
        if not spans:
            return []
        check_codec(self.encode, self.tools)
        report = progress or no_progress
        out_dir = Path(out_dir)
        ratio = resample_ratio(info.fps, self.encode.fps)
        plan = CutPlan(info=info, encode=self.encode, ratio=ratio,
                       fps=info.fps * ratio if ratio else info.fps,
                       deinterlace=deinterlace_filter(info.scan, self.encode.deinterlace))
        try:
            return self._cut(plan, spans, out_dir, report)
        except OSError as exc:  # our own writes: the clips' disk, not the video
            raise LocalFailure(exc.filename or out_dir, f"cutting failed: {exc.strerror or exc}",
                               hint="free space or fix permissions on the clips folder, "
                                    "then run again; finished clips are kept") from None

    def _cut(self, plan: CutPlan, spans: list[ClipSpan], out_dir: Path,
             report: Progress) -> list[Clip]:
        info = plan.info
        out_dir.mkdir(parents=True, exist_ok=True)
        done = load_done(out_dir)
        keys = {s: clip_key(info, self.encode, s) for s in spans}
        finished: dict[ClipSpan, Clip] = {}
        for span in spans:
            clip = finished_clip(out_dir / clip_filename(info.path, span), keys[span], span, done)
            if clip is not None:
                finished[span] = clip
        kept = len(finished)
        todo = [s for s in spans if s not in finished]
        report(kept, len(spans))
        if todo:
            batches = batching.plan_batches(todo, self.encode.clips_per_run)
            self._check_space(plan, batches, out_dir)
            timeline = read_timeline(info, self.tools)
            if timeline is None and len(batches) > 1:
                log.warning("%s: the container gives no usable frame times; each of %d "
                            "batches decodes from the start (slower, still exact)",
                            info.path.name, len(batches))
            with temp_dir_beside(out_dir) as scratch:
                for number, batch in enumerate(batches):
                    folder = scratch / f"batch{number:06d}"
                    clips = self._cut_batch(plan, batch, timeline, folder, out_dir)
                    for span, (clip, segment) in zip(batch.spans, clips):
                        done[clip.path.name] = done_entry(segment, keys[span], clip)
                    save_done(out_dir, done)  # before the renames: see done.py
                    for span, (clip, segment) in zip(batch.spans, clips):
                        os.replace(segment, clip.path)
                        finished[span] = clip
                    shutil.rmtree(folder, ignore_errors=True)
                    report(len(finished), len(spans))
                    if len(batches) > 1:
                        log.info("%s: cut %d of %d clips (batch %d of %d)", info.path.name,
                                 len(finished), len(spans), number + 1, len(batches))
        log.info("%s: cut %d clips into %s%s", info.path.name, len(spans), out_dir,
                 f" ({kept} finished by an earlier run)" if kept else "")
        return [finished[s] for s in spans]

    def _check_space(self, plan: CutPlan, batches: list[Batch], out_dir: Path) -> None:
        enc = self.encode
        need = sum(estimate_bytes(resampled_frames(s.frames, plan.ratio),
                                  *batching.batch_size(plan, b), enc.crf, enc.preset)
                   for b in batches for s in b.spans)
        floor = enc.keep_free_mb * 2**20
        free = shutil.disk_usage(out_dir).free
        if need + floor > free:
            raise LocalFailure(out_dir, f"not enough free space to cut {plan.info.path.name}: "
                               f"needs ~{need / 1e9:.2f} GB plus {enc.keep_free_mb} MiB kept "
                               f"free (encode.keep_free_mb), {free / 1e9:.2f} GB free",
                               hint="free some space (or move paths.clips_dir) and run again")

    def _cut_batch(self, plan: CutPlan, batch: Batch, timeline: Timeline | None,
                   folder: Path, out_dir: Path) -> list[tuple[Clip, Path]]:
        seek = timeline.seek_point(batch.spans[0].start_frame) if timeline else None
        stderr = self._run(plan, batch, seek, folder)
        if seek is not None and timeline is not None:
            wrong = _first_wrong_frame(stderr, timeline, batch, plan.ratio)
            if wrong is not None:  # the container's times disagree with its decoder here
                log.warning("%s: frame %d is not where the container's times put it; "
                            "cutting frames %d-%d again from the start", plan.info.path.name,
                            wrong, batch.spans[0].start_frame, batch.spans[-1].end_frame)
                shutil.rmtree(folder, ignore_errors=True)
                self._run(plan, batch, None, folder)
        checked = self._check(plan, batch, folder, out_dir)
        if self.encode.keep_audio:
            for span, (_, segment) in zip(batch.spans, checked):
                try:
                    add_audio(find_tool(self.tools.ffmpeg), segment, plan.info.path, span,
                              timeline, self.tools.timeout_s)
                except ToolFailed as exc:
                    raise ffmpeg_failure(plan.info.path, exc, "adding audio failed") from None
        return checked

    def _run(self, plan: CutPlan, batch: Batch, seek: SeekPoint | None, folder: Path) -> bytes:
        folder.mkdir()
        argv = batching.batch_argv(find_tool(self.tools.ffmpeg), plan, batch, seek,
                                   seek is not None, folder)
        try:
            return run_tool(argv, timeout_s=self.tools.timeout_s).stderr
        except ToolFailed as exc:
            tail = "\n".join(line for line in exc.stderr_tail.splitlines()
                             if "Parsed_showinfo" not in line)
            exc = ToolFailed(exc.message, argv=exc.argv, returncode=exc.returncode,
                             stderr_tail=tail)
            failure = ffmpeg_failure(plan.info.path, exc, "cutting failed")
            if (exc.returncode or 0) < 0 and self._disk_full(plan, batch, folder):
                # ffmpeg 5.1's segment muxer can crash (SIGSEGV) on a write error
                failure = LocalFailure(plan.info.path, f"cutting failed: no space left on "
                                       f"device ({failure.reason.split(': ')[-1]})",
                                       hint=failure.hint)
            raise failure from None

    def _disk_full(self, plan: CutPlan, batch: Batch, folder: Path) -> bool:
        enc = self.encode
        need = sum(estimate_bytes(resampled_frames(s.frames, plan.ratio),
                                  *batching.batch_size(plan, batch), enc.crf, enc.preset)
                   for s in batch.spans)
        return shutil.disk_usage(folder).free < need

    def _check(self, plan: CutPlan, batch: Batch, folder: Path,
               out_dir: Path) -> list[tuple[Clip, Path]]:
        info = plan.info
        segments = sorted(folder.glob("segment*.mp4"))
        if len(segments) != len(batch.spans):
            raise BadVideo(info.path, f"cutting produced {len(segments)} clips where "
                           f"{len(batch.spans)} were planned (frames "
                           f"{batch.spans[0].start_frame}-{batch.spans[-1].end_frame})")
        checked = []
        for span, segment in zip(batch.spans, segments):
            want = resampled_frames(span.frames, plan.ratio)
            try:
                video = read_mp4_video(segment)
            except Mp4Error as exc:
                raise BadVideo(info.path, f"clip of frames {span.start_frame}-"
                               f"{span.end_frame} came out unreadable ({exc})") from None
            if video.frames != want:
                raise BadVideo(info.path, f"clip of frames {span.start_frame}-{span.end_frame} "
                               f"came out with {video.frames} frames instead of {want}")
            clip = Clip(path=out_dir / clip_filename(info.path, span), scene=span.scene,
                        start_frame=span.start_frame, end_frame=span.end_frame,
                        frames=video.frames, fps=float(plan.fps), width=video.width,
                        height=video.height, crop=batch.crop,
                        deinterlace=filter_name(plan.deinterlace))
            checked.append((clip, segment))
        return checked


def _first_wrong_frame(stderr: bytes, timeline: Timeline, batch: Batch,
                       ratio: Fraction | None) -> int | None:
    """The first kept frame whose time is not its own in the timeline (None: all right)."""
    tb = _TIME_BASE.search(stderr)
    shown = [int(m.group(1)) for m in _SHOWN.finditer(stderr)]
    expected = [n for span in batch.spans for n in kept_frames(span, ratio)]
    if tb is None:
        return expected[0]
    base = Fraction(int(tb.group(1)), int(tb.group(2)))
    for i, frame in enumerate(expected):
        if i >= len(shown):
            return frame
        if abs(float(shown[i] * base) - timeline.times[frame]) > timeline.tolerance(frame):
            return frame
    return None
