"""Optional webdataset shards: `shards/shard-NNNNNN.tar` with `<videoid>.mp4/.txt/.json`.

A sample's three members sit next to each other in the tar (webdataset groups members by
the name before the first dot), and every member gets a fixed mtime and owner so the same
dataset gives byte-identical shards.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path

from hydrus_motion.dataset.manifest import DatasetEntry


def write_shards(folder: Path, entries: Sequence[DatasetEntry], max_clips: int) -> list[Path]:
    shards_dir = folder / "shards"
    shards_dir.mkdir()
    written = []
    for number, start in enumerate(range(0, len(entries), max_clips)):
        path = shards_dir / f"shard-{number:06d}.tar"
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for entry in entries[start:start + max_clips]:
                _add_file(tar, f"{entry.videoid}.mp4", folder / entry.file)
                _add_bytes(tar, f"{entry.videoid}.txt", entry.caption.encode())
                _add_bytes(tar, f"{entry.videoid}.json",
                           json.dumps(entry.record(), ensure_ascii=False).encode())
        written.append(path)
    return written


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_member(name, len(data)), io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    with path.open("rb") as fh:
        tar.addfile(_member(name, path.stat().st_size), fh)
