"""Detection and cutting in one decode, for a new video (no current sidecar): issue 17.

    info, plan = OnePassCutter(cfg).run(info, out_dir, settle)

The source is decoded once, in our own process (clips/inprocess.py, PyAV): each frame
gives the analysis frame `scenes` sees (the same chain, so the same cuts and bars) and
the frame at its stored size, after the deinterlacing filters. Detection runs on the
first as frames arrive; the router (onepass_plan.py) hands each full frame, `lag` frames
later, to the encoder of its predicted clip: the two-pass cutter's filters after that
point (crop, lanczos scale, setsar, yuv420p) and encoder settings, writing into a
scratch folder. No frame is copied or piped on the way.

When the decode ends, `settle` writes the sidecar exactly as `scenes` does and plans
the clips from it exactly as `slice` does. Provisional clips equal to a planned span
(frames, crop, timing) and verified (frame count from the MP4 index) are recorded in
`.clips-cut.json` and renamed into the clips folder; everything else is deleted. The
two-pass cutter then finds those clips finished and cuts only the other spans (long
scenes that were split, mispredicted crops, frames that are not evenly timed), by
seeking: the result is the two-pass result, frame for frame. A kill during the decode
leaves no sidecar and no clip (only the scratch folder, removed by the next cut); a
daemon stop ends the decode at the next frame (`Interrupted`, the job queued again). A
video PyAV cannot decode to the end gives up the one pass (`GiveUp`) before anything is
written: the caller takes the two-pass path.

The encoders run in a thread of their own, fed in order (`_EncoderThread`), so libx264
is not kept waiting while the decoder and the detector work.

Memory: the lag buffer (trim + detector latency, ~20 decoded frames), the encoder
thread's queue (16 frames) and one encoder's own buffers, whatever the length of a
scene.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import shutil
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from hydrus_motion.clips import inprocess
from hydrus_motion.clips.batch import crop_args, output_size
from hydrus_motion.clips.codec import check_codec, codec_options
from hydrus_motion.clips.cut import clip_filename, estimate_bytes
from hydrus_motion.clips.done import (
    clip_key,
    done_entry,
    finished_clip,
    load_done,
    save_done,
)
from hydrus_motion.clips.fields import deinterlace_filter, filter_name
from hydrus_motion.clips.inprocess import ClipWriter, GiveUp, decode_in_process
from hydrus_motion.clips.mp4 import Mp4Error, read_mp4_video
from hydrus_motion.clips.onepass_plan import (
    Abandon,
    Action,
    Feed,
    Finish,
    Provisional,
    Router,
    Start,
    accepted,
)
from hydrus_motion.clips.plan import resample_ratio
from hydrus_motion.config import Config
from hydrus_motion.errors import LocalFailure
from hydrus_motion.files import temp_dir_beside
from hydrus_motion.records import Clip, ClipPlan, CropBox, SceneList, VideoInfo
from hydrus_motion.tools import children

log = logging.getLogger(__name__)

_EVEN = 0.1  # of a frame: how far a frame's time may be from an even rate's
_QUEUED = 16  # decoded frames' jobs waiting for the encoder thread (~50 MB at 1080p)


def unsupported(cfg: Config, info: VideoInfo | None = None) -> str | None:
    """Why this video or config takes the two-pass path (None: the one pass can run)."""
    if cfg.scenes.detector == "transnetv2":
        return "TransNetV2 reads frames in windows of its own"
    if cfg.scenes.fast_decode:
        return "scenes.fast_decode skips the deblocking filter, which clips must keep"
    if cfg.encode.keep_audio:
        return "encode.keep_audio: the one pass carries video frames only"
    if (missing := inprocess.available()) is not None:
        return missing
    codec = str(codec_options(cfg.encode)["c:v"])
    if not inprocess.encoder_available(codec):
        return f"PyAV's FFmpeg has no {codec} encoder"
    return None


@dataclass
class _Encoder:
    start: Start
    path: Path
    writer: ClipWriter
    rate: Fraction  # frames per second it is encoded at (constant)
    times: list[float] = field(default_factory=list)
    end_frame: int = 0


class OnePassCutter:
    def __init__(self, cfg: Config):
        self.cfg = cfg

    def run(self, info: VideoInfo, out_dir: Path,
            settle: Callable[[SceneList], tuple[VideoInfo, ClipPlan]]
            ) -> tuple[VideoInfo, ClipPlan]:
        """Decode once, write the sidecar (`settle`: sidecar + plan), keep what matches.
        `info.scan` must be measured already when encode.deinterlace is not off."""
        from hydrus_motion.scenes.pyscenedetect import PySceneDetectDetector

        cfg, enc = self.cfg, self.cfg.encode
        check_codec(enc, cfg.tools)
        ratio = resample_ratio(info.fps, enc.fps)
        chain = deinterlace_filter(info.scan, enc.deinterlace)
        session = PySceneDetectDetector(cfg.scenes, cfg.tools, cfg.clips).start(info)
        meter = session.meter
        latency = min(session.detector.event_buffer_length,
                      math.ceil(cfg.scenes.min_scene_len * float(info.fps)))
        lag = cfg.clips.trim_frames + latency + 1
        router = Router(cfg.clips, ratio, lag,
                        lambda start, upto: meter.crop(start, upto) if meter else None)
        out_dir = Path(out_dir)
        try:
            self._check_space(info, out_dir)
            with temp_dir_beside(out_dir) as scratch:
                made = _Encoders(self, info, scratch, ratio, chain)
                worker = _EncoderThread(made)
                buffer: deque[tuple[int, float, object]] = deque()
                try:
                    for frame, picture in decode_in_process(
                            info, long_side=cfg.scenes.analysis_size, chain=chain):
                        children.check_stopping("the one pass")  # no child to kill
                        actions: list[Action] = []
                        for cut in session.add(frame.time, frame.image):
                            actions += router.cut(cut)
                        buffer.append((frame.index, frame.time, picture))
                        worker.submit(made.jobs(actions + router.frame(frame.index), buffer))
                        while buffer and buffer[0][0] < router.decided:
                            buffer.popleft()
                    worker.submit(made.jobs(router.end(session.frames), buffer))
                    buffer.clear()
                    worker.join()
                    provisional = made.finish_all()
                except BaseException:
                    worker.cancel()
                    made.kill_all()
                    raise
                scenes = session.finish()
                info, plan = settle(scenes)
                self._keep(info, plan, accepted(list(plan.spans), provisional), made, out_dir)
        except OSError as exc:  # our own writes: the clips' disk, not the video
            raise LocalFailure(exc.filename or out_dir, f"cutting failed: {exc.strerror or exc}",
                               hint="free space or fix permissions on the clips folder, "
                                    "then run again") from None
        return info, plan

    def _check_space(self, info: VideoInfo, out_dir: Path) -> None:
        """As the cutter checks it, for every frame of the video (the plan is not known)."""
        enc = self.cfg.encode
        out_dir.mkdir(parents=True, exist_ok=True)
        frames = info.frames_hint or round(float(info.fps) * (info.duration or 0))
        need = estimate_bytes(frames, *output_size(info.width, info.height, enc.max_short_side),
                              enc.crf, enc.preset)
        free = shutil.disk_usage(out_dir).free
        if need + enc.keep_free_mb * 2**20 > free:
            raise LocalFailure(out_dir, f"not enough free space to cut {info.path.name}: "
                               f"needs ~{need / 1e9:.2f} GB plus {enc.keep_free_mb} MiB kept "
                               f"free (encode.keep_free_mb), {free / 1e9:.2f} GB free",
                               hint="free some space (or move paths.clips_dir) and run again")

    def _keep(self, info: VideoInfo, plan: ClipPlan, keep: dict, made: _Encoders,
              out_dir: Path) -> None:
        enc = self.cfg.encode
        done = load_done(out_dir)
        moves = []
        for span, clip in keep.items():
            segment, path = made.paths[clip.key], out_dir / clip_filename(info.path, span)
            key = clip_key(info, enc, span)
            if finished_clip(path, key, span, done) is not None:
                continue  # cut and verified before (and maybe recorded): left as it is
            video = read_mp4_video(segment)
            final = Clip(path=path, scene=span.scene,
                         start_frame=span.start_frame, end_frame=span.end_frame,
                         frames=video.frames, fps=float(made.fps), width=video.width,
                         height=video.height, crop=span.crop,
                         deinterlace=filter_name(made.chain))
            done[final.path.name] = done_entry(segment, key, final)
            moves.append((segment, final.path))
        if moves:
            save_done(out_dir, done)  # before the renames: see done.py
        for segment, path in moves:
            os.replace(segment, path)
        log.info("%s: one pass: %d of %d clips cut while detecting%s", info.path.name,
                 len(moves), len(plan.spans),
                 f"; {len(plan.spans) - len(moves)} left to the cutter"
                 if len(moves) < len(plan.spans) else "")


@dataclass(frozen=True)
class _Job:
    """One action for the encoders, with its frame or rate taken from the buffer."""

    action: Action
    rate: Fraction | None = None  # Start: the constant rate the clip is encoded at
    time: float = 0.0  # Feed: the frame's time
    picture: object = None  # Feed: the decoded frame


class _EncoderThread:
    """The encoders' work in a thread of its own, `_QUEUED` frames behind the decode:
    libx264 gets its next frame while the decoder and the detector run, instead of
    waiting for them (about 2 s of the bench video's 22 s on 2 cores). The
    router and the buffer stay with the decode; jobs run in order, so the clips are
    those of one thread. An encoder error comes back at the next `submit` or `join`."""

    def __init__(self, made: _Encoders):
        self._made = made
        self._queue: queue.Queue[list[_Job] | None] = queue.Queue(maxsize=_QUEUED)
        self._error: BaseException | None = None
        self._cancelled = False
        self._thread = threading.Thread(target=self._loop, name="one-pass-encoder",
                                        daemon=True)
        self._thread.start()

    def submit(self, jobs: list[_Job]) -> None:
        if self._error is not None:
            raise self._error
        if jobs:
            self._queue.put(jobs)

    def join(self) -> None:
        """Wait for every job submitted; raise the error that stopped them, if any."""
        self._stop()
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        """Skip the jobs not run yet and wait for the one running (the caller kills)."""
        self._cancelled = True
        self._stop()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)  # the loop drains the queue, so this never waits long
            self._thread.join()

    def _loop(self) -> None:
        while (jobs := self._queue.get()) is not None:
            if self._error is None and not self._cancelled:
                try:
                    self._made.apply(jobs)
                except BaseException as exc:  # noqa: BLE001 - raised again in the decode thread
                    self._error = exc


class _Encoders:
    """The clips' encoders, driven by the router's actions."""

    def __init__(self, owner: OnePassCutter, info: VideoInfo, scratch: Path, ratio, chain):
        self.cfg = owner.cfg
        self.info = info
        self.scratch = scratch
        self.fps = info.fps * ratio if ratio else info.fps  # output frame rate
        self.ratio = ratio
        self.chain = chain
        self.codec = codec_options(owner.cfg.encode)
        self.running: dict[int, _Encoder] = {}
        self.done: list[Provisional] = []
        self.paths: dict[tuple[int, int, CropBox | None], Path] = {}

    def jobs(self, actions: list[Action], buffer: deque) -> list[_Job]:
        """The actions with what the encoders need from the buffer (decode side)."""
        jobs = []
        for action in actions:
            if isinstance(action, Start):
                jobs.append(_Job(action, rate=self._rate(action, buffer)))
            elif isinstance(action, Feed):
                index, time, picture = buffer[action.frame - buffer[0][0]]
                assert index == action.frame
                jobs.append(_Job(action, time=time, picture=picture))
            else:
                jobs.append(_Job(action))
        return jobs

    def apply(self, jobs: list[_Job]) -> None:
        """Run the jobs (encoder side: `_EncoderThread`)."""
        import av

        try:
            for job in jobs:
                self._act(job)
        except av.FFmpegError as exc:
            if isinstance(exc, OSError):
                raise  # our own writes: the clips' disk (run() says so)
            self.kill_all()
            raise GiveUp(f"PyAV could not encode a clip ({exc})") from None

    def _act(self, job: _Job) -> None:
        action = job.action
        if isinstance(action, Start):
            assert job.rate is not None
            self.running[action.clip] = self._start(action, job.rate)
        elif isinstance(action, Feed):
            encoder = self.running[action.clip]
            encoder.times.append(job.time)
            encoder.writer.write(job.picture)
        elif isinstance(action, Finish):
            encoder = self.running.pop(action.clip)
            encoder.end_frame = action.end_frame
            encoder.writer.close()
            self._settle(encoder)
        elif isinstance(action, Abandon):
            self.running.pop(action.clip).writer.abort()

    def finish_all(self) -> list[Provisional]:
        assert not self.running, "the router finishes or abandons every clip it starts"
        return self.done

    def kill_all(self) -> None:
        for encoder in self.running.values():
            encoder.writer.abort()
        self.running.clear()

    def _rate(self, start: Start, buffer: deque) -> Fraction:
        """The constant rate a clip is encoded at: the output rate when resampling, else
        the source's, or for a VFR source the rate its frames in the buffer show (a phone
        video at a steady 30 fps after a slow start); `_even` checks it held."""
        if self.ratio is not None:
            return self.fps
        times = [t for index, t, _ in buffer if index >= start.start_frame]
        if len(times) < 2 or times[-1] <= times[0]:
            return self.fps
        step = (times[-1] - times[0]) / (len(times) - 1)
        if abs(step * self.fps - 1) <= _EVEN:
            return self.fps
        return Fraction(1 / step).limit_denominator(1001)

    def _start(self, start: Start, rate: Fraction) -> _Encoder:
        info, enc = self.info, self.cfg.encode
        crop = start.crop
        size = output_size(crop.width if crop else info.width,
                           crop.height if crop else info.height, enc.max_short_side)
        steps: list[tuple[str, str | None]] = [
            ("crop", ":".join(f"{k}={v}" for k, v in crop_args(crop, info).items()))
        ] if crop else []
        steps += [("scale", f"{size[0]}:{size[1]}:flags=lanczos"), ("setsar", "1"),
                  ("format", "yuv420p")]
        path = self.scratch / f"clip{start.clip:06d}.mp4"
        return _Encoder(start, path, ClipWriter(path, self.codec, rate, steps, size), rate)

    def _settle(self, encoder: _Encoder) -> None:
        """Check a finished clip: kept when its MP4 holds every frame it was fed."""
        start, fed = encoder.start, len(encoder.times)
        try:
            frames = read_mp4_video(encoder.path).frames
        except (Mp4Error, OSError) as exc:
            log.warning("%s: clip from frame %d came out unreadable (%s); it is cut again",
                        self.info.path.name, start.start_frame, exc)
            return
        if frames != fed:
            log.warning("%s: clip from frame %d came out with %d frames instead of %d; it is "
                        "cut again", self.info.path.name, start.start_frame, frames, fed)
            return
        clip = Provisional(start.start_frame, encoder.end_frame, start.crop,
                           self._even(encoder))
        self.done.append(clip)
        self.paths[clip.key] = encoder.path

    def _even(self, encoder: _Encoder) -> bool:
        """A CFR encode keeps the clip's timing: always when resampling (the two-pass cut
        retimes to the output rate too), else when its source frames are evenly spaced."""
        if self.ratio is not None:
            return True
        times, step = encoder.times, float(1 / encoder.rate)
        return all(abs(t - times[0] - i * step) <= _EVEN * step for i, t in enumerate(times))
