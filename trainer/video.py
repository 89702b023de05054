"""Read chosen frames of a clip through ffmpeg, resized and centre-cropped by ffmpeg itself.

One ffmpeg per sample: `select` keeps only the wanted frame numbers, `scale` + `crop` make
the training size, and raw RGB comes back on a pipe. Every failure is a BadClip naming
the file and the reason; nothing here retries.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np


class BadClip(Exception):
    """A clip cannot be used; str() names the file and the reason."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed or not on PATH (the trainer decodes "
                           "clips with it)")
    return found


def probe(path: Path, timeout_s: float = 60.0) -> dict:
    """Frame count, fps, width and height of the first video stream."""
    argv = [_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-count_packets",
            "-show_entries", "stream=width,height,avg_frame_rate,nb_read_packets",
            "-of", "json", str(path)]
    out = _run(argv, path, timeout_s)
    try:
        stream = json.loads(out)["streams"][0]
        num, _, den = stream["avg_frame_rate"].partition("/")
        return {"frames": int(stream["nb_read_packets"]),
                "fps": float(num) / float(den or 1) if float(den or 1) else 0.0,
                "width": int(stream["width"]), "height": int(stream["height"])}
    except (ValueError, KeyError, IndexError, ZeroDivisionError):
        raise BadClip(path, "ffprobe found no readable video stream") from None


def read_frames(path: Path, indices: list[int], width: int, height: int,
                timeout_s: float = 120.0) -> np.ndarray:
    """Frames `indices` (may repeat, any order) as uint8 (len, height, width, 3).

    The picture is scaled to cover width x height keeping its aspect ratio, then
    centre-cropped: the official short-side resize + CenterCrop, done by ffmpeg.
    """
    wanted = sorted(set(indices))
    select = "+".join(f"eq(n\\,{i})" for i in wanted)
    vf = (f"select='{select}',scale={width}:{height}:force_original_aspect_ratio=increase"
          f":flags=bilinear,crop={width}:{height}")
    argv = [_tool("ffmpeg"), "-v", "error", "-nostdin", "-i", str(path), "-an", "-vf", vf,
            "-fps_mode", "passthrough", "-frames:v", str(len(wanted)),
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = _run(argv, path, timeout_s, binary=True)
    frame_bytes = width * height * 3
    got = len(raw) // frame_bytes
    if got < len(wanted):
        raise BadClip(path, f"decoded {got} of the {len(wanted)} frames wanted (last wanted "
                            f"frame {wanted[-1]}); the clip is shorter than recorded or damaged")
    frames = np.frombuffer(raw[: got * frame_bytes], np.uint8).reshape(got, height, width, 3)
    position = {index: k for k, index in enumerate(wanted)}
    return frames[[position[i] for i in indices]]


def _run(argv: list[str], path: Path, timeout_s: float, binary: bool = False):
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise BadClip(path, f"{Path(argv[0]).name} took longer than {timeout_s:g} s") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise BadClip(path, f"{Path(argv[0]).name} failed: {tail[0]}")
    return proc.stdout if binary else proc.stdout.decode("utf-8", "replace")


def sample_indices(n_frames: int, count: int, stride: int, start: int) -> list[int]:
    """`count` indices from `start` at `stride`, as AnimateDiff's WebVid loader picks them.

    A clip shorter than (count-1)*stride+1 frames gets a smaller effective stride (the
    window spans the whole clip); one shorter than `count` frames repeats frames.
    """
    span = min(n_frames, (count - 1) * stride + 1)
    start = max(0, min(start, n_frames - span))
    return [int(v) for v in np.linspace(start, start + span - 1, count)]


def window_starts(n_frames: int, count: int, stride: int, windows: int) -> list[int]:
    """Up to `windows` evenly spread window starts (the cached windows of a clip)."""
    span = min(n_frames, (count - 1) * stride + 1)
    last = n_frames - span
    if last <= 0 or windows == 1:
        return [0]
    return sorted({round(last * k / (windows - 1)) for k in range(windows)})
