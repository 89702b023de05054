"""Detection and cutting in one decode, for a new video (no current sidecar): issue 17.

    info, plan = OnePassCutter(cfg).run(info, out_dir, settle)

One ffmpeg decodes the source once and writes two raw streams: the analysis frames
`scenes` sees (frames.decode_with_full: the same chain, so the same cuts and bars) and
every frame at its stored size, in the decoder's own pixel format. Detection runs on
the first as frames arrive; the router (onepass_plan.py) sends each full frame, `lag`
frames later, to the encoder of its predicted clip: one ffmpeg per clip reading raw
frames on stdin, with the two-pass cutter's filters after that point (crop, lanczos
scale, setsar, yuv420p) and encoder settings, into a scratch folder.

When the decode ends, `settle` writes the sidecar exactly as `scenes` does and plans
the clips from it exactly as `slice` does. Provisional clips equal to a planned span
(frames, crop, timing) and verified (frame count from the MP4 index) are recorded in
`.clips-cut.json` and renamed into the clips folder; everything else is deleted. The
two-pass cutter then finds those clips finished and cuts only the other spans (long
scenes that were split, mispredicted crops, frames that are not evenly timed), by
seeking: the result is the two-pass result, frame for frame. A kill during the decode
leaves no sidecar and no clip (only the scratch folder, removed by the next cut).

Memory: the lag buffer (trim + detector latency, ~20 full frames), two bounded queues
and the encoders' own buffers, whatever the length of a scene.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from hydrus_motion.clips.batch import crop_args, output_size
from hydrus_motion.clips.codec import check_codec, codec_argv
from hydrus_motion.clips.cut import clip_filename, estimate_bytes
from hydrus_motion.clips.done import (
    clip_key,
    done_entry,
    finished_clip,
    load_done,
    save_done,
)
from hydrus_motion.clips.fields import deinterlace_filter, filter_name
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
from hydrus_motion.errors import LocalFailure, ToolFailed
from hydrus_motion.files import temp_dir_beside
from hydrus_motion.frames import FullFrames, decode_with_full
from hydrus_motion.probe import ffmpeg_failure
from hydrus_motion.records import Clip, ClipPlan, CropBox, SceneList, VideoInfo
from hydrus_motion.tools import StreamingTool, ffmpeg_path_arg, find_tool

log = logging.getLogger(__name__)

# planar formats a raw pipe carries as they are: (chroma shift x, y, bytes per sample)
_PLANAR = {"yuv420p": (1, 1, 1), "yuvj420p": (1, 1, 1), "yuv422p": (1, 0, 1),
           "yuvj422p": (1, 0, 1), "yuv444p": (0, 0, 1), "yuvj444p": (0, 0, 1),
           "yuv420p10le": (1, 1, 2), "yuv422p10le": (1, 0, 2), "yuv444p10le": (0, 0, 2)}
_EVEN = 0.1  # of a frame: how far a frame's time may be from an even rate's
_MAX_FINISHING = 2  # encoders flushing at once before the pass waits for the oldest


def frame_bytes(pix_fmt: str, width: int, height: int) -> int | None:
    """Bytes of one raw frame, or None for a format the one pass does not carry."""
    if pix_fmt not in _PLANAR:
        return None
    sx, sy, size = _PLANAR[pix_fmt]
    chroma = (-(-width >> sx) if sx else width) * (-(-height >> sy) if sy else height)
    return (width * height + 2 * chroma) * size


def unsupported(cfg: Config, info: VideoInfo | None = None) -> str | None:
    """Why this video or config takes the two-pass path (None: the one pass can run)."""
    if os.name != "posix":
        return "the second frame pipe needs POSIX"
    if cfg.scenes.detector == "transnetv2":
        return "TransNetV2 reads frames in windows of its own"
    if cfg.scenes.fast_decode:
        return "scenes.fast_decode skips the deblocking filter, which clips must keep"
    if cfg.encode.keep_audio:
        return "encode.keep_audio: the one pass carries video frames only"
    if info is not None and (info.coded_size is None or not info.pix_fmt
                             or frame_bytes(info.pix_fmt, *info.coded_size) is None):
        return f"pixel format {info.pix_fmt} is not carried raw"
    return None


@dataclass
class _Encoder:
    start: Start
    path: Path
    tool: StreamingTool
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
        assert info.coded_size and info.pix_fmt
        ratio = resample_ratio(info.fps, enc.fps)
        full = FullFrames(deinterlace_filter(info.scan, enc.deinterlace), info.pix_fmt,
                          frame_bytes(info.pix_fmt, *info.coded_size) or 0)
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
                made = _Encoders(self, info, scratch, ratio, full.chain)
                buffer: deque[tuple[int, float, bytes]] = deque()
                try:
                    for frame, picture in decode_with_full(
                            info, cfg.tools, long_side=cfg.scenes.analysis_size, full=full):
                        actions: list[Action] = []
                        for cut in session.add(frame.time, frame.image):
                            actions += router.cut(cut)
                        buffer.append((frame.index, frame.time, picture))
                        made.apply(actions + router.frame(frame.index), buffer)
                        while buffer and buffer[0][0] < router.decided:
                            buffer.popleft()
                    made.apply(router.end(session.frames), buffer)
                    buffer.clear()
                    provisional = made.finish_all()
                except BaseException:
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


class _Encoders:
    """The clips' encoder processes, driven by the router's actions."""

    def __init__(self, owner: OnePassCutter, info: VideoInfo, scratch: Path, ratio, chain):
        self.cfg = owner.cfg
        self.info = info
        fps = info.fps * ratio if ratio else info.fps
        self.scratch = scratch
        self.fps = fps  # output frame rate
        self.ratio = ratio
        self.chain = chain
        self.running: dict[int, _Encoder] = {}
        self.finishing: deque[_Encoder] = deque()
        self.done: list[Provisional] = []
        self.paths: dict[tuple[int, int, CropBox | None], Path] = {}

    def apply(self, actions: list[Action], buffer: deque) -> None:
        for action in actions:
            if isinstance(action, Start):
                self.running[action.clip] = self._start(action, self._rate(action, buffer))
            elif isinstance(action, Feed):
                encoder = self.running[action.clip]
                index, time, picture = buffer[action.frame - buffer[0][0]]
                assert index == action.frame
                encoder.times.append(time)
                self._write(encoder, picture)
            elif isinstance(action, Finish):
                encoder = self.running.pop(action.clip)
                encoder.end_frame = action.end_frame
                encoder.tool.close_input()
                self.finishing.append(encoder)
                while len(self.finishing) > _MAX_FINISHING:
                    self._settle(self.finishing.popleft())
            elif isinstance(action, Abandon):
                encoder = self.running.pop(action.clip)
                encoder.tool.__exit__(None, None, None)
                encoder.path.unlink(missing_ok=True)

    def finish_all(self) -> list[Provisional]:
        while self.finishing:
            self._settle(self.finishing.popleft())
        return self.done

    def kill_all(self) -> None:
        for encoder in [*self.running.values(), *self.finishing]:
            encoder.tool.__exit__(None, None, None)
        self.running.clear()
        self.finishing.clear()

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
        width, height = info.coded_size or (info.width, info.height)
        crop = start.crop
        size = output_size(crop.width if crop else info.width,
                           crop.height if crop else info.height, enc.max_short_side)
        steps = [f"crop={':'.join(f'{k}={v}' for k, v in crop_args(crop, info).items())}"
                 ] if crop else []
        steps += [f"scale={size[0]}:{size[1]}:flags=lanczos", "setsar=1", "format=yuv420p"]
        path = self.scratch / f"clip{start.clip:06d}.mp4"
        argv = [find_tool(self.cfg.tools.ffmpeg), "-hide_banner", "-nostdin", "-nostats",
                "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", info.pix_fmt,
                "-s", f"{width}x{height}",
                "-framerate", f"{rate.numerator}/{rate.denominator}",
                *info.colour.input_args(), "-i", "pipe:0", "-vf", ",".join(steps), *codec_argv(enc),
                "-fps_mode", "passthrough", "-map_metadata", "-1", "-an", "-sn", "-dn",
                "-movflags", "+faststart", "-f", "mp4", "-y", ffmpeg_path_arg(path)]
        tool = StreamingTool(argv, timeout_s=self.cfg.tools.timeout_s, stdin=subprocess.PIPE)
        return _Encoder(start, path, tool, rate)

    def _write(self, encoder: _Encoder, picture: bytes) -> None:
        try:
            encoder.tool.write(picture)
        except ToolFailed:
            self._fail(encoder)

    def _settle(self, encoder: _Encoder) -> None:
        """Wait for a finished clip's encoder and check the clip it wrote."""
        try:
            encoder.tool.finish()
        except ToolFailed:
            self._fail(encoder)
        finally:
            encoder.tool.__exit__(None, None, None)
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

    def _fail(self, encoder: _Encoder) -> None:
        tool = encoder.tool
        exc = ToolFailed(f"{Path(tool.argv[0]).name} failed", argv=tool.argv,
                         returncode=tool.proc.poll(), stderr_tail=tool.stderr_tail)
        self.kill_all()
        raise ffmpeg_failure(self.info.path, exc, "cutting failed") from None
