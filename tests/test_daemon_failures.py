"""The daemon against the failures that lose real videos (issue 18): a full disk, a
quarantined video dropped again or retried, clips `ingest` queued while Hydrus was down,
a nightly run skipped by the lock. Real subprocess, real ffmpeg (behind a small wrapper
that can pretend the disk is full), the Hydrus test server."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pytest
from conftest import run_cli, start_fake_hydrus
from daemon_harness import DaemonUnderTest, stop_all

from hydrus_motion.store import open_store
from hydrus_motion.store.runs import RunLog

SCENES_CLIPS = 4


@pytest.fixture(autouse=True)
def no_daemon_outlives_its_test():
    yield
    stop_all()


@pytest.fixture()
def hydrus():
    fake = start_fake_hydrus()
    yield fake
    fake.stop()


def fake_ffmpeg(tmp: Path) -> tuple[Path, Path]:
    """An ffmpeg that fails as `mode` says (nospace | broken), else is the real one."""
    mode = tmp / "ffmpeg.mode"
    script = tmp / "ffmpeg-wrapper"
    script.write_text(f"""#!/bin/sh
case "$(cat '{mode}' 2>/dev/null)" in
  nospace) echo "[out#0/segment] segment000000.mp4: No space left on device" >&2; exit 1;;
  broken) echo "{tmp}/x.mp4: Invalid data found when processing input" >&2; exit 1;;
esac
exec {shutil.which("ffmpeg")} "$@"
""")
    script.chmod(0o755)
    return script, mode


def jobs(daemon: DaemonUnderTest) -> list[tuple]:
    return daemon.query("SELECT stage, status, attempts, waits, last_error FROM jobs "
                        "WHERE last_error IS NOT NULL")


def test_a_full_disk_leaves_the_video_queued_and_it_is_processed_once_space_returns(
        tmp_path, hydrus, scenes_video):
    wrapper, mode = fake_ffmpeg(tmp_path)
    mode.write_text("nospace")
    daemon = DaemonUnderTest(tmp_path, hydrus, max_attempts=1, local_retry_s=0.1,
                             local_retry_max_s=0.3,
                             sections={"tools": {"ffmpeg": str(wrapper)}}).start()
    shutil.copy(scenes_video, daemon.watch / "film.mp4")
    daemon.wait_for(lambda: any(w >= 3 for _, _, _, w, _ in jobs(daemon)), "three waits")
    [(stage, status, attempts, _, error)] = jobs(daemon)
    # max_attempts is 1: had a wait counted as an attempt, it would have given up
    assert status == "queued" and attempts == 0 and "no space left on device" in error
    assert "not the video's fault" in error
    assert daemon.sources() == {"film.mp4": "active"}
    assert (daemon.watch / "film.mp4").exists()
    assert not list((daemon.state / "quarantine").glob("*"))
    shown = run_cli("status", "--config", str(daemon.config))
    assert "no space left on device" in shown.stdout and "film.mp4" in shown.stdout

    mode.write_text("")  # space is back
    daemon.wait_for(daemon.settled, "the video once space returned")
    assert daemon.sources() == {"film.mp4": "done"}
    assert len(daemon.query("SELECT 1 FROM clips WHERE push_status = 'pushed'")) == SCENES_CLIPS
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log.read_text()


def test_a_quarantined_video_dropped_again_or_retried_is_processed(
        tmp_path, hydrus, scenes_video):
    wrapper, mode = fake_ffmpeg(tmp_path)
    mode.write_text("broken")
    daemon = DaemonUnderTest(tmp_path, hydrus, after_success="keep",
                             sections={"tools": {"ffmpeg": str(wrapper)}}).start()
    shutil.copy(scenes_video, daemon.watch / "film.mp4")
    daemon.wait_for(lambda: daemon.sources() == {"film.mp4": "quarantined"}, "quarantine")
    quarantined = daemon.state / "quarantine" / "film.mp4"
    assert quarantined.exists() and Path(f"{quarantined}.reason.txt").exists()

    mode.write_text("")  # whatever broke it is fixed; a person drops it in again
    shutil.copy(quarantined, daemon.watch / "again.mp4")
    daemon.wait_for(lambda: daemon.sources() == {"again.mp4": "done"}, "the video dropped again")
    assert "taken again (it was quarantined before" in daemon.log.read_text()
    assert "skipped: same content" not in daemon.log.read_text()
    assert len(daemon.query("SELECT 1 FROM clips WHERE push_status = 'pushed'")) == SCENES_CLIPS

    # the same from the command line: quarantined again, then `retry NAME`
    other = tmp_path / "other.mp4"
    shutil.copy(scenes_video, other)
    with other.open("ab") as fh:
        fh.write(b"\0" * 16)  # other content, same pictures
    mode.write_text("broken")
    shutil.copy(other, daemon.watch / "other.mp4")
    daemon.wait_for(lambda: daemon.sources().get("other.mp4") == "quarantined", "quarantine")
    mode.write_text("")
    done = run_cli("retry", "other.mp4", "--json", "--config", str(daemon.config))
    assert done.returncode == 0, done.stderr
    [retried] = json.loads(done.stdout)["retried"]
    assert retried["was"] == "quarantined" and retried["path"] == str(
        (daemon.watch / "other.mp4").resolve())
    assert not (daemon.state / "quarantine" / "other.mp4.reason.txt").exists()
    daemon.wait_for(lambda: daemon.sources() == {"again.mp4": "done", "other.mp4": "done"},
                    "the retried video")
    # its pictures are again.mp4's, so are its clips' bytes: said, not hidden
    assert "other.mp4: done: 4 clip(s), 4 already known" in daemon.log.read_text()
    missing = run_cli("retry", "nothing.mp4", "--json", "--config", str(daemon.config))
    assert missing.returncode == 1 and json.loads(missing.stdout)["not_found"] == ["nothing.mp4"]
    assert daemon.stop() == 0


def test_the_daemon_pushes_clips_that_ingest_queued_while_hydrus_was_down(
        tmp_path, hydrus, scenes_video):
    daemon = DaemonUnderTest(tmp_path, hydrus, push_queued_s=0.2)
    hydrus.stop()
    video = tmp_path / "elsewhere.mp4"
    shutil.copy(scenes_video, video)
    done = run_cli("ingest", str(video), "--json", "--config", str(daemon.config))
    assert done.returncode == 1  # Hydrus is down: recorded, queued
    assert {c["push"] for c in json.loads(done.stdout)["videos"][0]["clips"]} == {"queued"}
    hydrus.start()
    daemon.start()
    daemon.wait_for(lambda: len(daemon.query(
        "SELECT 1 FROM clips WHERE push_status = 'pushed'")) == SCENES_CLIPS, "the push")
    hashes = [h for (h,) in daemon.query("SELECT sha256 FROM clips")]
    assert set(hashes) <= set(hydrus.db.files)
    assert "pushed 4 clip(s) queued outside the daemon" in daemon.log.read_text()
    assert daemon.stop(signal.SIGINT) == 0


def test_a_skipped_nightly_run_does_not_hide_the_one_that_was_missed(tmp_path, hydrus):
    daemon = DaemonUnderTest(tmp_path, hydrus, nightly={"cron": "0 3 * * *", "timezone": "UTC",
                                                        "missed": "skip"})
    runs = RunLog(open_store(daemon.state))
    runs.finish(runs.start("nightly"), "ok")
    runs.finish(runs.start("nightly"), "skipped", "another nightly run is in progress")
    runs.start("nightly")  # killed: never finished
    runs.conn.execute("UPDATE runs SET started_at = ? WHERE id = 1", (time.time() - 3 * 86400,))
    runs.conn.commit()
    daemon.start()
    assert "was missed; skipped (nightly.missed: skip)" in daemon.log.read_text()
    assert daemon.stop() == 0
