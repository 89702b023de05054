"""The daemon's stages, in order: the one table the queue, the daemon and the workers read.

    stage      runner (jobs.py)   pool     next       due after the previous stage
    detect     detect             cpu      slice      at once
    slice      slice_clips        cpu      annotate   at once
    annotate   annotate           gpu      push       at once
    push       push               hydrus   reconcile  at once
    reconcile  reconcile          hydrus   -          daemon.reconcile_after_s

The queue (store/queue.py) takes a new video's first job from here and, when a stage
is done, queues its `next`; the daemon starts one worker pool per `Pool` and claims
only its pool's stages; the policy treats broken input in a `cpu` stage (the ones that
read the video) as a reason for quarantine. A new stage is one row here and one
function in jobs.py; nothing else names the order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from hydrus_motion import jobs

if TYPE_CHECKING:
    from hydrus_motion.config import DaemonConfig
    from hydrus_motion.jobs import StageContext
    from hydrus_motion.store.queue import Job


class Pool(StrEnum):
    """The worker threads a stage runs on (daemon.cpu_workers, daemon.gpu_workers, and
    the one hydrus worker that holds the live connection)."""

    CPU = "cpu"
    GPU = "gpu"
    HYDRUS = "hydrus"


def at_once(daemon: DaemonConfig) -> float:
    return 0.0


def reconcile_after(daemon: DaemonConfig) -> float:
    return daemon.reconcile_after_s


@dataclass(frozen=True)
class Stage:
    name: str  # stored in jobs.stage: never rename a row that databases already hold
    run: Callable[[StageContext, Job], None]  # raises; the daemon's policy decides
    pool: Pool
    next: str | None = None  # queued in the same transaction when this one is done
    delay: Callable[[DaemonConfig], float] = at_once  # seconds after the previous stage


STAGES: tuple[Stage, ...] = (
    Stage("detect", jobs.detect, Pool.CPU, next="slice"),
    Stage("slice", jobs.slice_clips, Pool.CPU, next="annotate"),
    Stage("annotate", jobs.annotate, Pool.GPU, next="push"),
    Stage("push", jobs.push, Pool.HYDRUS, next="reconcile"),
    Stage("reconcile", jobs.reconcile, Pool.HYDRUS, delay=reconcile_after),
)


def names() -> tuple[str, ...]:
    return tuple(s.name for s in STAGES)


def first() -> Stage:
    return STAGES[0]


def stage(name: str) -> Stage:
    for row in STAGES:
        if row.name == name:
            return row
    raise KeyError(f"no stage {name!r} in the stage table (stages.STAGES)")


def following(name: str) -> Stage | None:
    """The stage queued when `name` is done, or None at the end."""
    after = stage(name).next
    return stage(after) if after is not None else None


def of_pool(pool: Pool) -> tuple[str, ...]:
    return tuple(s.name for s in STAGES if s.pool is pool)
