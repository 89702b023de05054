"""The nightly run: its cron schedule, the lock that keeps it single, and its history.

One body, two ways in:
- `hydrus-motion nightly` runs it once (for a systemd timer or Task Scheduler);
- the daemon's APScheduler fires the same command as a child process at the configured
  cron time, so a heavy or crashing run never takes the daemon (or its memory) with it.

Either way `run_nightly` takes `nightly.lock` (an OS lock that dies with its holder, so a
crashed run never blocks the next one), records the run in the `runs` table, and calls
`nightly.nightly_steps`. A run missed while the daemon was down is run once at start-up, or
skipped, as `nightly.missed` says.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydrus_motion.config import Config, NightlyConfig, state_dir
from hydrus_motion.errors import HydrusMotionError
from hydrus_motion.reports import NightlyDetails, NightlyReport
from hydrus_motion.store.lock import LockHeld, ProcessLock
from hydrus_motion.store.runs import RunLog
from hydrus_motion.store.states import RunOutcome

log = logging.getLogger(__name__)
KIND = "nightly"


def cron_problem(expr: str) -> str | None:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expr, timezone=timezone.utc)
    except ValueError as exc:
        return (f"{expr!r} is not allowed ({exc}); allowed: 5 cron fields, minute hour "
                "day-of-month month day-of-week, such as '30 3 * * *'")
    return None


def timezone_problem(name: str | None) -> str | None:
    if name is None:
        return None
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return f"{name!r} is not allowed; allowed: an IANA zone such as Europe/Berlin, or null"
    return None


def zone(nightly: NightlyConfig) -> Any:
    if nightly.timezone:
        from zoneinfo import ZoneInfo

        return ZoneInfo(nightly.timezone)
    from tzlocal import get_localzone  # APScheduler's own dependency

    return get_localzone()


def trigger(nightly: NightlyConfig) -> Any:
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger.from_crontab(nightly.cron, timezone=zone(nightly))


def next_run(nightly: NightlyConfig, after: datetime | None = None) -> datetime | None:
    after = after or datetime.now(timezone.utc)
    return trigger(nightly).get_next_fire_time(None, after.astimezone(zone(nightly)))


def missed_run(nightly: NightlyConfig, last_started: float | None,
               now: datetime) -> datetime | None:
    """The scheduled time that passed with no run since `last_started`, if any.

    No run at all yet means nothing was missed: the schedule starts with the daemon.
    """
    if last_started is None:
        return None
    # +1 s: the run that started at a fire time must not count as that time missed
    due = next_run(nightly, datetime.fromtimestamp(last_started + 1, timezone.utc))
    return due if due is not None and due <= now else None


def run_nightly(cfg: Config) -> tuple[NightlyReport, int]:
    """One nightly run, unless another holds the lock. (report, exit code)."""
    from hydrus_motion.hydrus.gateway import connect_gateway
    from hydrus_motion.nightly import NightlyFailed, nightly_steps
    from hydrus_motion.store import open_store

    store = open_store(state_dir(cfg))
    runs = RunLog(store)
    try:
        lock = ProcessLock(state_dir(cfg) / "nightly.lock").acquire()
    except LockHeld as held:
        run_id = runs.start(KIND)
        reason = f"another nightly run (pid {held.pid}) is in progress"
        runs.finish(run_id, RunOutcome.SKIPPED, reason)
        log.info("nightly: skipped: %s", reason)
        return NightlyReport(run_id, RunOutcome.SKIPPED, reason, NightlyDetails()), 0
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a stop ends it at a safe point
    run_id = runs.start(KIND)
    log.info("nightly: run %d started", run_id)
    try:
        details = nightly_steps(cfg, store, connect_gateway(cfg))
        runs.finish(run_id, RunOutcome.OK, details=details.as_json())
    except HydrusMotionError as exc:
        # what the run did before it failed
        done = exc.details if isinstance(exc, NightlyFailed) else NightlyDetails()
        runs.finish(run_id, RunOutcome.FAILED, exc.message, details=done.as_json())
        log.error("nightly: run %d failed: %s", run_id, exc.message)
        return NightlyReport(run_id, RunOutcome.FAILED, exc.message, done), 1
    except KeyboardInterrupt:
        runs.finish(run_id, RunOutcome.FAILED, "interrupted by a stop request")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        lock.release()
        store.close()
    return NightlyReport(run_id, RunOutcome.OK, None, details), 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class NightlySchedule:
    """APScheduler in the daemon: at each cron time, run `hydrus-motion nightly` once."""

    def __init__(self, cfg: Config, config_path: Path | None, stop: threading.Event):
        self.cfg = cfg
        self.config_path = config_path
        self.stop_event = stop
        self._child: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._scheduler: Any = None

    def start(self, last_started: float | None) -> datetime | None:
        """Start the schedule (and a missed run per policy); the next scheduled time."""
        from apscheduler.schedulers.background import BackgroundScheduler

        nightly = self.cfg.nightly
        self._scheduler = BackgroundScheduler(timezone=zone(nightly), job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
        self._scheduler.add_job(self.fire, trigger(nightly), id=KIND)
        now = datetime.now(timezone.utc)
        missed = missed_run(nightly, last_started, now)
        if missed and nightly.missed == "run":
            log.info("nightly: the run due %s was missed; running it now", _show(missed))
            self._scheduler.add_job(self.fire, "date", run_date=now, id=f"{KIND}-missed")
        elif missed:
            log.info("nightly: the run due %s was missed; skipped (nightly.missed: skip)",
                     _show(missed))
        self._scheduler.start()
        return next_run(nightly, now)

    def fire(self) -> None:
        if self.stop_event.is_set():
            return
        argv = [sys.executable, "-m", "hydrus_motion", "nightly"]
        if self.config_path:
            argv += ["--config", str(self.config_path)]
        from hydrus_motion.tools import start_process

        with self._lock:
            self._child = start_process(argv, stdin=subprocess.DEVNULL)
        code = self._child.wait()  # its own log lines go to our stderr, one per event
        with self._lock:
            self._child = None
        if code != 0 and not self.stop_event.is_set():  # a stop's exit code is expected
            log.warning("nightly: the run exited with %d (see `hydrus-motion status`)", code)

    def stop(self, grace_s: float) -> None:
        """Ask a running nightly to stop (SIGTERM), kill it after `grace_s`, stop firing."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        with self._lock:
            child = self._child
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            from hydrus_motion.tools import kill_process_group

            kill_process_group(child)


def _show(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")
