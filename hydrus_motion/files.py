"""Files we write so a reader never sees half of one: a temporary name in the same folder,
then a rename (`atomic_write_text`, `temp_dir_beside`, `point_link`); names that fit
every filesystem (`fit_name`); our own JSON read back (`read_json_object`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows (NTFS: 255 UTF-16 units)
_TEMP_ROOM = 20  # what atomic_write_text's ".NAME.xxxxxxxx.part" adds around a name


def fit_name(stem: str, tail: str) -> str:
    """`stem + tail`, or with `stem` shortened to `<start>~<hash>` so the name (and the
    temp name an atomic write makes of it) fits NAME_MAX bytes. Deterministic: the same
    stem always gives the same name, so every command finds the same file."""
    limit = NAME_MAX - _TEMP_ROOM
    if len((stem + tail).encode("utf-8", "surrogateescape")) <= limit:
        return stem + tail
    import hashlib

    digest = hashlib.sha256(stem.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    room = limit - len(f"~{digest}{tail}".encode("utf-8", "surrogateescape"))
    start = stem.encode("utf-8", "surrogateescape")[:max(room, 0)]
    return start.decode("utf-8", "ignore") + f"~{digest}{tail}"  # never half a character


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder, then rename over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        usual_permissions(Path(tmp))
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json_object(path: Path) -> dict | None:
    """A JSON object from a file we wrote, or None if it is absent, unreadable or not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def usual_permissions(path: Path) -> None:
    """The mode a plain open() or mkdir() would give (umask applied). mkstemp and mkdtemp
    make their files private, which would hide a sidecar, a dataset or a run.yaml from a
    Hydrus, trainer or UI running as another user once they are renamed into place."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


@contextmanager
def temp_dir_beside(target_dir: Path, prefix: str = ".hydrus-motion-") -> Iterator[Path]:
    """A scratch folder inside `target_dir` (same filesystem, so renames are atomic)."""
    target_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=target_dir))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def point_link(link: Path, target: Path) -> Path:
    """Make `link` show the folder `target`; returns where that content now lives.

    `link` becomes a symbolic link replaced in one atomic rename, so a reader sees the
    old folder or the new one, never neither. Where links cannot be made (Windows without
    developer mode) `target` is renamed to `link` instead, and what `link` was moves to
    `<target>-previous` beside `target`: two renames with a moment between them.
    """
    switch = link.parent / f".{link.name}.switch-{os.getpid()}"
    switch.unlink(missing_ok=True)
    if not (link.exists() and not link.is_symlink()):
        try:
            os.symlink(os.path.relpath(target, link.parent), switch, target_is_directory=True)
            os.replace(switch, link)
            return target
        except OSError:
            switch.unlink(missing_ok=True)
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        os.rename(link, target.parent / f"{target.name}-previous")
    os.rename(target, link)
    return link
