"""`hydrus-motion daemon`: the watcher, the stage workers and the nightly schedule.

    watch folder ─▶ intake (settle, hash, dedupe) ─▶ jobs table ─▶ workers ─▶ Hydrus
                                                                    cpu: detect, slice
                                                                    gpu: annotate
                                                                    hydrus: push, reconcile

One worker pool per `stages.Pool`; which stage runs where, in what order, is the stage
table's (stages.py).

All state is in SQLite (store/queue.py), so the daemon may die at any moment: a restart
re-queues the jobs that were running and goes on. Signal handlers only set `stop`; the
main thread then kills running ffmpeg children (each with its process group), and every
worker leaves its job at a safe point: interrupted work is queued again, never blamed on
the video. One process per state folder (`daemon.lock`, an OS lock a crash cannot leak).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from pathlib import Path

from hydrus_motion import stages
from hydrus_motion.config import Config, quarantine_dir, state_dir
from hydrus_motion.errors import HydrusMotionError
from hydrus_motion.policy import Action, Decision
from hydrus_motion.stages import Pool
from hydrus_motion.store.lock import LockHeld, ProcessLock
from hydrus_motion.store.states import JobStatus, SourceStatus

log = logging.getLogger(__name__)
STOP_GRACE_S = 20.0  # how long workers get to reach a safe point after a stop request


class Daemon:
    def __init__(self, cfg: Config, config_path: Path | None = None):
        self.cfg = cfg
        self.config_path = config_path
        self.stop = threading.Event()
        self.wake_scanner = threading.Event()
        self.counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self.next_sweep = 0.0  # when the hydrus worker next looks for clips others queued

    def count(self, what: str, n: int = 1) -> None:
        with self._counts_lock:
            self.counts[what] += n

    # -- lifecycle ---------------------------------------------------------------------

    def run(self) -> int:
        from hydrus_motion.schedule import NightlySchedule
        from hydrus_motion.store import open_store
        from hydrus_motion.store.queue import JobQueue
        from hydrus_motion.store.runs import RunLog

        watch = self._watch_dir()
        try:
            lock = ProcessLock(state_dir(self.cfg) / "daemon.lock").acquire()
        except LockHeld as held:
            raise HydrusMotionError(
                f"another daemon (pid {held.pid}) is using {state_dir(self.cfg)}",
                hint="stop it first, or give this one its own paths.state_dir") from None
        store = open_store(state_dir(self.cfg))
        queue = JobQueue(store)
        recovered = queue.recover()
        self._install_signals()
        threads = self._start_threads(watch)
        schedule = None
        next_run = None
        if self.cfg.nightly.enabled:
            schedule = NightlySchedule(self.cfg, self.config_path, self.stop)
            last = RunLog(store).last_attempt("nightly")  # skipped or killed runs: not run
            next_run = schedule.start(last.started_at if last else None)
        d = self.cfg.daemon
        log.info("daemon: watching %s (%s, settle %gs, rescan %gs); config %s; state %s; "
                 "workers: %d cpu, %d gpu, 1 hydrus; nightly %s; %d interrupted job(s) "
                 "resumed", watch, "recursive" if d.recursive else "top level only",
                 d.settle_s, d.rescan_s, self.config_path or "none (built-in defaults)",
                 state_dir(self.cfg), d.cpu_workers, d.gpu_workers,
                 f"'{self.cfg.nightly.cron}', next {next_run.isoformat(timespec='minutes')}"
                 if next_run else "off", recovered)
        try:
            while not self.stop.wait(1.0):
                pass
        finally:
            self._shutdown(threads, schedule)
            counts = queue.counts()
            waiting = sum(c[JobStatus.QUEUED] + c[JobStatus.RUNNING] for c in counts.values())
            failed = sum(c[JobStatus.FAILED] for c in counts.values())
            done = ", ".join(f"{n} {what}" for what, n in sorted(self.counts.items()) if n)
            log.info("daemon: stopped; this run: %s; queue: %d waiting, %d failed",
                     done or "nothing done", waiting, failed)
            store.close()
            lock.release()
        return 0

    def _watch_dir(self) -> Path:
        from hydrus_motion.config import watch_dir

        watch = watch_dir(self.cfg)
        if self.cfg.daemon.watch_dir is None:  # the default folder: ours to create
            watch.mkdir(parents=True, exist_ok=True)
        if not watch.is_dir():
            raise HydrusMotionError(f"{watch}: the watch folder does not exist",
                                    hint="create it, or fix daemon.watch_dir")
        return watch

    def _install_signals(self) -> None:
        def request_stop(signum: int, frame: object) -> None:  # a flag only; work stops later
            self.stop.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        if hasattr(signal, "SIGBREAK"):  # Windows: Ctrl+Break, and what services send
            signal.signal(signal.SIGBREAK, request_stop)

    def _start_threads(self, watch: Path) -> list[threading.Thread]:
        from hydrus_motion.ingest.watch import start_observer

        d = self.cfg.daemon
        self.observer = start_observer(watch.resolve(), d.recursive, self.wake_scanner)
        specs = [("intake", self._intake_loop, ())]
        specs += [(f"cpu-{n}", self._worker_loop, (Pool.CPU,)) for n in range(d.cpu_workers)]
        specs += [(f"gpu-{n}", self._worker_loop, (Pool.GPU,)) for n in range(d.gpu_workers)]
        specs += [("hydrus", self._hydrus_loop, ())]
        threads = []
        for name, target, args in specs:
            thread = threading.Thread(target=self._guard, args=(target, *args), name=name,
                                      daemon=True)  # a stuck thread must not block exit
            thread.start()
            threads.append(thread)
        return threads

    def _shutdown(self, threads: list[threading.Thread], schedule) -> None:
        from hydrus_motion.tools import children

        log.info("daemon: stopping at a safe point")
        self.wake_scanner.set()  # the intake may be waiting for the next rescan (minutes)
        killed = children.stop()  # ffmpeg children die with their process groups
        if killed:
            log.info("daemon: stopped %d running ffmpeg/ffprobe process(es); their work "
                     "is queued again", killed)
        if schedule is not None:
            schedule.stop(grace_s=STOP_GRACE_S / 2)
        if self.observer is not None:
            self.observer.stop()
        deadline = time.monotonic() + STOP_GRACE_S
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("daemon: %s did not reach a safe point in time; its job is "
                            "queued again at the next start", thread.name)

    def _guard(self, target, *args) -> None:
        """A thread's loop; a bug in it is logged and the loop starts over, never lost.
        The same error again (a full disk under the state database) is one line, not
        another traceback every few seconds."""
        from hydrus_motion.policy import local_reason, message_of

        last = None
        while not self.stop.is_set():
            try:
                target(*args)
                return
            except Exception as exc:
                name, message = threading.current_thread().name, message_of(exc)
                local = local_reason(exc)
                if local is not None:
                    log.warning("daemon: %s waits for this machine: %s", name, local)
                elif message != last:
                    log.exception("daemon: %s hit an unexpected error; restarting it", name)
                else:
                    log.warning("daemon: %s again: %s; restarting it", name, message)
                last = message
                self.stop.wait(5.0)

    # -- loops -------------------------------------------------------------------------

    def _intake_loop(self) -> None:
        from hydrus_motion.ingest.intake import Intake
        from hydrus_motion.store import open_store
        from hydrus_motion.store.queue import JobQueue

        d = self.cfg.daemon
        store = open_store(state_dir(self.cfg))
        intake = Intake(self.cfg, JobQueue(store))
        settle_poll = min(max(d.settle_s / 4, 0.05), 2.0)
        try:
            while not self.stop.is_set():
                before = intake.counts.copy()
                pending = intake.pass_once()
                for what, n in (intake.counts - before).items():
                    self.count(what, n)
                self.wake_scanner.wait(settle_poll if pending else d.rescan_s)
                self.wake_scanner.clear()
                self.stop.wait(min(settle_poll, 0.5))  # coalesce bursts of events
        finally:
            store.close()

    def _worker_loop(self, pool: Pool, gateway=None) -> None:
        from hydrus_motion.jobs import StageContext
        from hydrus_motion.store import open_store
        from hydrus_motion.store.queue import JobQueue

        store = open_store(state_dir(self.cfg))
        ctx = StageContext(self.cfg, store, JobQueue(store), gateway or _no_gateway)
        try:
            while not self.stop.is_set():
                job = ctx.queue.claim(stages.of_pool(pool))
                if job is None and gateway is not None and time.monotonic() >= self.next_sweep:
                    self.next_sweep = time.monotonic() + self.cfg.daemon.push_queued_s
                    if not self._push_queued(ctx):
                        return  # Hydrus is down: the hydrus loop reconnects
                    continue
                if job is None:
                    self.stop.wait(self.cfg.daemon.poll_s)
                    continue
                if self._run_job(ctx, job) is Action.WAIT_HYDRUS:
                    return  # the hydrus loop reconnects and starts this loop again
        finally:
            store.close()

    def _hydrus_loop(self) -> None:
        from hydrus_motion.hydrus.link import HydrusLink

        link = HydrusLink(self.cfg, self.stop, self.config_path)
        while not self.stop.is_set():
            if not link.connect():
                self.stop.wait(self.cfg.daemon.hydrus_retry_s)
                continue
            self._worker_loop(Pool.HYDRUS, gateway=link.gateway)
            link.lost()

    def _push_queued(self, ctx) -> bool:
        """Clips others queued (see jobs.push_queued); False when Hydrus went away."""
        from hydrus_motion.hydrus.gateway import HydrusAccessError, HydrusError
        from hydrus_motion.jobs import push_queued
        from hydrus_motion.policy import message_of

        try:
            self.count("pushed from the queue", push_queued(ctx))
        except HydrusError as exc:
            if exc.retryable or isinstance(exc, HydrusAccessError):
                log.warning("hydrus: queued clips wait for Hydrus: %s", exc.message)
                return False
            log.warning("hydrus: pushing queued clips failed: %s", exc.message)
        except Exception as exc:  # recorded per clip where it could be; one line here
            log.warning("hydrus: pushing queued clips failed: %s", message_of(exc))
        return True

    # -- one job ---------------------------------------------------------------------------

    def _run_job(self, ctx, job) -> Action | None:
        """Run one job; None when it is done, else what the policy decided."""
        from hydrus_motion.policy import decide

        name = ctx.queue.source(job.source_sha256).name
        d = self.cfg.daemon
        started = time.monotonic()
        try:
            stages.stage(job.stage).run(ctx, job)
        except Exception as exc:
            # a file that vanished is not broken: it may have been renamed (intake follows)
            present = Path(ctx.queue.source(job.source_sha256).path).exists()
            decision = decide(job.stage, exc, job.attempts, job.waits, d,
                              stopping=self.stop.is_set(), source_present=present)
            return self._apply(ctx, job, name, decision, exc)
        after = stages.following(job.stage)
        ctx.queue.finish(job, next_after_s=after.delay(d) if after else 0.0)
        self.count(f"{job.stage} done")
        log.info("%s: %s done in %.1f s", name, job.stage, time.monotonic() - started)
        return None

    def _apply(self, ctx, job, name: str, decision: Decision, exc: Exception) -> Action:
        """Carry out the policy's decision: one log line (a bug's traceback only once)."""
        act = decision.action
        if act is Action.REQUEUE:
            ctx.queue.retry(job, decision.reason, 0, attempted=False)
            log.info("%s: %s interrupted by the stop; queued again", name, job.stage)
            return act
        if act is Action.WAIT_HYDRUS:
            ctx.queue.retry(job, decision.reason, 0, attempted=False)  # due once Hydrus is back
            log.warning("%s: %s waits for Hydrus: %s", name, job.stage, decision.reason)
            return act
        if act is Action.WAIT_LOCAL:
            ctx.queue.wait(job, decision.reason, decision.delay_s)
            log.warning("%s: %s %s", name, job.stage, decision.reason)
            return act
        if act is Action.QUARANTINE:
            self._quarantine(ctx, job, decision.reason)
            return act
        # an error we do not explain is a bug: its traceback once, then one line an attempt
        trace = exc if decision.unexpected and job.attempts == 0 else None
        if act is Action.GIVE_UP:
            self._give_up(ctx, job, decision.reason, trace)
            return act
        ctx.queue.retry(job, decision.reason, decision.delay_s)
        log.warning("%s: %s failed (attempt %d of %d), retry in %.0f s: %s", name, job.stage,
                    job.attempts + 1, self.cfg.daemon.max_attempts, decision.delay_s,
                    decision.reason, exc_info=trace)
        return act

    def _quarantine(self, ctx, job, reason: str) -> None:
        from hydrus_motion.ingest.dispose import quarantine

        source = ctx.queue.source(job.source_sha256)
        try:
            target = quarantine(Path(source.path), quarantine_dir(self.cfg), source.sha256,
                                job.stage, reason)
        except OSError as exc:  # left where it is; remembered, so it is not taken again
            target = Path(source.path)
            reason = f"{reason} (could not move it to quarantine: {exc.strerror or exc})"
        ctx.queue.fail(job, reason)
        ctx.queue.fail_source(source.sha256, reason)
        ctx.queue.update_source(source.sha256, status=SourceStatus.QUARANTINED, path=str(target),
                                reason=reason)
        if target != Path(source.path):
            ctx.queue.forget(source.path)
        self.count("quarantined")
        log.warning("%s: quarantined to %s: %s", source.name, target, reason)

    def _give_up(self, ctx, job, reason: str, trace: Exception | None = None) -> None:
        ctx.queue.fail(job, reason)
        if stages.stage(job.stage).pool is Pool.CPU:  # the video itself is the problem
            ctx.queue.fail_source(job.source_sha256, reason)
            ctx.queue.update_source(job.source_sha256, status=SourceStatus.FAILED, reason=reason)
        self.count("failed")
        log.error("%s: %s failed for good: %s", ctx.queue.source(job.source_sha256).name,
                  job.stage, reason, exc_info=trace)


def _no_gateway():
    raise AssertionError("only the hydrus worker talks to Hydrus")
