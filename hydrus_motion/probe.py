"""ffprobe -> VideoInfo, and the checks that turn bad input into a clear BadVideo.

    info = probe_video(Path("film.mkv"), tools_cfg)
"""

from __future__ import annotations

import json
import signal
from fractions import Fraction
from pathlib import Path

from hydrus_motion.config import ToolsConfig
from hydrus_motion.errors import BadVideo, LocalFailure, ToolFailed
from hydrus_motion.records import VideoInfo
from hydrus_motion.tools import ffmpeg_path_arg, find_tool, run_tool

# ffmpeg's words for common breakage -> what a person should read.
_KNOWN_FAILURES = (
    ("moov atom not found", "the file is truncated or still being written (no index found)"),
    ("Invalid data found when processing input", "not a video file ffmpeg can read"),
    ("No such file or directory", "file not found"),
    ("End of file", "the file is truncated"),
)


# ffmpeg's words for a failure of this machine, never of the video -> LocalFailure.
_LOCAL_FAILURES = (
    ("No space left on device", "no space left on device"),
    ("Disk quota exceeded", "disk quota exceeded"),
    ("File too large", "file too large for this filesystem or limit"),
    ("Read-only file system", "read-only file system"),
    ("Permission denied", "permission denied"),
    ("Operation not permitted", "permission denied (operation not permitted)"),
    ("Cannot allocate memory", "out of memory"),
    ("Out of memory", "out of memory"),
    ("Too many open files", "too many open files"),
    ("Input/output error", "input/output error (disk or network storage)"),
    ("received signal", "stopped by a signal"),
)
_LOCAL_HINT = ("this machine's fault, not the video's: fix it (free space, permissions, "
               "memory) and run again; the video stays as it is")


def ffmpeg_failure(path: Path, exc: ToolFailed, doing: str = "") -> BadVideo | LocalFailure:
    """The one place an ffmpeg/ffprobe failure is judged: LocalFailure when this machine
    failed (disk full, permission denied, out of memory, killed by a signal, timeout),
    BadVideo only when the source itself cannot be read. `doing`, when given, starts the
    reason ("cutting failed")."""
    prefix = f"{doing}: " if doing else ""
    local = local_failure_reason(exc)
    if local is not None:
        return LocalFailure(path, prefix + local, hint=_LOCAL_HINT)
    return BadVideo(path, prefix + explain_ffmpeg_error(exc.stderr_tail))


def local_failure_reason(exc: ToolFailed) -> str | None:
    """Why this failure is the machine's (None: it may be the input's)."""
    if exc.returncode is None:  # run_tool's timeout
        return exc.message.split(": ", 1)[0]  # "ffmpeg timed out after N s"
    if exc.returncode < 0:
        try:
            name = signal.Signals(-exc.returncode).name
        except ValueError:
            name = f"signal {-exc.returncode}"
        return f"ffmpeg was killed by {name}"
    for needle, reason in _LOCAL_FAILURES:
        if needle in exc.stderr_tail:
            return reason
    return None


def explain_ffmpeg_error(stderr_tail: str) -> str:
    for needle, reason in _KNOWN_FAILURES:
        if needle in stderr_tail:
            return reason
    last = stderr_tail.strip().splitlines()[-1] if stderr_tail.strip() else "unknown error"
    return f"ffmpeg cannot read it ({last.strip()})"


def check_readable_file(path: Path) -> None:
    if not path.exists():
        raise BadVideo(path, "file not found")
    if not path.is_file():
        raise BadVideo(path, "not a regular file")
    if path.stat().st_size == 0:
        raise BadVideo(path, "the file is empty (0 bytes)")


def probe_video(path: Path, tools: ToolsConfig) -> VideoInfo:
    """Describe the first video stream; BadVideo names the file and what is wrong."""
    path = Path(path)
    check_readable_file(path)
    argv = [find_tool(tools.ffprobe), "-v", "error", "-show_format", "-show_streams",
            "-of", "json", ffmpeg_path_arg(path)]
    try:
        out = run_tool(argv, timeout_s=min(tools.timeout_s, 300)).stdout
    except ToolFailed as exc:
        if (local := local_failure_reason(exc)) is not None:
            raise LocalFailure(path, f"probing failed: {local}", hint=_LOCAL_HINT) from None
        reason = explain_ffmpeg_error(exc.stderr_tail)
        if _looks_like_text(path):  # ffmpeg trusts the extension and blames the index
            reason = "not a video file ffmpeg can read (it contains text)"
        raise BadVideo(path, reason) from None
    data = json.loads(out or b"{}")
    streams = data.get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video"
             and not s.get("disposition", {}).get("attached_pic")]
    if not video:
        kinds = sorted({s.get("codec_type", "?") for s in streams}) or ["none"]
        raise BadVideo(path, f"has no video stream (streams found: {', '.join(kinds)})")
    s = video[0]
    coded_w, coded_h = int(s.get("width") or 0), int(s.get("height") or 0)
    if coded_w <= 0 or coded_h <= 0:
        raise BadVideo(path, "the video stream has no picture size (corrupt header?)")
    sar = _fraction(s.get("sample_aspect_ratio")) or Fraction(1)
    rotation = _rotation(s)
    width, height = round(coded_w * sar), coded_h
    if rotation in (90, 270):
        width, height = height, width
    fps = _fraction(s.get("avg_frame_rate")) or _fraction(s.get("r_frame_rate"))
    if not fps:
        raise BadVideo(path, "the video stream has no frame rate")
    duration = _float(s.get("duration")) or _float(data.get("format", {}).get("duration"))
    frames = s.get("nb_frames")
    return VideoInfo(path=path, codec=s.get("codec_name", "?"), width=width, height=height,
                     fps=fps, duration=duration, frames_hint=int(frames) if frames else None,
                     rotation=rotation, sample_aspect=sar)


def frame_count_slack(frames: int) -> int:
    """How far a container's frame count may be from the decoded count (edit lists,
    dropped leading B-frames) before we call the file damaged or changed."""
    return max(3, frames // 100)


def _looks_like_text(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(4096)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\0" not in head


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            return int(-float(side["rotation"])) % 360
    rotate = stream.get("tags", {}).get("rotate")
    return int(rotate) % 360 if rotate else 0


def _fraction(text: str | None) -> Fraction | None:
    if not text or text in ("0/0", "N/A", "0:1", "0:0"):
        return None
    try:
        value = Fraction(text.replace(":", "/"))
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "N/A") else None
    except ValueError:
        return None
