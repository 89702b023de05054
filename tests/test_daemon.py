"""`hydrus-motion daemon` as an operator runs it: a real subprocess, a real watch folder,
real ffmpeg and the Hydrus test server, with the faults the issue names: kill -9 in the
middle of a video, Hydrus down for a while, a file still growing, 50 videos at once, and
broken files. Intervals are shortened through the config so each test takes seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import ALL_KEY, ffmpeg, run_cli, start_fake_hydrus
from daemon_harness import DaemonUnderTest, stop_all

from hydrus_motion.store import open_store
from hydrus_motion.store.db import MIGRATIONS
from hydrus_motion.store.runs import RunLog

SCENES_CLIPS = 4  # conftest's scenes_video: four scenes, each long enough for a clip
TEMP_MARKS = (".hydrus-motion-", ".part", ".tmp")
NAME = "Fïlm [1080p] #1.mp4"


@pytest.fixture(autouse=True)
def no_daemon_outlives_its_test():
    yield
    stop_all()


def children_of(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def temp_files(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*")
            if any(mark in p.name for mark in TEMP_MARKS)]


def assert_scenes_clips_in_hydrus_once(fake, daemon: DaemonUnderTest, source_tag: str) -> None:
    clips = daemon.query("SELECT sha256, push_status FROM clips WHERE path LIKE ?",
                         f"%{source_tag}%")
    assert len(clips) == SCENES_CLIPS and {s for _, s in clips} == {"pushed"}
    hashes = [h for h, _ in clips]
    assert set(hashes) <= set(fake.db.files)
    for file_hash in hashes:
        tags = fake.current_tags(file_hash)
        assert {"motion:clip", "motion:pending", f"source:{source_tag}"} <= tags
        assert "hydrus-motion" in fake.db.notes[file_hash]


@pytest.fixture()
def hydrus():
    fake = start_fake_hydrus()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def many_videos(tmp_path_factory) -> list[Path]:
    """50 tiny, all different (so are their clips): 20-frame slices of one moving pattern."""
    folder = tmp_path_factory.mktemp("many")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-frames:v", "1000",
           "-c:v", "libx264", "-preset", "ultrafast", "-g", "20", "-f", "segment",
           "-segment_frames", ",".join(str(20 * n) for n in range(1, 50)),
           "-reset_timestamps", "1", str(folder / "tiny%02d.mp4"))
    videos = sorted(folder.glob("tiny*.mp4"))
    assert len(videos) == 50
    return videos


def test_fifty_videos_broken_files_duplicates_and_temp_names(
        tmp_path, hydrus, scenes_video, many_videos):
    daemon = DaemonUnderTest(tmp_path, hydrus, cpu_workers=2, clips={"min_frames": 10},
                             nightly={"cron": "0 3 * * *", "timezone": "UTC"})
    # a nightly run two days ago: the one due since then was missed and runs at start-up
    RunLog(open_store(daemon.state)).finish(RunLog(open_store(daemon.state)).start("nightly"),
                                            "ok")
    with sqlite3.connect(daemon.state / "state.sqlite3") as conn:
        conn.execute("UPDATE runs SET started_at = started_at - 2 * 86400")
    daemon.start()
    daemon.wait_for(lambda: [r[0] for r in daemon.query("SELECT outcome FROM runs")] ==
                    ["ok", "ok"], "the missed nightly run")
    for video in many_videos:
        shutil.copy(video, daemon.watch / video.name)
    shutil.copy(scenes_video, daemon.watch / "film.mp4")
    daemon.wait_for(lambda: "film.mp4" in daemon.sources(), "film.mp4 taken")
    (daemon.watch / "sub").mkdir()
    shutil.copy(scenes_video, daemon.watch / "sub" / "film copy.mp4")  # same content
    (daemon.watch / "empty.mp4").write_bytes(b"")
    (daemon.watch / "truncated.mp4").write_bytes(scenes_video.read_bytes()[:20000])
    (daemon.watch / "notes.mp4").write_text("not a video at all\n" * 100)
    (daemon.watch / "download.mp4.part").write_bytes(scenes_video.read_bytes())
    (daemon.watch / ".hidden.mp4").write_bytes(scenes_video.read_bytes())

    daemon.wait_for(lambda: len(daemon.sources()) == 54 and daemon.settled(), "all videos",
                    timeout=240)
    peak_rss_kib = int(next(line.split()[1] for line in
                            Path(f"/proc/{daemon.proc.pid}/status").read_text().splitlines()
                            if line.startswith("VmHWM:")))
    sources = daemon.sources()
    assert sources.pop("empty.mp4") == sources.pop("truncated.mp4") == \
        sources.pop("notes.mp4") == "quarantined"
    assert set(sources.values()) == {"done"} and len(sources) == 51
    # every clip in Hydrus, once: 50 tiny videos give one clip each
    pushed = daemon.query("SELECT sha256 FROM clips WHERE push_status = 'pushed'")
    assert len(pushed) == 50 + SCENES_CLIPS == len(hydrus.db.files)
    imports = [r for r in hydrus.requests if r[1] == "/add_files/add_file"]
    assert len(imports) == len(pushed)
    assert_scenes_clips_in_hydrus_once(hydrus, daemon, "film")
    # broken files: quarantined with a reason that names the problem
    quarantine = daemon.state / "quarantine"
    reasons = {p.name: p.read_text() for p in quarantine.glob("*.reason.txt")}
    assert "the file is empty (0 bytes)" in reasons["empty.mp4.reason.txt"]
    assert "truncated" in reasons["truncated.mp4.reason.txt"]
    assert "not a video file" in reasons["notes.mp4.reason.txt"]
    assert (quarantine / "notes.mp4").exists()
    # done videos archived with their sidecars; the duplicate skipped (archived, not cut)
    archive = daemon.state / "archive"
    assert (archive / "film.mp4").exists() and (archive / "film.mp4.scenes.txt").exists()
    assert (archive / "film copy.mp4").exists()
    assert not (archive / "film copy.mp4.scenes.txt").exists()
    assert "film copy.mp4: skipped: same content as film.mp4" in daemon.log.read_text()
    # temp and hidden names untouched; nothing else left in the watch folder
    left = sorted(p.name for p in daemon.watch.rglob("*") if p.is_file())
    assert left == [".hidden.mp4", "download.mp4.part"]
    assert "nightly: the run due" in daemon.log.read_text()  # missed, run at start-up
    assert daemon.stop() == 0
    assert ALL_KEY not in daemon.log.read_text()
    assert peak_rss_kib < 400 * 1024, f"daemon peak RSS {peak_rss_kib} KiB"

    status = run_cli("status", "--json", "--config", str(daemon.config))
    doc = json.loads(status.stdout)
    assert doc["queue"]["push"]["done"] == 51 and doc["queue"]["detect"]["failed"] == 3
    assert doc["videos"] == {"done": 51, "quarantined": 3}
    assert {q["name"] for q in doc["quarantined"]} == {"empty.mp4", "truncated.mp4",
                                                      "notes.mp4"}
    assert doc["runs"][0]["outcome"] == "ok" and not doc["daemon"]["running"]


def encoders(daemon: DaemonUnderTest) -> list[int]:
    return [pid for pid in children_of(daemon.proc.pid) if b"libx264" in cmdline(pid)]


def scratch_dirs(daemon: DaemonUnderTest) -> set[Path]:
    return set((daemon.state / "clips").glob("*/.hydrus-motion-*.tmp"))


def clips_being_encoded(daemon: DaemonUnderTest, stage: str, stale: set[Path]) -> bool:
    """The one pass (detect) encodes in the daemon's own process, into a scratch folder
    (not one a killed run left); the two-pass cutter (slice) runs ffmpeg children."""
    if stage == "detect":
        return any(list(d.glob("clip*.mp4")) for d in scratch_dirs(daemon) - stale)
    return bool(encoders(daemon))


@pytest.mark.parametrize("stage,sections", [
    ("detect", {}),  # a new video is cut in the detect stage's one pass (issue 17)
    ("slice", {"scenes": {"fast_decode": True}})])  # which the two passes do
def test_kill_9_in_the_middle_of_a_video_loses_and_duplicates_nothing(
        tmp_path, hydrus, scenes_video, stage, sections):
    # a slow encode so the kill lands while clips are being encoded
    daemon = DaemonUnderTest(tmp_path, hydrus, encode={"preset": "veryslow"},
                             sections=sections).start()
    shutil.copy(scenes_video, daemon.watch / "film.mp4")
    daemon.wait_for(lambda: clips_being_encoded(daemon, stage, set()), "clips being encoded")
    time.sleep(0.3)  # into the encode: the scratch folder holds partial clips
    assert (stale := scratch_dirs(daemon))
    kids = encoders(daemon)
    daemon.kill9()
    assert stage == "detect" or kids, "killed too late: ffmpeg had finished"
    deadline = time.monotonic() + 2  # far less than the encode has left
    while any(alive(pid) for pid in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in kids), "ffmpeg outlived the killed daemon"
    assert daemon.query(f"SELECT status FROM jobs WHERE stage = '{stage}'") == [("running",)]
    if stage == "detect":  # a kill mid-pass leaves no sidecar and no finished clip
        assert not list((daemon.state / "clips").glob("*/*.mp4"))
        assert not list(daemon.watch.glob("*.scenes.txt"))

    daemon.start()
    assert "1 interrupted job(s) resumed" in daemon.log.read_text()
    # now SIGTERM in the middle of the same cut: a safe stop, the video is not blamed
    daemon.wait_for(lambda: clips_being_encoded(daemon, stage, stale),
                    "clips being encoded again")
    kids = encoders(daemon)
    started = time.monotonic()
    assert daemon.stop() == 0 and time.monotonic() - started < 5
    after_stop = daemon.log.read_text().rpartition("stopping at a safe point")[2]
    assert stage != "detect" or "scenes (adaptive)" not in after_stop  # stopped mid-decode
    assert not any(alive(pid) for pid in kids)
    assert daemon.query(f"SELECT status, attempts FROM jobs WHERE stage = '{stage}'") == \
        [("queued", 0)]
    assert daemon.sources() == {"film.mp4": "active"}
    assert temp_files(daemon.state, daemon.watch) == []
    assert f"{stage} interrupted by the stop; queued again" in daemon.log.read_text()

    daemon.start()
    daemon.wait_for(daemon.settled, "the video after the restarts", timeout=180)
    assert daemon.stop() == 0
    assert daemon.sources() == {"film.mp4": "done"}
    assert_scenes_clips_in_hydrus_once(hydrus, daemon, "film")
    assert len(hydrus.db.files) == SCENES_CLIPS
    assert len([r for r in hydrus.requests if r[1] == "/add_files/add_file"]) == SCENES_CLIPS
    assert temp_files(daemon.state, daemon.watch) == []


def test_kill_9_in_the_middle_of_a_push_uploads_nothing_twice(tmp_path, hydrus, scenes_video):
    daemon = DaemonUnderTest(tmp_path, hydrus).start()
    shutil.copy(scenes_video, daemon.watch / "film.mp4")
    deadline = time.monotonic() + 90
    while not any(path == "/add_files/add_file" for _, path in list(hydrus.requests)):
        assert time.monotonic() < deadline, daemon.log.read_text()[-2000:]
        time.sleep(0.002)
    daemon.kill9()  # the first clip is in Hydrus, our store does not know it yet
    assert daemon.query("SELECT status FROM jobs WHERE stage = 'push'") == [("running",)]
    daemon.start()
    daemon.wait_for(daemon.settled, "the push after the restart")
    assert daemon.stop() == 0
    assert_scenes_clips_in_hydrus_once(hydrus, daemon, "film")
    uploads = [r for r in hydrus.requests if r[1] == "/add_files/add_file"]
    assert len(uploads) == SCENES_CLIPS  # the one Hydrus had was not sent again
    assert "already in hydrus" in daemon.log.read_text()


def test_hydrus_down_local_stages_go_on_and_pushes_drain_when_it_is_back(
        tmp_path, hydrus, scenes_video):
    hydrus.stop()
    daemon = DaemonUnderTest(tmp_path, hydrus).start()
    shutil.copy(scenes_video, daemon.watch / NAME)  # an awkward name, too
    daemon.wait_for(lambda: len(daemon.query("SELECT 1 FROM clips")) == SCENES_CLIPS and
                    daemon.query("SELECT status FROM jobs WHERE stage = 'push'") ==
                    [("queued",)], "clips cut while Hydrus is down")
    time.sleep(1.0)  # several retry periods: the push must still wait
    assert daemon.query("SELECT status FROM jobs WHERE stage = 'push'") == [("queued",)]
    assert daemon.sources() == {NAME: "active"}
    assert (daemon.watch / NAME).exists()  # kept until its clips are in Hydrus
    assert "hydrus: unavailable, pushes wait" in daemon.log.read_text()

    hydrus.start()  # same port
    daemon.wait_for(daemon.settled, "pushes after Hydrus came back")
    assert "hydrus: reachable again" in daemon.log.read_text()
    assert daemon.stop(signal.SIGINT) == 0
    assert_scenes_clips_in_hydrus_once(hydrus, daemon, "fïlm [1080p] #1")
    assert daemon.sources() == {NAME: "done"}
    assert (daemon.state / "archive" / f"{NAME}.scenes.txt").exists()
    assert ALL_KEY not in daemon.log.read_text()  # not even in the errors it logged


def test_reconcile_stage_repairs_what_a_hydrus_crash_lost(tmp_path, hydrus, scenes_video):
    no_commit = "d4" * 32  # may import, tag and note, but not force a commit
    hydrus.keys[no_commit] = ("no commit", (1, 2, 3, 7))
    daemon = DaemonUnderTest(tmp_path, hydrus, key=no_commit, reconcile_after_s=1.5).start()
    shutil.copy(scenes_video, daemon.watch / "film.mp4")
    daemon.wait_for(lambda: daemon.query("SELECT status FROM jobs WHERE stage = 'push'") ==
                    [("done",)], "the push")
    assert len(hydrus.db.files) == SCENES_CLIPS
    hydrus.crash()  # kill -9 before Hydrus' own 30 s commit: every write is gone
    assert hydrus.db.files == {}
    daemon.wait_for(daemon.settled, "the reconcile stage")
    assert daemon.stop() == 0
    assert_scenes_clips_in_hydrus_once(hydrus, daemon, "film")
    assert "reconcile repaired 4 clip(s) Hydrus had lost" in daemon.log.read_text()


def test_a_file_still_growing_is_not_taken_before_it_settles(tmp_path, hydrus, scenes_video):
    daemon = DaemonUnderTest(tmp_path, hydrus, settle_s=2.0, after_success="delete").start()
    data = scenes_video.read_bytes()
    target = daemon.watch / "growing.mp4"
    with target.open("wb") as fh:
        step = len(data) // 20
        for n in range(0, len(data), step):  # ~3 s of writes, each far sooner than settle_s
            fh.write(data[n:n + step])
            fh.flush()
            os.fsync(fh.fileno())
            time.sleep(0.15)
            assert daemon.sources() == {}, "taken while it was still growing"
    daemon.wait_for(lambda: daemon.sources() == {"growing.mp4": "done"}, "the settled file")
    assert daemon.query("SELECT size FROM sources") == [(len(data),)]
    assert daemon.stop() == 0
    assert_scenes_clips_in_hydrus_once(hydrus, daemon, "growing")
    assert list(daemon.watch.iterdir()) == []  # after_success: delete, sidecar included


def test_nightly_one_shot_records_runs_and_never_runs_twice_at_once(tmp_path, hydrus):
    daemon = DaemonUnderTest(tmp_path, hydrus)
    done = run_cli("nightly", "--json", "--config", str(daemon.config))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["outcome"] == "ok" and doc["details"]["reconcile"] == {"checked": 0}
    assert doc["details"]["train"] == {"action": "skip", "reason": "no approved clips yet",
                                       "run": ""}
    from hydrus_motion.store.lock import ProcessLock

    with ProcessLock(daemon.state / "nightly.lock"):  # as if a run were in progress
        done = run_cli("nightly", "--json", "--config", str(daemon.config))
    assert done.returncode == 0 and json.loads(done.stdout)["outcome"] == "skipped"
    hydrus.stop()
    done = run_cli("nightly", "--json", "--config", str(daemon.config))
    assert done.returncode == 1 and "Hydrus at" in json.loads(done.stdout)["error"]
    status = json.loads(run_cli("status", "--json", "--config", str(daemon.config)).stdout)
    assert [r["outcome"] for r in status["runs"]] == ["failed", "skipped", "ok"]


def test_daemon_refuses_a_second_instance_and_a_missing_watch_folder(tmp_path, hydrus):
    # no models: doctor's model checks have their own tests (test_doctor_models.py)
    daemon = DaemonUnderTest(tmp_path, hydrus, sections={"annotate": {"enabled": False}}).start()
    second = run_cli("daemon", "--config", str(daemon.config))
    assert second.returncode == 1 and f"another daemon (pid {daemon.proc.pid})" in second.stderr
    doctor = run_cli("doctor", "--json", "--config", str(daemon.config))
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert doctor.returncode == 0, doctor.stdout
    assert checks["daemon"]["detail"] == f"running (pid {daemon.proc.pid})"
    assert f"schema {len(MIGRATIONS)}, journal wal" in checks["state folder"]["detail"]
    assert checks["watch folder"]["ok"] and checks["file events"]["ok"]
    assert checks["quarantine folder"]["ok"] and checks["nightly schedule"]["ok"]
    assert daemon.stop() == 0
    shutil.rmtree(daemon.watch)
    gone = run_cli("daemon", "--config", str(daemon.config))
    assert gone.returncode == 1 and "the watch folder does not exist" in gone.stderr
    doctor = run_cli("doctor", "--json", "--config", str(daemon.config))
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert doctor.returncode == 1 and not checks["watch folder"]["ok"]


def test_the_cron_job_runs_the_nightly_one_shot_as_a_child_and_records_it(tmp_path, hydrus):
    import threading
    from datetime import datetime, timezone

    from hydrus_motion.config import load_config
    from hydrus_motion.schedule import NightlySchedule

    daemon = DaemonUnderTest(tmp_path, hydrus, nightly={"cron": "15 4 * * *",
                                                        "timezone": "Asia/Tokyo"})
    schedule = NightlySchedule(load_config(daemon.config), daemon.config, threading.Event())
    upcoming = schedule.start(last_started=None)  # never ran: nothing missed, nothing runs
    assert (upcoming.hour, upcoming.minute, str(upcoming.tzinfo)) == (4, 15, "Asia/Tokyo")
    try:
        time.sleep(0.5)
        assert daemon.query("SELECT COUNT(*) FROM runs") in ([], [(0,)])
        # the cron time comes: APScheduler fires the job as it would at 04:15 in Tokyo
        schedule._scheduler.get_job("nightly").modify(next_run_time=datetime.now(timezone.utc))
        daemon.wait_for(lambda: daemon.query("SELECT outcome FROM runs") == [("ok",)],
                        "the scheduled run")
    finally:
        schedule.stop(grace_s=5)
