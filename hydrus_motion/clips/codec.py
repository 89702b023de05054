"""The video encoder of a cut, `encode.codec`: libx264 (CPU) or h264_nvenc (NVIDIA GPU).

    check_codec(cfg.encode, cfg.tools)   # once before cutting: a clear error, not a
                                         # failed cut blamed on the video
    codec_options(cfg.encode)            # ffmpeg output options, both cutters

NVENC has no crf: its constant-quality mode (`-rc vbr -cq N -b:v 0`) takes the same
0-51 scale (0 there means "let the driver pick", so crf 0 becomes cq 1), and x264's
preset names map to the nearest of p1 (fastest) to p7 (best).
"""

from __future__ import annotations

import functools

from hydrus_motion.config import EncodeConfig, ToolsConfig
from hydrus_motion.errors import ToolFailed, ToolMissing
from hydrus_motion.tools import find_tool, run_tool

NVENC_PRESETS = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3",
                 "fast": "p4", "medium": "p5", "slow": "p6", "slower": "p7", "veryslow": "p7"}


def codec_options(enc: EncodeConfig) -> dict[str, object]:
    """`-c:v` and its quality options, as ffmpeg-python output keywords."""
    if enc.codec == "nvenc":
        return {"c:v": "h264_nvenc", "preset": NVENC_PRESETS[enc.preset], "rc": "vbr",
                "cq": max(1, enc.crf), "b:v": 0}
    options: dict[str, object] = {"c:v": "libx264", "crf": enc.crf, "preset": enc.preset}
    if enc.tune:
        options["tune"] = enc.tune
    return options


def codec_argv(enc: EncodeConfig) -> list[str]:
    """The same options as an argv fragment."""
    return [part for key, value in codec_options(enc).items() for part in (f"-{key}", str(value))]


def check_codec(enc: EncodeConfig, tools: ToolsConfig) -> None:
    """ToolMissing when `encode.codec` cannot encode on this machine (x264 always can)."""
    if enc.codec == "nvenc":
        _check_nvenc(find_tool(tools.ffmpeg))


@functools.lru_cache(maxsize=4)
def _check_nvenc(ffmpeg: str) -> None:
    hint = ("set encode.codec: x264, or use an ffmpeg built with NVENC on a machine with an "
            "NVIDIA GPU and its driver")
    listed = run_tool([ffmpeg, "-hide_banner", "-encoders"], timeout_s=60).stdout
    if b" h264_nvenc " not in listed:
        raise ToolMissing(f"encode.codec is nvenc, but {ffmpeg} has no h264_nvenc encoder",
                          hint=hint)
    try:  # listed is not enough: the driver and a GPU must be there too
        run_tool([ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi",
                  "-i", "color=black:s=256x256:r=25", "-frames:v", "2", "-c:v", "h264_nvenc",
                  "-f", "null", "-"], timeout_s=120)
    except ToolFailed as exc:
        last = exc.stderr_tail.splitlines()[-1] if exc.stderr_tail else exc.message
        raise ToolMissing(f"encode.codec is nvenc, but h264_nvenc cannot encode here ({last})",
                          hint=hint) from None
