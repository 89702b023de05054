"""Where a video goes when we are done with it: archive, quarantine, or nowhere.

The sidecar (`VIDEO.scenes.txt`) travels with its video; so do, into the archive, the
files beside it that share its stem and belong to it (subtitles, .nfo, .info.json,
thumbnails: `film.en.srt` with `film.mp4`). A quarantined video gets a
`NAME.reason.txt` beside it saying what was wrong, so a person can fix or delete it.
Names never overwrite: an existing name gets `-<hash prefix>` added. Moves work across
file systems (archive on another drive): `shutil.move` copies, then removes.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from hydrus_motion.files import atomic_write_text, fit_name
from hydrus_motion.scenes.sidecar import default_sidecar_path

log = logging.getLogger(__name__)


def free_name(folder: Path, name: str, sha256: str) -> Path:
    target = folder / name
    if not target.exists() and not reason_path(target).exists():
        return target
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(1000):
        tag = sha256[:12] if n == 0 else f"{sha256[:12]}-{n}"
        target = folder / f"{stem}-{tag}{suffix}"
        if not target.exists():
            return target
    raise FileExistsError(f"no free name for {name} in {folder}")


# What a player, downloader or media manager keeps beside a video under its stem.
SIDE_SUFFIXES = (".srt", ".ass", ".ssa", ".vtt", ".sub", ".idx", ".sup", ".lrc", ".nfo",
                 ".info.json", ".description", ".jpg", ".jpeg", ".png", ".webp",
                 ".annotations.xml", ".live_chat.json")


def side_files(video: Path) -> list[Path]:
    """Files beside `video` that share its stem and are subtitles, metadata or thumbnails."""
    prefix = f"{video.stem}."
    try:
        entries = list(video.parent.iterdir())
    except OSError:
        return []
    return sorted(p for p in entries if p.name.startswith(prefix) and p != video
                  and p.name.lower().endswith(SIDE_SUFFIXES) and p.is_file())


def move_video(video: Path, folder: Path, sha256: str, with_side_files: bool = False) -> Path:
    """Move a video and its sidecar (and, asked to, its side files) into `folder`;
    returns the video's new path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = free_name(folder, video.name, sha256)
    sidecar = default_sidecar_path(video)
    sides = side_files(video) if with_side_files else []
    shutil.move(str(video), str(target))
    if sidecar.exists():
        shutil.move(str(sidecar), str(default_sidecar_path(target)))
    for side in sides:  # film.en.srt -> <target stem>.en.srt
        name = target.stem + side.name[len(video.stem):]
        try:
            shutil.move(str(side), str(free_name(folder, name, sha256)))
        except OSError as exc:  # the video is archived; its subtitle stays behind
            log.warning("%s: could not move %s with it: %s", video.name, side.name,
                        exc.strerror or exc)
    return target


def quarantine(video: Path, folder: Path, sha256: str, stage: str, reason: str) -> Path:
    """Move a broken video aside with `NAME.reason.txt`; returns where it went."""
    folder.mkdir(parents=True, exist_ok=True)
    target = move_video(video, folder, sha256) if video.exists() else folder / video.name
    when = time.strftime("%Y-%m-%d %H:%M:%S %z")
    atomic_write_text(reason_path(target),
                      f"{reason}\n\nfile: {video}\nsha256: {sha256}\nstage: {stage}\n"
                      f"quarantined: {when}\nFix the file and drop it into the watch folder "
                      "again, or delete it.\n")
    return target


def finish_video(video: Path, action: str, archive: Path, sha256: str) -> Path | None:
    """Apply `daemon.after_success` (move | keep | delete); the video's new path or None."""
    if not video.exists():  # already handled before a restart
        return None
    if action == "keep":
        return video
    if action == "delete":
        default_sidecar_path(video).unlink(missing_ok=True)
        video.unlink()
        return None
    return move_video(video, archive, sha256, with_side_files=True)


def clear_reason_file(quarantined: Path) -> None:
    """A quarantined video taken back: its NAME.reason.txt goes once the video left."""
    if not quarantined.exists():
        reason_path(quarantined).unlink(missing_ok=True)


def reason_path(video: Path) -> Path:
    """NAME.reason.txt beside a quarantined video (a long name shortened with a hash)."""
    return video.with_name(fit_name(video.stem, video.suffix + ".reason.txt"))
