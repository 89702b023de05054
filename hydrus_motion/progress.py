"""Progress reporting seam: long work calls `progress(done, total)` as units finish.

Stages take an optional `Progress`; the CLI turns it into a progress bar on a terminal,
the daemon passes none (its logs stay one line per event).
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int], None]  # (units done so far, units in all)


def no_progress(done: int, total: int) -> None:
    """The default: report nothing."""
