"""The `daemon:` and `nightly:` sections of the config: the watch folder, the workers,
the retry policy and the nightly schedule.

Part of hydrus_motion.config (which re-exports every name); defaults live here only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hydrus_motion.typed_yaml import in_range as _range

# Video containers the watch folder takes by default (daemon.include).
VIDEO_GLOBS = tuple(f"*.{ext}" for ext in (
    "mp4", "m4v", "mkv", "webm", "mov", "avi", "ts", "m2ts", "mts", "mpg", "mpeg", "wmv",
    "flv", "3gp", "ogv", "vob", "asf", "divx", "f4v"))


@dataclass(frozen=True)
class DaemonConfig:
    # The folder `hydrus-motion daemon` watches for new videos. null: `watch` in the
    # platform's data folder ($XDG_DATA_HOME/hydrus-motion/watch, else
    # ~/.local/share/hydrus-motion/watch on Linux), created when missing.
    watch_dir: str | None = None
    # Also take videos from folders inside watch_dir.
    recursive: bool = True
    # Which files in watch_dir are videos to take: glob patterns matched, ignoring case,
    # against the file name (or, with a "/", the path inside watch_dir). A file is taken
    # when it matches an include and no exclude; all others (subtitles, .nfo, .info.json,
    # thumbnails) are left where they are, never moved or quarantined.
    include: tuple[str, ...] = VIDEO_GLOBS
    exclude: tuple[str, ...] = ()
    # Where a video goes when done, and a broken one with its .reason.txt.
    # null: <state_dir>/archive and <state_dir>/quarantine.
    archive_dir: str | None = None
    quarantine_dir: str | None = None
    # What happens to a video (and its sidecar) once its clips are in Hydrus:
    # move it to archive_dir, keep it where it is, or delete it.
    after_success: Literal["move", "keep", "delete"] = "move"
    # A file is taken once its size and mtime stayed the same for this many seconds
    # (a copy or download in progress keeps changing them).
    settle_s: float = field(default=10.0, metadata=_range(0, 86400))
    # Full rescan of watch_dir every this many seconds, besides file-system events
    # (network drives often deliver none).
    rescan_s: float = field(default=60.0, metadata=_range(0.05, 86400))
    # How often idle workers look for due jobs.
    poll_s: float = field(default=1.0, metadata=_range(0.01, 60))
    # Parallel jobs: CPU stages (detect, slice; each runs ffmpeg) and the GPU stage
    # (annotate). Pushes to Hydrus run one at a time.
    cpu_workers: int = field(default=1, metadata=_range(1, 64))
    gpu_workers: int = field(default=1, metadata=_range(1, 16))
    # Failed stage attempts (not counting Hydrus being down) before a job is given up;
    # the wait between attempts starts at retry_backoff_s and doubles.
    max_attempts: int = field(default=5, metadata=_range(1, 100))
    retry_backoff_s: float = field(default=60.0, metadata=_range(0, 86400))
    # While Hydrus is unreachable, pushes wait and it is asked again this often.
    hydrus_retry_s: float = field(default=30.0, metadata=_range(0.05, 3600))
    # Each video's clips are re-checked in Hydrus this long after their push, to repair
    # what a Hydrus crash lost before its 30 s commit.
    reconcile_after_s: float = field(default=300.0, metadata=_range(0, 86400))
    # -- failures of this machine (issue 18) --
    # No space, permission denied, out of memory, ffmpeg killed: the job waits (never
    # counted, never quarantined); the wait starts at local_retry_s, doubles, is capped.
    local_retry_s: float = field(default=60.0, metadata=_range(0.01, 86400))
    local_retry_max_s: float = field(default=1800.0, metadata=_range(0.01, 86400))
    # GiB; intake pauses while the state or clips folder has less free space (0: never).
    min_free_gb: float = field(default=2.0, metadata=_range(0, 100000))
    # Seconds between looks for clips queued by others (`ingest` while Hydrus was down,
    # `ingest --no-push`), which the daemon then pushes.
    push_queued_s: float = field(default=60.0, metadata=_range(0.05, 86400))


@dataclass(frozen=True)
class NightlyConfig:
    # Run the nightly job from inside the daemon. Off: use `hydrus-motion nightly` from a
    # systemd timer or Task Scheduler instead (services/).
    enabled: bool = True
    # Standard 5-field cron expression: minute hour day-of-month month day-of-week.
    cron: str = "30 3 * * *"
    # IANA zone name such as Europe/Berlin; null: the machine's local zone.
    timezone: str | None = None
    # A scheduled run missed while the daemon was down: run it once at start-up, or skip
    # to the next scheduled time.
    missed: Literal["run", "skip"] = "run"
    # Train after the export when the dataset changed since the current checkpoint was
    # trained (changed), every night (always), or never (export only).
    train: Literal["changed", "always", "never"] = "changed"
    # Finished training runs kept besides the current one (older ones are deleted).
    keep_runs: int = field(default=2, metadata=_range(0, 1000))
    # Without train.validation_prompts, the captions of this many dataset clips are the
    # sample prompts (0: no samples).
    sample_prompts: int = field(default=2, metadata=_range(0, 32))
    # A popup in the Hydrus client when a run finished (needs the "manage popups"
    # permission; without it there is just no popup).
    popup: bool = True
    # -- promotion (issue 15) --
    # A run becomes current only when its held-out loss is at most (1 + gate_margin)
    # times the current module's; otherwise it is kept as a candidate (`promote RUN`).
    gate: bool = True
    gate_margin: float = field(default=0.02, metadata=_range(0, 10))  # relative, 0.02 = 2%
    # Also copy each promoted module here as hydrus-motion-<run>.safetensors (e.g.
    # ComfyUI/models/animatediff_models); null: only under the training folder.
    publish_dir: str | None = None
    # train.method lora: also copy each promoted run's motion LoRA here as
    # hydrus-motion-lora-<run>.safetensors (e.g. ComfyUI/models/animatediff_motion_lora).
    publish_lora_dir: str | None = None
