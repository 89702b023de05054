"""The dataset report: `report.md` to read and `contact_sheet.jpg` to look at.

Counts, total frames and duration, a clip-length histogram, tag frequencies, and the
first frame of every clip on one sheet, because people would rather look than read.
A clip whose first frame cannot be decoded gets a grey cell and is named in the report.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hydrus_motion.config import Config
from hydrus_motion.dataset.manifest import DatasetEntry, Skipped
from hydrus_motion.errors import HydrusMotionError
from hydrus_motion.tools import ffmpeg_path_arg, find_tool, run_tool

log = logging.getLogger(__name__)
CELL_W, CELL_H, COLUMNS = 192, 108, 8
WINDOW_FRAMES = 61  # AnimateDiff's 16 frames at stride 4
LENGTH_BINS = (2, 4, 6, 8, 10)  # seconds
TOP_TAGS = 50


def write_report(folder: Path, entries: Sequence[DatasetEntry], skipped: Sequence[Skipped],
                 cfg: Config) -> None:
    unreadable: list[str] = []
    sheet = entries[:cfg.dataset.contact_sheet_max]
    if sheet:
        _contact_sheet(folder, sheet, cfg, unreadable)
    (folder / "report.md").write_text(
        _markdown(entries, skipped, unreadable, len(sheet)), encoding="utf-8")


def _seconds(entry: DatasetEntry) -> float | None:
    return entry.frames / entry.fps if entry.frames and entry.fps else None


def _markdown(entries: Sequence[DatasetEntry], skipped: Sequence[Skipped],
              unreadable: Sequence[str], on_sheet: int) -> str:
    seconds = [s for s in map(_seconds, entries) if s is not None]
    short = sum(1 for e in entries if e.frames is not None and e.frames < WINDOW_FRAMES)
    lines = ["# Dataset report", "",
             f"- clips: {len(entries)}",
             f"- frames: {sum(e.frames or 0 for e in entries)}",
             f"- duration: {sum(seconds):.1f} s",
             f"- shorter than {WINDOW_FRAMES} frames (one 16-frame window at stride 4): "
             f"{short}",
             f"- without a caption note (captioned by their tags): "
             f"{sum(1 for e in entries if not e.nl_caption)}",
             f"- left out: {len(skipped)}"]
    lines += [f"  - {s.videoid}: {s.reason}" for s in skipped]
    if unreadable:
        lines.append(f"- first frame not decodable: {len(unreadable)}")
        lines += [f"  - {videoid}" for videoid in unreadable]
    lines += ["", "## Clip lengths", "", "| seconds | clips | |", "|---|---:|---|"]
    edges = (0, *LENGTH_BINS)
    counts = [sum(1 for s in seconds if lo <= s < hi) for lo, hi in zip(edges, edges[1:])]
    labels = [f"{lo}-{hi}" for lo, hi in zip(edges, edges[1:])]
    counts.append(sum(1 for s in seconds if s >= LENGTH_BINS[-1]))
    labels.append(f">= {LENGTH_BINS[-1]}")
    widest = max(counts, default=0) or 1
    lines += [f"| {label} | {n} | {'#' * round(20 * n / widest)} |"
              for label, n in zip(labels, counts)]
    frequencies = Counter(tag for e in entries for tag in e.tags)
    lines += ["", f"## Tags (top {TOP_TAGS} of {len(frequencies)})", "",
              "| tag | clips |", "|---|---:|"]
    lines += [f"| {tag} | {n} |" for tag, n in frequencies.most_common(TOP_TAGS)]
    if on_sheet:
        more = f" (the first {on_sheet} of {len(entries)})" if on_sheet < len(entries) else ""
        lines += ["", f"## First frames{more}", "", "![contact sheet](contact_sheet.jpg)"]
    return "\n".join(lines) + "\n"


def _contact_sheet(folder: Path, entries: Sequence[DatasetEntry], cfg: Config,
                   unreadable: list[str]) -> None:
    ffmpeg = find_tool(cfg.tools.ffmpeg)
    columns = min(COLUMNS, len(entries))
    rows = -(-len(entries) // columns)
    sheet = np.full((rows * CELL_H, columns * CELL_W, 3), 24, np.uint8)
    for n, entry in enumerate(entries):
        y, x = divmod(n, columns)
        cell = sheet[y * CELL_H:(y + 1) * CELL_H, x * CELL_W:(x + 1) * CELL_W]
        try:
            cell[:] = _first_frame(ffmpeg, folder / entry.file)
        except HydrusMotionError as exc:
            log.warning("export: %s: first frame not decodable: %s", entry.videoid, exc)
            cell[:] = 128
            unreadable.append(entry.videoid)
    ppm = folder / ".contact_sheet.ppm"
    header = f"P6 {sheet.shape[1]} {sheet.shape[0]} 255\n".encode()
    ppm.write_bytes(header + sheet.tobytes())
    jpg = ffmpeg_path_arg(folder / "contact_sheet.jpg")
    try:
        run_tool([ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i",
                  ffmpeg_path_arg(ppm), "-q:v", "3", jpg], timeout_s=cfg.tools.timeout_s)
    finally:
        ppm.unlink(missing_ok=True)


def _first_frame(ffmpeg: str, clip: Path) -> np.ndarray:
    fit = (f"scale={CELL_W}:{CELL_H}:force_original_aspect_ratio=decrease,"
           f"pad={CELL_W}:{CELL_H}:(ow-iw)/2:(oh-ih)/2:color=0x181818")
    raw = run_tool([ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-i",
                    ffmpeg_path_arg(clip), "-frames:v", "1", "-vf", fit, "-pix_fmt", "rgb24",
                    "-f", "rawvideo", "pipe:1"], timeout_s=60).stdout
    if len(raw) != CELL_W * CELL_H * 3:
        raise HydrusMotionError(f"{clip}: no frame decoded")
    return np.frombuffer(raw, np.uint8).reshape(CELL_H, CELL_W, 3)
