"""The stage table (stages.py) is the one place the order lives: the queue, the daemon's
pools and the policy all follow a row added there, with no other change."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest
from conftest import ALL_KEY, start_fake_hydrus

from hydrus_motion import stages
from hydrus_motion.config import config_from_dict
from hydrus_motion.daemon import Daemon
from hydrus_motion.policy import Action, decide
from hydrus_motion.stages import Pool, Stage
from hydrus_motion.store import open_store
from hydrus_motion.store.queue import JobQueue
from hydrus_motion.tools import children


def test_the_table_links_every_stage_once():
    names = stages.names()
    assert names == ("detect", "slice", "annotate", "push", "reconcile")
    assert len(set(names)) == len(names)
    for row in stages.STAGES:
        assert row.next is None or row.next in names
    assert [s.name for s in stages.STAGES if s.next is None] == ["reconcile"]
    assert stages.of_pool(Pool.CPU) == ("detect", "slice")
    assert stages.of_pool(Pool.HYDRUS) == ("push", "reconcile")
    with pytest.raises(KeyError, match="no stage 'nope'"):
        stages.stage("nope")


def test_reconcile_is_due_a_while_after_the_push():
    cfg = config_from_dict({"daemon": {"reconcile_after_s": 42}}).daemon
    assert stages.following("push").delay(cfg) == 42
    assert stages.following("detect").delay(cfg) == 0
    assert stages.following("reconcile") is None


def test_the_queue_follows_a_row_added_to_the_table(tmp_path, monkeypatch):
    extra = Stage("fingerprint", lambda ctx, job: None, Pool.GPU, next=None)
    table = (*stages.STAGES[:-1], Stage("reconcile", stages.STAGES[-1].run, Pool.HYDRUS,
                                        next="fingerprint"), extra)
    monkeypatch.setattr(stages, "STAGES", table)
    queue = JobQueue(open_store(tmp_path))
    assert queue.add_source("s1", "/v.mp4", "v.mp4", 1)
    for name in ("detect", "slice", "annotate", "push", "reconcile", "fingerprint"):
        job = queue.claim((name,))
        assert job is not None and job.stage == name
        queue.finish(job)
    assert queue.claim(stages.names()) is None
    assert queue.counts()["fingerprint"]["done"] == 1


def test_the_policy_reads_the_pool_of_a_new_stage(monkeypatch):
    from hydrus_motion.errors import BadVideo

    monkeypatch.setattr(stages, "STAGES", (Stage("probe", lambda c, j: None, Pool.CPU),
                                           Stage("tidy", lambda c, j: None, Pool.GPU)))
    cfg = config_from_dict({}).daemon
    assert decide("probe", BadVideo("x.mp4", "broken"), 0, 0, cfg).action is Action.QUARANTINE
    assert decide("tidy", BadVideo("x.mp4", "broken"), 0, 0, cfg).action is Action.RETRY


def test_a_stage_added_through_the_table_alone_runs_in_the_daemon(tmp_path: Path,
                                                                   monkeypatch):
    """A `checksum` row before detect: the daemon queues it first, runs it on its pool's
    worker, and queues the table's next stage when it is done."""
    ran: list[tuple[str, str, str]] = []
    daemon: Daemon | None = None

    def checksum(ctx, job) -> None:
        source = ctx.queue.source(job.source_sha256)
        ran.append((job.stage, source.name, threading.current_thread().name))
        daemon.stop.set()  # stop at the next safe point: after this job is recorded done

    row = Stage("checksum", checksum, Pool.GPU, next="detect")
    monkeypatch.setattr(stages, "STAGES", (row, *stages.STAGES))
    # the daemon's stop stops this process's children and owns its signals: undone after
    monkeypatch.setattr(children, "stopping", children.stopping)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    fake = start_fake_hydrus()
    try:
        watch = tmp_path / "watch"
        watch.mkdir()
        (watch / "clip.mp4").write_bytes(b"the bytes of a video")
        cfg = config_from_dict({
            "paths": {"state_dir": str(tmp_path / "state")},
            "hydrus": {"api_url": fake.url, "access_key": ALL_KEY, "backoff_s": 0},
            "daemon": {"watch_dir": str(watch), "settle_s": 0.1, "rescan_s": 0.1,
                       "poll_s": 0.05, "hydrus_retry_s": 0.1},
            "nightly": {"enabled": False}})
        daemon = Daemon(cfg)
        timer = threading.Timer(60, daemon.stop.set)  # a hang fails below, never blocks
        timer.start()
        try:
            assert daemon.run() == 0
        finally:
            timer.cancel()
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
    finally:
        fake.stop()
    assert ran == [("checksum", "clip.mp4", "gpu-0")]
    jobs = open_store(tmp_path / "state").conn.execute(
        "SELECT stage, status FROM jobs ORDER BY id").fetchall()
    assert [tuple(j) for j in jobs] == [("checksum", "done"), ("detect", "queued")]
