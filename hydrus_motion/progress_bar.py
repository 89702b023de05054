"""Progress bars for the CLI: a `Progress` (progress.py) drawn by tqdm on stderr.

Only on a terminal: never under `--json`, never when stderr is a file or a pipe (logs,
the journal), never in the daemon, which passes no progress at all. While a bar is up,
log lines are printed above it instead of tearing it.

    with progress_bar("scenes", "frame", enabled=bars_wanted(args)) as progress:
        detect_scenes(video, cfg, progress=progress)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from hydrus_motion.progress import Progress, no_progress

T = TypeVar("T")


def bars_wanted(json_output: bool) -> bool:
    return not json_output and sys.stderr.isatty()


@contextmanager
def progress_bar(desc: str, unit: str, enabled: bool) -> Iterator[Progress]:
    if not enabled:
        yield no_progress
        return
    try:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm
    except ImportError:  # a base dependency; a broken install just shows no bar
        yield no_progress
        return
    bar = tqdm(desc=desc, unit=unit, file=sys.stderr, leave=False)

    def report(done: int, total: int) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    with logging_redirect_tqdm():
        try:
            yield report
        finally:
            bar.close()


def progress_iter(items: Sequence[T], desc: str, unit: str, enabled: bool) -> Iterator[T]:
    """The items, with a bar counting those done (one finished when the next is asked for)."""
    with progress_bar(desc, unit, enabled) as progress:
        for done, item in enumerate(items):
            progress(done, len(items))
            yield item
        progress(len(items), len(items))
