"""The daemon's parts that need no daemon: queue, run history, lock, settle, names, schedule."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from fakes import FakeClock

from hydrus_motion.config import config_from_dict
from hydrus_motion.errors import ConfigError
from hydrus_motion.ingest.watch import SettleTracker, is_candidate_name
from hydrus_motion.schedule import missed_run
from hydrus_motion.store import open_store
from hydrus_motion.store.lock import LockHeld, ProcessLock, holder
from hydrus_motion.store.queue import JobQueue
from hydrus_motion.store.runs import RunLog


def test_a_video_moves_through_the_stages_in_order_and_each_step_is_durable(tmp_path):
    queue = JobQueue(open_store(tmp_path))
    assert queue.add_source("aa", "/w/a.mp4", "a.mp4", 10)
    assert not queue.add_source("aa", "/w/copy.mp4", "copy.mp4", 10)  # same content
    seen = []
    for stage in ("detect", "slice", "annotate", "push", "reconcile"):
        assert queue.claim(("push",) if stage != "push" else ("detect",)) is None
        job = queue.claim((stage,))
        assert job.stage == stage and job.source_sha256 == "aa"
        queue.finish(job)
        seen.append(stage)
    assert queue.claim(tuple(seen)) is None
    assert all(c["done"] == 1 for c in queue.counts().values())
    # a second connection (the way another thread or process sees it) agrees
    assert JobQueue(open_store(tmp_path)).counts() == queue.counts()


def test_running_jobs_of_a_dead_process_are_queued_again_and_backoff_is_honoured(tmp_path):
    clock = FakeClock()
    queue = JobQueue(open_store(tmp_path), clock)
    queue.add_source("aa", "/w/a.mp4", "a.mp4", 1)
    queue.add_source("bb", "/w/b.mp4", "b.mp4", 1)
    first = queue.claim(("detect",))
    second = queue.claim(("detect",))
    assert {first.source_sha256, second.source_sha256} == {"aa", "bb"}  # never the same one
    queue.retry(second, "ffmpeg exploded", after_s=3600)
    assert queue.counts()["detect"] == {"queued": 1, "running": 1, "done": 0, "failed": 0}
    assert JobQueue(open_store(tmp_path)).recover() == 1  # a restart after kill -9
    again = queue.claim(("detect",))
    assert again.source_sha256 == first.source_sha256
    assert queue.claim(("detect",)) is None  # the other one is not due for an hour
    clock.advance(3599)
    assert queue.claim(("detect",)) is None  # due in one more second
    clock.advance(2)
    assert queue.claim(("detect",)).attempts == 1
    failures = queue.failures()
    assert failures[0]["last_error"] == "ffmpeg exploded" and failures[0]["name"] == "b.mp4"


def test_run_history_and_missed_run_policy(tmp_path):
    runs = RunLog(open_store(tmp_path))
    run = runs.start("nightly")
    runs.finish(run, "ok", details={"reconcile": {"checked": 3}})
    assert runs.last("nightly")[0].details == {"reconcile": {"checked": 3}}
    nightly = config_from_dict({"nightly": {"cron": "30 3 * * *",
                                            "timezone": "Europe/Berlin"}}).nightly
    at = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    # last run yesterday 02:30 UTC (03:30 Berlin): today's 03:30 passed with no run
    yesterday = datetime(2026, 11, 19, 2, 30, tzinfo=timezone.utc).timestamp()
    assert missed_run(nightly, yesterday, at) == datetime(2026, 11, 20, 2, 30,
                                                          tzinfo=timezone.utc)
    today = datetime(2026, 11, 20, 2, 30, 5, tzinfo=timezone.utc).timestamp()
    assert missed_run(nightly, today, at) is None
    assert missed_run(nightly, None, at) is None  # never ran: nothing was missed


def test_bad_schedule_settings_are_config_errors_with_the_key():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"nightly": {"cron": "every night", "timezone": "Mars/Olympus"},
                          "daemon": {"after_success": "shred", "cpu_workers": 0}})
    text = str(err.value)
    assert "nightly.cron: 'every night' is not allowed" in text
    assert "nightly.timezone: 'Mars/Olympus' is not allowed" in text
    assert "daemon.after_success: 'shred' is not allowed; allowed: move, keep, delete" in text
    assert "daemon.cpu_workers: 0 is out of range" in text


def test_the_lock_dies_with_its_holder_even_on_kill_9(tmp_path):
    path = tmp_path / "x.lock"
    code = ("import sys, time; from hydrus_motion.store.lock import ProcessLock;"
            f"ProcessLock({str(path)!r}).acquire(); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(LockHeld) as held:
        ProcessLock(path).acquire()
    assert held.value.pid == proc.pid == holder(path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with ProcessLock(path):
        assert holder(path) is not None  # ours now
    assert holder(path) is None


def test_settle_needs_size_and_mtime_unchanged_for_the_whole_period():
    now = [0.0]
    tracker = SettleTracker(5.0, clock=lambda: now[0])
    assert not tracker.settled("f", 10, 1)
    now[0] = 4.9
    assert not tracker.settled("f", 10, 1)
    now[0] = 5.0
    assert tracker.settled("f", 10, 1)
    assert not tracker.settled("f", 11, 2)  # it grew: the clock starts again
    now[0] = 9.9
    assert not tracker.settled("f", 11, 2)
    now[0] = 10.0
    assert tracker.settled("f", 11, 2)


@pytest.mark.parametrize("name, ok", [
    ("film.mp4", True), ("Film Final.MKV", True), ("notes.txt", True),
    ("film.mp4.part", False), ("film.mp4.crdownload", False), ("film.mp4~", False),
    (".film.mp4", False), ("film.mp4.scenes.txt", False), ("film.mp4.reason.txt", False),
    ("Thumbs.db", False), ("~$film.mp4", False), ("film.mp4.tmp", False),
])
def test_temporary_hidden_and_own_names_are_never_taken(name, ok):
    assert is_candidate_name(name) is ok


def test_an_old_state_file_is_backed_up_and_upgraded_in_place(tmp_path):
    from hydrus_motion.store.db import MIGRATIONS

    path = tmp_path / "state.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
    conn.execute("INSERT INTO clips (sha256, path, source_path, source_sha256, scene, "
                 "start_frame, end_frame, tags, notes, created_at) VALUES "
                 "('c1', '/c.mp4', '/v.mp4', 's1', 1, 0, 61, '[]', '{}', 0)")
    conn.commit()
    conn.close()
    store = open_store(tmp_path)
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store.clip("c1").end_frame == 61  # kept
    assert JobQueue(store).add_source("s1", "/v.mp4", "v.mp4", 1)  # new tables work
    old = sqlite3.connect(tmp_path / "state.sqlite3.v1.bak")
    assert old.execute("PRAGMA user_version").fetchone()[0] == 1


def test_intake_takes_settled_files_once_and_remembers_kept_duplicates(tmp_path, monkeypatch):
    from hydrus_motion.ingest.intake import Intake

    watch = tmp_path / "watch"
    (watch / "deeper").mkdir(parents=True)
    cfg = config_from_dict({"paths": {"state_dir": str(tmp_path / "state")},
                            "daemon": {"watch_dir": str(watch), "after_success": "keep"}})
    now = [0.0]
    queue = JobQueue(open_store(tmp_path / "state"))
    intake = Intake(cfg, queue, SettleTracker(10, clock=lambda: now[0]))
    (watch / "a.mp4").write_bytes(b"same bytes")
    (watch / "deeper" / "b.mp4").write_bytes(b"same bytes")
    (watch / "c.mp4.part").write_bytes(b"still downloading")
    assert intake.pass_once() == 2  # both seen, neither settled
    now[0] = 10
    assert intake.pass_once() == 0
    assert intake.counts == {"taken": 1, "duplicates": 1}
    assert queue.counts()["detect"]["queued"] == 1
    assert (watch / "deeper" / "b.mp4").exists()  # keep: the duplicate stays, remembered
    hashed = []
    import hydrus_motion.ingest.intake as intake_module

    real = intake_module.file_sha256
    monkeypatch.setattr(intake_module, "file_sha256", lambda p: hashed.append(p) or real(p))
    now[0] = 100
    intake.pass_once()
    intake.pass_once()
    assert hashed == [] and intake.counts == {"taken": 1, "duplicates": 1}


def test_intake_follows_a_renamed_file_and_retries_one_that_failed_for_good(tmp_path):
    from hydrus_motion.ingest.intake import Intake
    from hydrus_motion.store.states import SourceStatus

    watch = tmp_path / "watch"
    watch.mkdir()
    cfg = config_from_dict({"paths": {"state_dir": str(tmp_path / "state")},
                            "daemon": {"watch_dir": str(watch), "settle_s": 0}})
    queue = JobQueue(open_store(tmp_path / "state"))
    intake = Intake(cfg, queue)
    (watch / "a.mp4").write_bytes(b"video bytes")
    intake.pass_once()
    intake.pass_once()
    sha = queue.claim(("detect",)).source_sha256
    (watch / "a.mp4").rename(watch / "renamed.mp4")  # while its job runs
    intake.pass_once()
    intake.pass_once()
    assert queue.source(sha).path == str((watch / "renamed.mp4").resolve())
    assert intake.counts == {"taken": 1}

    queue.fail_source(sha, "disk full")
    queue.update_source(sha, status=SourceStatus.FAILED, reason="disk full")
    (watch / "renamed.mp4").rename(watch / "again.mp4")  # a person drops it again
    intake.pass_once()
    intake.pass_once()
    assert queue.source(sha).status == "active" and queue.source(sha).name == "again.mp4"
    assert queue.claim(("detect",)).source_sha256 == sha  # from the first stage again


def test_status_calls_a_run_whose_process_died_interrupted(tmp_path):
    from hydrus_motion.status import gather, render

    cfg = config_from_dict({"paths": {"state_dir": str(tmp_path)},
                            "nightly": {"timezone": "UTC"}})
    runs = RunLog(open_store(tmp_path))
    runs.start("nightly")  # never finished, and nobody holds nightly.lock: it was killed
    doc = gather(cfg)
    assert doc["runs"][0]["outcome"] == "interrupted"
    assert doc["nightly"]["next"].endswith("03:30+00:00")
    assert "run 1 nightly" in render(doc) and "interrupted" in render(doc)


def test_a_watch_folder_that_goes_away_is_one_warning_and_comes_back(tmp_path, caplog):
    from hydrus_motion.ingest.intake import Intake

    watch = tmp_path / "watch"
    cfg = config_from_dict({"paths": {"state_dir": str(tmp_path / "state")},
                            "daemon": {"watch_dir": str(watch), "settle_s": 0}})
    intake = Intake(cfg, JobQueue(open_store(tmp_path / "state")))
    for _ in range(3):
        intake.pass_once()
    assert [r.message for r in caplog.records].count(
        f"watch: cannot list {watch} (No such file or directory); trying again every rescan") == 1
    watch.mkdir()
    (watch / "a.mp4").write_bytes(b"x")
    intake.pass_once()
    intake.pass_once()
    assert intake.counts == {"taken": 1} and intake.unlistable is None
