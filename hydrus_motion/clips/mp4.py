"""Read a finished clip's frame count and picture size from its MP4 index, no process.

A film has thousands of clips; an ffprobe per clip would cost more than cutting them.
The MP4 sample table (`stsz`) lists every video packet, which is what
`ffprobe -count_packets` counts, and the sample entry (`stsd`) holds the coded size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


@dataclass(frozen=True)
class Mp4Video:
    frames: int
    width: int
    height: int


class Mp4Error(ValueError):
    """The file is not an MP4 with one readable video track."""


def read_mp4_video(path: Path) -> Mp4Video:
    with open(path, "rb") as fh:
        size = Path(path).stat().st_size
        for kind, start, end in _boxes(fh, 0, size):
            if kind == b"moov":
                for trak in (b for b in _boxes(fh, start, end) if b[0] == b"trak"):
                    video = _video_track(fh, trak[1], trak[2])
                    if video is not None:
                        return video
    raise Mp4Error(f"{path}: no video track in the MP4 index")


def _video_track(fh: BinaryIO, start: int, end: int) -> Mp4Video | None:
    found: dict[bytes, tuple[int, int]] = {}
    _collect(fh, start, end, found)
    if any(kind not in found for kind in (b"hdlr", b"stsz", b"stsd")):
        return None
    fh.seek(found[b"hdlr"][0] + 8)
    if fh.read(4) != b"vide":
        return None
    fh.seek(found[b"stsz"][0] + 8)
    (frames,) = struct.unpack(">I", fh.read(4))
    fh.seek(found[b"stsd"][0] + 8 + 8 + 24)  # entry header (8), then to width/height
    width, height = struct.unpack(">HH", fh.read(4))
    return Mp4Video(frames=frames, width=width, height=height)


def _collect(fh: BinaryIO, start: int, end: int, found: dict[bytes, tuple[int, int]]) -> None:
    """Payload offsets (after version/flags for full boxes) of the boxes we read."""
    for kind, body, stop in _boxes(fh, start, end):
        if kind in _CONTAINERS:
            _collect(fh, body, stop, found)
        elif kind in (b"hdlr", b"stsz", b"stsd"):
            found.setdefault(kind, (body, stop))


def _boxes(fh: BinaryIO, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        size, kind = struct.unpack(">I4s", fh.read(8))
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", fh.read(8))
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Mp4Error(f"damaged MP4 box {kind!r} at offset {pos}")
        yield kind, pos + header, pos + size
        pos += size
