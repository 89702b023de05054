"""Interlaced and telecined sources: measured on a bounded sample, undone in the cut.

`measure_scan` runs ffmpeg's `idet` over at most three windows of `SAMPLE_FRAMES`
frames (at 20 %, 50 % and 80 % of the video, sought to, so the cost does not grow with
the film) and sums its multi-frame counts. `classify` is pure:

- telecined: at least 20 % of the frames have a repeated field (3:2 pulldown repeats
  one field in two of every five frames: 40 %);
- interlaced: at least 60 % of the frames that idet could decide look interlaced;
- otherwise progressive (also when too few frames moved enough to tell).

idet runs with `intl_thres=1.5` instead of its default 1.04: at the default, sharp
progressive lavfi test patterns came out 33-100 % "interlaced"; at 1.5 they are 0 %,
while a truly interlaced source stays at 95 % and PySceneDetect's real clips at 0 %
(docs/CLIPS.md has the table).

`deinterlace_filter` says what the cut puts first in its graph: bwdif (one frame per
frame) for interlaced video; for telecined video fieldmatch without decimate, which
keeps the frame count and numbers exact (the film frame that pulldown repeated stays
as a repeated frame, which the cadence tag reports), then bwdif on the frames
fieldmatch still marks as combed.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor

from hydrus_motion.config import ToolsConfig
from hydrus_motion.errors import ToolFailed
from hydrus_motion.probe import ffmpeg_failure
from hydrus_motion.records import Scan, VideoInfo
from hydrus_motion.tools import ffmpeg_path_arg, find_tool, run_tool

log = logging.getLogger(__name__)

SAMPLE_FRAMES = 200
_WINDOWS = (0.2, 0.5, 0.8)
_MIN_DECIDED = 20  # frames idet must decide before we call a source anything but progressive
_TELECINE_REPEATED = 0.20
_INTERLACED = 0.60
IDET = "idet=intl_thres=1.5"

_MULTI = re.compile(r"Multi frame detection: TFF:\s*(\d+)\s+BFF:\s*(\d+)\s+Progressive:\s*(\d+)"
                    r"\s+Undetermined:\s*(\d+)")
_REPEATED = re.compile(r"Repeated Fields: Neither:\s*(\d+)\s+Top:\s*(\d+)\s+Bottom:\s*(\d+)")

BWDIF = "bwdif=mode=send_frame:parity=auto:deint=all"
FIELDMATCH = ("fieldmatch=order=auto:combmatch=full,"
              "bwdif=mode=send_frame:parity=auto:deint=interlaced")


def classify(tff: int, bff: int, progressive: int, repeated: int, frames: int) -> Scan:
    interlaced = tff + bff
    decided = interlaced + progressive
    if frames <= 0:
        return Scan.PROGRESSIVE
    if repeated / frames >= _TELECINE_REPEATED and frames >= _MIN_DECIDED:
        return Scan.TELECINED
    if decided < _MIN_DECIDED:
        return Scan.PROGRESSIVE
    return Scan.INTERLACED if interlaced / decided >= _INTERLACED else Scan.PROGRESSIVE


def measure_scan(info: VideoInfo, tools: ToolsConfig) -> Scan:
    """idet over a few short windows of the source (never the whole file)."""
    frames = info.frames_hint or (round(info.duration * float(info.fps)) if info.duration else 0)
    windows = [0.0] if frames <= len(_WINDOWS) * SAMPLE_FRAMES or not info.duration else \
        [info.duration * w for w in _WINDOWS]
    totals = [0, 0, 0, 0, 0]  # tff, bff, progressive, repeated, frames

    def sample(start: float) -> str:
        argv = [find_tool(tools.ffmpeg), "-hide_banner", "-nostdin", "-nostats",
                "-loglevel", "info"]
        if start:
            # from the key frame at or before `start`: an accurate seek would decode the
            # frames up to it only to drop them (a third of a window's work at long GOPs)
            argv += ["-noaccurate_seek", "-ss", f"{start:.3f}"]
        argv += ["-i", ffmpeg_path_arg(info.path), "-map", "0:v:0", "-an", "-sn", "-dn",
                 "-frames:v", str(SAMPLE_FRAMES if start else len(_WINDOWS) * SAMPLE_FRAMES),
                 "-vf", IDET, "-f", "null", "-"]
        try:
            return run_tool(argv, timeout_s=tools.timeout_s).stderr.decode("utf-8", "replace")
        except ToolFailed as exc:
            raise ffmpeg_failure(info.path, exc, "measuring interlacing failed") from None

    # the windows at once: each is mostly seeking and a short decode (a third of the wait)
    with ThreadPoolExecutor(max_workers=len(windows)) as pool:
        for stderr in pool.map(sample, windows):
            multi, repeated = _MULTI.findall(stderr), _REPEATED.findall(stderr)
            if multi and repeated:
                tff, bff, prog, undetermined = map(int, multi[-1])
                _neither, top, bottom = map(int, repeated[-1])
                for i, n in enumerate((tff, bff, prog, top + bottom,
                                       tff + bff + prog + undetermined)):
                    totals[i] += n
    scan = classify(*totals)
    log.info("%s: %s (idet over %d sampled frames: %d tff, %d bff, %d progressive, "
             "%d repeated fields)", info.path.name, scan, totals[4], *totals[:4])
    return scan


def deinterlace_filter(scan: Scan | None, mode: str) -> str | None:
    """The filter chain (ffmpeg syntax) that undoes fields, or None for none."""
    if mode == "off":
        return None
    if scan is Scan.TELECINED:
        return FIELDMATCH
    if scan is Scan.INTERLACED or mode == "always":
        return BWDIF
    return None


def filter_name(chain: str | None) -> str | None:
    """'fieldmatch' / 'bwdif' for provenance: the filter that undid the fields."""
    return chain.split("=", 1)[0] if chain else None
