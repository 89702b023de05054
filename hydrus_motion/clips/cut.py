"""Frame-exact cutting: every clip of a video from one decode and one encode.

One ffmpeg run (graph built with ffmpeg-python, run by our `run_tool`):

    decode -> [bwdif / fieldmatch, when the source has fields: frame count kept]
           -> select (only frames inside planned spans; gaps never reach the encoder)
           -> [setpts, when resampling fps] -> [crop to the picture inside black bars]
           -> scale (square pixels, short side cap)
           -> x264 with a key frame forced at each clip's first frame
           -> segment muxer splitting at exactly those frame counts

Selection and split points are frame counts, not times, so they are exact whatever the
container's time base or the source's timing. Spans with different crops are cut by
one run per crop (a filter graph has one crop). Segments are written into a hidden
scratch folder beside the output, each checked against its plan (frame count via
ffprobe), then renamed into place; a failure leaves no clip behind.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

from hydrus_motion.clips.fields import deinterlace_filter, filter_name
from hydrus_motion.clips.plan import resample_ratio, resampled_frames
from hydrus_motion.config import EncodeConfig, ToolsConfig
from hydrus_motion.errors import BadVideo, ToolFailed
from hydrus_motion.probe import explain_ffmpeg_error
from hydrus_motion.records import Clip, ClipSpan, CropBox, VideoInfo
from hydrus_motion.tools import ffmpeg_path_arg, find_tool, run_tool, temp_dir_beside

log = logging.getLogger(__name__)

# Long select/keyframe expressions go through a script file instead of argv, which is
# limited (128 KiB per argument on Linux, 32 KiB in all on Windows).
_MAX_INLINE_FILTER = 8000


class ClipCutter(Protocol):
    def cut(self, info: VideoInfo, spans: list[ClipSpan], out_dir: Path) -> list[Clip]: ...


def clip_filename(video: Path, span: ClipSpan) -> str:
    return f"{video.stem}-scene{span.scene:03d}-{span.start_frame}-{span.end_frame}.mp4"


def output_size(info: VideoInfo, max_short_side: int,
                crop: CropBox | None = None) -> tuple[int, int]:
    """Display size (of the crop, if any) with square pixels, short side capped (never
    upscaled), even numbers."""
    width, height = (crop.width, crop.height) if crop else (info.width, info.height)
    short = min(width, height)
    scale = max_short_side / short if max_short_side and short > max_short_side else 1.0
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


@dataclass(frozen=True)
class _Plan:
    spans: list[ClipSpan]
    counts: list[int]  # frames each output clip will have
    ratio: Fraction | None  # output/source frame ratio when resampling, else None
    fps: Fraction  # output frame rate
    crop: CropBox | None = None  # every span of one run shares its crop
    deinterlace: str | None = None  # filter chain run before select


class FfmpegCutter:
    def __init__(self, encode: EncodeConfig, tools: ToolsConfig):
        self.encode = encode
        self.tools = tools

    def cut(self, info: VideoInfo, spans: list[ClipSpan], out_dir: Path) -> list[Clip]:
        if not spans:
            return []
        ratio = resample_ratio(info.fps, self.encode.fps)
        fields = deinterlace_filter(info.scan, self.encode.deinterlace)
        groups: dict[CropBox | None, list[ClipSpan]] = {}
        for span in spans:
            groups.setdefault(span.crop, []).append(span)
        out_dir = Path(out_dir)
        with temp_dir_beside(out_dir) as scratch:
            clips = []
            for n, (crop, group) in enumerate(groups.items()):
                plan = _Plan(spans=group, counts=[resampled_frames(s.frames, ratio)
                                                  for s in group],
                             ratio=ratio, fps=info.fps * ratio if ratio else info.fps,
                             crop=crop, deinterlace=fields)
                run_dir = scratch / f"run{n}"
                run_dir.mkdir()
                try:
                    run_tool(self._argv(info, plan, run_dir), timeout_s=self.tools.timeout_s)
                except ToolFailed as exc:
                    raise BadVideo(info.path, "cutting failed: "
                                   + explain_ffmpeg_error(exc.stderr_tail)) from None
                clips += self._check(info, plan, run_dir, out_dir)
            for clip, segment in clips:
                os.replace(segment, clip.path)
            order = {(s.start_frame, s.end_frame): i for i, s in enumerate(spans)}
            clips.sort(key=lambda c: order[(c[0].start_frame, c[0].end_frame)])
        log.info("%s: cut %d clips into %s", info.path.name, len(clips), out_dir)
        return [clip for clip, _ in clips]

    def _argv(self, info: VideoInfo, plan: _Plan, scratch: Path) -> list[str]:
        import ffmpeg  # ffmpeg-python: builds the filter graph and argv

        enc = self.encode
        selected = "+".join(_span_expr(s, plan.ratio) for s in plan.spans)
        video = ffmpeg.input(ffmpeg_path_arg(info.path)).video
        for step in (plan.deinterlace or "").split(","):
            if step:  # one frame out per frame in, so select's n still counts source frames
                name, _, args = step.partition("=")
                video = video.filter(name, **dict(a.split("=", 1) for a in args.split(":")))
        video = video.filter("select", selected)
        if plan.ratio:
            video = video.filter("setpts", f"N/({plan.fps.numerator}/{plan.fps.denominator})/TB")
        if plan.crop:  # fractions of the input size: right whatever its pixel aspect
            c, dw, dh = plan.crop, info.width, info.height
            video = video.filter("crop", w=f"iw*{c.width}/{dw}", h=f"ih*{c.height}/{dh}",
                                 x=f"iw*{c.x}/{dw}", y=f"ih*{c.y}/{dh}")
        width, height = output_size(info, enc.max_short_side, plan.crop)
        video = (video.filter("scale", width, height, flags="lanczos")
                 .filter("setsar", 1).filter("format", "yuv420p"))
        streams = [video]
        if enc.keep_audio:
            times = "+".join(f"between(t,{s.start:.6f},{s.end:.6f})" for s in plan.spans)
            streams.append(ffmpeg.input(ffmpeg_path_arg(info.path)).audio
                           .filter("aselect", times).filter("asetpts", "N/SR/TB"))
        starts = _cumulative(plan.counts)[1:-1]  # first frame of every clip after the first
        keyframes = "+".join(f"eq(n,{n})" for n in starts) or "0"
        pattern = os.path.join(str(scratch).replace("%", "%%"), "segment%06d.mp4")
        options = {
            "c:v": "libx264", "crf": enc.crf, "preset": enc.preset,
            "force_key_frames": f"expr:{keyframes}",
            "f": "segment", "segment_format": "mp4",
            "segment_format_options": "movflags=+faststart",
            "reset_timestamps": 1, "map_metadata": -1, "sn": None, "dn": None,
        }
        if starts:
            options["segment_frames"] = ",".join(map(str, starts))
        else:
            options["segment_time"] = 10**9  # one clip: never split
        if enc.tune:
            options["tune"] = enc.tune
        if plan.ratio:
            options["r"] = f"{plan.fps.numerator}/{plan.fps.denominator}"
        else:
            options["fps_mode"] = "passthrough"  # keep every selected frame and its time
        if enc.keep_audio:
            options.update({"c:a": "aac", "b:a": "128k"})
        else:
            options["an"] = None
        out = ffmpeg.output(*streams, pattern, **options)
        argv = out.compile(cmd=find_tool(self.tools.ffmpeg), overwrite_output=True)
        argv[1:1] = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"]
        return _long_filter_to_file(argv, scratch)

    def _check(self, info: VideoInfo, plan: _Plan, scratch: Path,
               out_dir: Path) -> list[tuple[Clip, Path]]:
        segments = sorted(scratch.glob("segment*.mp4"))
        if len(segments) != len(plan.spans):
            raise BadVideo(info.path, f"cutting produced {len(segments)} clips where "
                           f"{len(plan.spans)} were planned")
        checked = []
        for span, want, segment in zip(plan.spans, plan.counts, segments):
            frames, width, height = self._measure(segment)
            if frames != want:
                raise BadVideo(info.path, f"clip of frames {span.start_frame}-{span.end_frame} "
                               f"came out with {frames} frames instead of {want}")
            clip = Clip(path=out_dir / clip_filename(info.path, span), scene=span.scene,
                        start_frame=span.start_frame, end_frame=span.end_frame, frames=frames,
                        fps=float(plan.fps), width=width, height=height, crop=plan.crop,
                        deinterlace=filter_name(plan.deinterlace))
            checked.append((clip, segment))
        return checked

    def _measure(self, clip: Path) -> tuple[int, int, int]:
        argv = [find_tool(self.tools.ffprobe), "-v", "error", "-select_streams", "v:0",
                "-count_packets", "-show_entries", "stream=nb_read_packets,width,height",
                "-of", "json", ffmpeg_path_arg(clip)]
        stream = json.loads(run_tool(argv, timeout_s=300).stdout)["streams"][0]
        return int(stream["nb_read_packets"]), int(stream["width"]), int(stream["height"])


def _span_expr(span: ClipSpan, ratio: Fraction | None) -> str:
    inside = f"between(n,{span.start_frame},{span.end_frame - 1})"
    if ratio is None:
        return inside
    # keep the first source frame at or after each output tick (see plan.resampled_frames)
    p, q, a = ratio.numerator, ratio.denominator, span.start_frame
    return f"{inside}*gt(floor((n-{a})*{p}/{q}),floor((n-{a}-1)*{p}/{q}))"


def _cumulative(counts: list[int]) -> list[int]:
    total, out = 0, [0]
    for c in counts:
        total += c
        out.append(total)
    return out


def _long_filter_to_file(argv: list[str], scratch: Path) -> list[str]:
    """Move an over-long -filter_complex / expression into a script file ffmpeg reads."""
    i = argv.index("-filter_complex")
    if len(argv[i + 1]) > _MAX_INLINE_FILTER:
        script = scratch / "filter.txt"
        script.write_text(argv[i + 1], encoding="utf-8")
        argv[i:i + 2] = ["-filter_complex_script", str(script)]
    return argv
