"""One ffmpeg run for a batch of clips: which clips go together, and its command line.

Pure apart from building argv; `cut.py` runs it and checks what came out.

    decode from the batch's seek point (the key frame at or before its first clip)
      -> [bwdif / fieldmatch when the source has fields: one frame out per frame in]
      -> select t >= that key frame (drops what a decoder returns from before it)
      -> select by frame index, counted from the key frame (only frames inside the
         batch's clips; gaps never reach the encoder)
      -> [showinfo: each kept frame's time, checked against the timeline]
      -> [setpts when resampling] -> [crop] -> scale -> x264, key frame at each clip's
         first frame -> segment muxer splitting at exactly those frame counts

A batch holds at most `encode.clips_per_run` clips, all with the same crop (one encoder
stream has one picture size), so every expression and the command line stay bounded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from hydrus_motion.clips.codec import codec_options
from hydrus_motion.clips.plan import resampled_frames
from hydrus_motion.clips.timeline import SeekPoint
from hydrus_motion.config import EncodeConfig
from hydrus_motion.records import ClipSpan, CropBox, VideoInfo
from hydrus_motion.tools import ffmpeg_path_arg

# Long select/keyframe expressions go through a script file instead of argv, which is
# limited (128 KiB per argument on Linux, 32 KiB in all on Windows).
_MAX_INLINE_FILTER = 8000


@dataclass(frozen=True)
class Batch:
    spans: tuple[ClipSpan, ...]  # in frame order, none overlapping
    crop: CropBox | None  # shared by every span of the batch


@dataclass(frozen=True)
class CutPlan:
    """What every batch of one video shares."""

    info: VideoInfo
    encode: EncodeConfig
    ratio: Fraction | None  # output/source frame ratio when resampling, else None
    fps: Fraction  # output frame rate
    deinterlace: str | None = None  # filter chain undoing fields (fields.py), run first


def plan_batches(spans: list[ClipSpan], per_run: int) -> list[Batch]:
    """Consecutive clips, at most `per_run` a batch; a change of crop starts a new one."""
    batches: list[Batch] = []
    current: list[ClipSpan] = []
    for span in sorted(spans, key=lambda s: s.start_frame):
        if current and (len(current) >= per_run or span.crop != current[0].crop):
            batches.append(Batch(tuple(current), current[0].crop))
            current = []
        current.append(span)
    if current:
        batches.append(Batch(tuple(current), current[0].crop))
    return batches


def output_size(width: int, height: int, max_short_side: int) -> tuple[int, int]:
    """Display size with square pixels, short side capped (never upscaled), even numbers."""
    short = min(width, height)
    scale = max_short_side / short if max_short_side and short > max_short_side else 1.0
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def batch_size(plan: CutPlan, batch: Batch) -> tuple[int, int]:
    crop = batch.crop
    width, height = (crop.width, crop.height) if crop else (plan.info.width, plan.info.height)
    return output_size(width, height, plan.encode.max_short_side)


def kept_frames(span: ClipSpan, ratio: Fraction | None) -> list[int]:
    """Source frame indexes a clip keeps: all, or the first at or after each output tick
    (see plan.resampled_frames)."""
    if ratio is None:
        return list(range(span.start_frame, span.end_frame))
    p, q = ratio.numerator, ratio.denominator
    return [span.start_frame + i for i in range(span.frames)
            if i == 0 or (i * p) // q > ((i - 1) * p) // q]


def span_expr(span: ClipSpan, ratio: Fraction | None, offset: int = 0) -> str:
    """select expression for one clip; `n` counts frames from frame `offset`."""
    a, b = span.start_frame - offset, span.end_frame - offset
    inside = f"between(n,{a},{b - 1})"
    if ratio is None:
        return inside
    p, q = ratio.numerator, ratio.denominator
    return f"{inside}*gt(floor((n-{a})*{p}/{q}),floor((n-{a}-1)*{p}/{q}))"


def balanced_sum(terms: list[str]) -> str:
    """a+b+c+... as a balanced tree: ffmpeg's parser refuses a chain past ~100 terms."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return f"({balanced_sum(terms[:middle])}+{balanced_sum(terms[middle:])})"


def video_filters(video, plan: CutPlan, batch: Batch, seek: SeekPoint | None, verify: bool):
    """The video filter chain of one batch (ffmpeg-python stream in, stream out)."""
    offset = seek.frame if seek else 0
    for step in (plan.deinterlace or "").split(","):
        if step:  # one frame out per frame in, so select's n still counts source frames
            name, _, args = step.partition("=")
            video = video.filter(name, **dict(a.split("=", 1) for a in args.split(":")))
    if seek:
        video = video.filter("select", f"gte(t,{seek.after_s!r})")
    video = video.filter("select", balanced_sum(
        [span_expr(s, plan.ratio, offset) for s in batch.spans]))
    if verify:
        video = video.filter("showinfo", checksum=0)
    if plan.ratio:
        video = video.filter("setpts", f"N/({plan.fps.numerator}/{plan.fps.denominator})/TB")
    else:  # the batch's first clip from 0 (-copyts kept the source's clock); the muxer
        video = video.filter("setpts", "PTS-STARTPTS")  # resets the clips after it
    if batch.crop:
        video = video.filter("crop", **crop_args(batch.crop, plan.info))
    width, height = batch_size(plan, batch)
    return (video.filter("scale", width, height, flags="lanczos")
            .filter("setsar", 1).filter("format", "yuv420p"))


def crop_args(crop: CropBox, info: VideoInfo) -> dict[str, str]:
    """The crop filter's options: displayed pixels -> this frame's pixels (rotation
    applied already, pixels as stored)."""
    w, h = info.width, info.height
    return {"w": f"iw*{crop.width}/{w}", "h": f"ih*{crop.height}/{h}",
            "x": f"iw*{crop.x}/{w}", "y": f"ih*{crop.y}/{h}"}


def batch_argv(ffmpeg_exe: str, plan: CutPlan, batch: Batch, seek: SeekPoint | None,
               verify: bool, folder: Path) -> list[str]:
    import ffmpeg  # ffmpeg-python: builds the filter graph and argv

    enc, info = plan.encode, plan.info
    source = ffmpeg_path_arg(info.path)
    seek_args = {"ss": f"{seek.seek_s:.6f}", "noaccurate_seek": None} if seek else {}
    video = video_filters(ffmpeg.input(source, **seek_args).video, plan, batch, seek, verify)
    streams = [video]
    counts = [resampled_frames(s.frames, plan.ratio) for s in batch.spans]
    starts = [sum(counts[:i]) for i in range(1, len(counts))]
    keyframes = balanced_sum([f"eq(n,{n})" for n in starts]) if starts else "0"
    pattern = os.path.join(str(folder).replace("%", "%%"), "segment%06d.mp4")
    options = {
        **codec_options(enc),
        "force_key_frames": f"expr:{keyframes}",
        "f": "segment", "segment_format": "mp4",
        "segment_format_options": "movflags=+faststart",
        "reset_timestamps": 1, "map_metadata": -1, "sn": None, "dn": None,
        # stop once the batch's last frame is out, not at the end of the film
        "frames:v": sum(counts),
    }
    if starts:
        options["segment_frames"] = ",".join(map(str, starts))
    else:
        options["segment_time"] = 10**9  # one clip: never split
    if plan.ratio:
        options["r"] = f"{plan.fps.numerator}/{plan.fps.denominator}"
    else:
        options["fps_mode"] = "passthrough"  # keep every selected frame and its time
    options["an"] = None  # audio, when kept, is added per clip afterwards (clips/audio.py)
    out = ffmpeg.output(*streams, pattern, **options)
    if seek:
        out = out.global_args("-copyts")  # t is the frame's own time, as the timeline's
    argv = out.compile(cmd=ffmpeg_exe, overwrite_output=True)
    argv[1:1] = ["-hide_banner", "-nostdin", "-nostats", "-loglevel",
                 "info" if verify else "error"]
    return _long_filter_to_file(argv, folder)


def _long_filter_to_file(argv: list[str], folder: Path) -> list[str]:
    """Move an over-long -filter_complex into a script file ffmpeg reads."""
    i = argv.index("-filter_complex")
    if len(argv[i + 1]) > _MAX_INLINE_FILTER:
        script = folder / "filter.txt"
        script.write_text(argv[i + 1], encoding="utf-8")
        argv[i:i + 2] = ["-filter_complex_script", str(script)]
    return argv
