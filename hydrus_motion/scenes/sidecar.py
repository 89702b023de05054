"""The scenes sidecar, `VIDEO.scenes.txt`: a file people read and edit.

    # hydrus-motion scenes 1
    # video: testvideo.mp4
    # fps: 30000/1001 (29.970)
    # frames: 720
    # timing: constant
    # detector: adaptive adaptive_threshold=3.0 ...
    # bars: measured
    # scene  start_frame  end_frame  start         end           crop
          1            0         30  00:00:00.000  00:00:01.001  1280x536+0+92

`slice` re-reads it, so edits are honoured: change frame numbers to move a cut, split a
line in two to add one, delete a line to drop a scene. Frame numbers are what count; the
times are there to read. Where the frame rate is constant a time that disagrees with
its frame number is reported, because it means someone edited only the time.

The crop column (optional; written when black bars were measured while detecting) is
the picture inside the bars as WIDTHxHEIGHT+X+Y in displayed source pixels, `-` for
none. Edit it to fix a crop, write `-` to keep the full frame. A sidecar without the
`# bars: measured` header (older, hand-made, or from a detector that does not measure
bars) has its bars measured at slice time from a few frames per scene.
"""

from __future__ import annotations

import hashlib
import re
from fractions import Fraction
from pathlib import Path

from hydrus_motion.errors import SidecarError
from hydrus_motion.files import atomic_write_text, fit_name
from hydrus_motion.records import CropBox, Scene, SceneList

MAGIC = "# hydrus-motion scenes 1"
SUFFIX = ".scenes.txt"
_HEADER = re.compile(r"^#\s*([a-z_]+):\s*(.*?)\s*$")
_TIMECODE = re.compile(r"^(\d+):([0-5]\d):([0-5]\d(?:\.\d+)?)$")
_CROP = re.compile(r"^(\d+)x(\d+)\+(\d+)\+(\d+)$")


def default_sidecar_path(video: Path) -> Path:
    """VIDEO.scenes.txt; for a name too long for that, the stem shortened with a hash."""
    return video.with_name(fit_name(video.stem, video.suffix + SUFFIX))


def escape_value(text: str) -> str:
    """A header value on one line whatever the name holds: backslash, newline, CR, tab."""
    return (text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
            .replace("\t", "\\t"))


def unescape_value(text: str) -> str:
    return re.sub(r"\\([\\nrt])", lambda m: _UNESCAPE[m.group(1)], text)


_UNESCAPE = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def format_timecode(seconds: float) -> str:
    millis = round(seconds * 1000)
    h, rest = divmod(millis, 3_600_000)
    m, rest = divmod(rest, 60_000)
    return f"{h:02d}:{m:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def parse_timecode(text: str) -> float | None:
    match = _TIMECODE.match(text)
    if not match:
        return None
    h, m, s = match.groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


def scene_lines_hash(lines: list[str]) -> str:
    """Of a sidecar's scene lines as written (comments and blank lines aside)."""
    body = "\n".join(line.strip() for line in lines
                     if line.strip() and not line.lstrip().startswith("#"))
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def render_sidecar(scenes: SceneList, source: str | None = None) -> str:
    """`source`: the video's content fingerprint (ingest.content.source_fingerprint), so
    freshness is judged by content, not by modification times. `written` hashes the
    scene lines, so a later reader can tell a person changed them (sidecar_unedited)."""
    fps = scenes.fps
    rows = []
    for s in scenes.scenes:
        crop = f"  {s.crop if s.crop else '-'}" if scenes.bars_measured else ""
        rows.append(f"{s.index:7d}  {s.start_frame:11d}  {s.end_frame:9d}  "
                    f"{format_timecode(s.start)}  {format_timecode(s.end)}{crop}")
    lines = [
        MAGIC,
        f"# video: {escape_value(scenes.video.name)}",
        *([f"# source: {source}"] if source else []),
        f"# fps: {fps.numerator}/{fps.denominator} ({float(fps):.3f})",
        f"# frames: {scenes.frames}",
        f"# timing: {'variable' if scenes.variable_frame_rate else 'constant'}",
        f"# detector: {escape_value(scenes.detector or 'unknown')}",
        *(["# bars: measured"] if scenes.bars_measured else []),
        f"# written: scenes {scene_lines_hash(rows)}",
        "#",
        "# One scene per line. Frames are 0-based: start_frame is the scene's first frame,",
        "# end_frame the first frame after it. Edit frame numbers to move a cut, split a line",
        "# to add a cut, delete a line to drop a scene; `hydrus-motion slice` reads this file.",
        "#",
        *(["# crop: the picture inside black bars, WIDTHxHEIGHT+X+Y in source pixels; "
           "- for none.", "#"] if scenes.bars_measured else []),
        "# scene  start_frame  end_frame  start         end"
        + ("           crop" if scenes.bars_measured else ""),
    ]
    return "\n".join(lines + rows) + "\n"


def sidecar_unedited(path: Path) -> bool:
    """Its scene lines are still the ones we wrote (False when changed, or not ours)."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    if not lines or lines[0].strip() != MAGIC:
        return False
    for line in lines:  # the header: up to the first scene line
        if line.strip() and not line.lstrip().startswith("#"):
            break
        match = _HEADER.match(line.strip())
        if match and match.group(1) == "written":
            kind, _, digest = match.group(2).partition(" ")
            return kind == "scenes" and digest == scene_lines_hash(lines)
    return False


def write_sidecar(scenes: SceneList, path: Path, source: str | None = None) -> None:
    atomic_write_text(path, render_sidecar(scenes, source))


def read_header(path: Path) -> dict[str, str] | None:
    """The header values (unescaped) of a sidecar, or None if it is absent or not one."""
    try:
        with path.open(encoding="utf-8-sig") as fh:
            if fh.readline().strip() != MAGIC:
                return None
            header: dict[str, str] = {}
            for line in fh:
                stripped = line.strip()
                if stripped and not stripped.startswith("#"):
                    break
                if match := _HEADER.match(stripped):
                    header.setdefault(match.group(1), unescape_value(match.group(2)))
            return header
    except (OSError, UnicodeDecodeError):
        return None


def read_sidecar(path: Path, video: Path) -> SceneList:
    """Parse and check a sidecar; SidecarError names the file, the line and the problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Notepad) is fine
    except FileNotFoundError:
        hint = "run `hydrus-motion scenes VIDEO` first, or pass --sidecar"
        raise SidecarError(f"{path}: sidecar not found", hint=hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SidecarError(f"{path}: cannot read the sidecar ({exc})") from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != MAGIC:
        raise SidecarError(f"{path}:1: not a hydrus-motion scenes file (first line must be "
                           f"{MAGIC!r})")
    header: dict[str, str] = {}
    rows: list[tuple[int, int, int, list[str], CropBox | None]] = []
    for number, line in enumerate(lines[1:], start=2):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if match := _HEADER.match(stripped):
                header.setdefault(match.group(1), unescape_value(match.group(2)))
            continue
        fields = stripped.split()
        crop = None
        if len(fields) in (4, 6) and (fields[-1] == "-" or _CROP.match(fields[-1])):
            crop = _parse_crop(f"{path}:{number}", fields.pop())
        if len(fields) not in (3, 5) or not all(_is_number(f) for f in fields[:3]):
            raise SidecarError(f"{path}:{number}: expected 'scene start_frame end_frame "
                               f"[start end] [crop]' (digits 0-9), got {stripped!r}")
        rows.append((number, int(fields[1]), int(fields[2]), fields[3:], crop))
    fps = _header_fraction(path, header, "fps")
    frames = _header_int(path, header, "frames")
    variable = header.get("timing", "constant") == "variable"
    rows.sort(key=lambda r: r[1])
    scenes: list[Scene] = []
    previous_end, previous_line = 0, 0
    for number, start, end, times, crop in rows:
        where = f"{path}:{number}"
        if start >= end:
            raise SidecarError(f"{where}: start_frame {start} must be below end_frame {end}")
        if end > frames:
            raise SidecarError(f"{where}: end_frame {end} is past the video's last frame "
                               f"(it has {frames} frames; end_frame may be at most {frames})")
        if start < previous_end:
            raise SidecarError(f"{where}: frames {start}-{end} overlap the scene on line "
                               f"{previous_line}, which ends at {previous_end}")
        start_s, end_s = float(start / fps), float(end / fps)
        if times:
            start_s, end_s = _check_times(where, times, start, end, fps, variable)
        scenes.append(Scene(len(scenes) + 1, start, end, start_s, end_s, crop))
        previous_end, previous_line = end, number
    return SceneList(video=video, fps=fps, frames=frames, scenes=tuple(scenes),
                     detector=header.get("detector", ""), variable_frame_rate=variable,
                     bars_measured=header.get("bars") == "measured")


def _parse_crop(where: str, text: str) -> CropBox | None:
    match = _CROP.match(text)
    if match is None:
        return None  # "-": no bars
    width, height, x, y = map(int, match.groups())
    if width < 2 or height < 2:
        raise SidecarError(f"{where}: crop {text} keeps no picture",
                           hint="write WIDTHxHEIGHT+X+Y of the picture, or - for no crop")
    return CropBox(x=x, y=y, width=width, height=height)


def _check_times(where: str, times: list[str], start: int, end: int, fps: Fraction,
                 variable: bool) -> tuple[float, float]:
    parsed = [parse_timecode(t) for t in times]
    for text, value in zip(times, parsed):
        if value is None:
            raise SidecarError(f"{where}: {text!r} is not a time like 00:01:02.345")
    start_s, end_s = parsed
    assert start_s is not None and end_s is not None
    if not variable:  # with a constant rate the frame number fixes the time
        for frame, seconds, label in ((start, start_s, "start"), (end, end_s, "end")):
            expected = float(frame / fps)
            if abs(seconds - expected) > 1.5 / float(fps):
                raise SidecarError(
                    f"{where}: {label} time {format_timecode(seconds)} does not match frame "
                    f"{frame} (which is at {format_timecode(expected)})",
                    hint="frame numbers decide the cut: edit them, or delete the two times",
                )
    return start_s, end_s


def _header_fraction(path: Path, header: dict[str, str], key: str) -> Fraction:
    raw = header.get(key, "").split(" ")[0]
    try:
        value = Fraction(raw)
    except (ValueError, ZeroDivisionError):
        value = Fraction(0)
    if value <= 0:
        raise SidecarError(f"{path}: header line '# {key}: ...' is missing or invalid")
    return value


def _header_int(path: Path, header: dict[str, str], key: str) -> int:
    raw = header.get(key, "")
    if not _is_number(raw) or int(raw) <= 0:
        raise SidecarError(f"{path}: header line '# {key}: ...' is missing or invalid")
    return int(raw)


def _is_number(text: str) -> bool:
    """0-9 only: str.isdigit also takes '²' and other digits int() refuses or reads."""
    return text.isascii() and text.isdigit()
