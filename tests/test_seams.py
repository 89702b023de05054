"""The flows through their seams, with fakes: no ffmpeg, no trainer, no wall clock."""

from __future__ import annotations

import json

import pytest
from conftest import ALL_KEY, start_fake_hydrus
from fakes import FakeClock, FakeCutter, FakeDetector, FakeTrainer, fake_video_info

from hydrus_motion import nightly, pipeline
from hydrus_motion.config import config_from_dict
from hydrus_motion.errors import HydrusMotionError
from hydrus_motion.hydrus.gateway import connect_gateway
from hydrus_motion.hydrus.push import PushResult
from hydrus_motion.store import open_store
from hydrus_motion.store.runs import RunLog
from hydrus_motion.store.states import RunOutcome


@pytest.fixture()
def hydrus():
    fake = start_fake_hydrus()
    yield fake
    fake.stop()


def test_ingest_and_push_run_through_fake_detector_and_cutter_without_ffmpeg(
        tmp_path, hydrus, monkeypatch):
    video = tmp_path / "film.mp4"
    video.write_bytes(b"not decoded by anyone: the fakes stand in for ffmpeg")
    # no probe seam of its own yet: the one ffprobe call answers from the fake's numbers
    monkeypatch.setattr(pipeline, "probe_video", lambda path, tools: fake_video_info(path))
    cfg = config_from_dict({
        "paths": {"state_dir": str(tmp_path / "state"), "clips_dir": str(tmp_path / "clips")},
        "tools": {"ffmpeg": str(tmp_path / "no-ffmpeg"), "ffprobe": str(tmp_path / "no-probe")},
        "hydrus": {"api_url": hydrus.url, "access_key": ALL_KEY, "backoff_s": 0},
        "clips": {"crop": "off", "min_frames": 16},
        "encode": {"deinterlace": "off"},
        "annotate": {"enabled": False}})
    store = open_store(tmp_path / "state")
    detector, cutter = FakeDetector(cuts=[40, 44, 90]), FakeCutter()

    result = pipeline.ingest_video(video, cfg, store, detector=detector, cutter=cutter)
    assert detector.seen == [video]
    # scenes [0,40) [40,44) [44,90) [90,120), trimmed beside each cut by the planner;
    # the 4-frame one is too short for a clip
    assert [(s.start_frame, s.end_frame) for s in cutter.cut_spans] == [(0, 38), (46, 88),
                                                                        (92, 120)]
    assert [d.start_frame for d in result.plan.dropped] == [40]
    assert (tmp_path / "film.mp4.scenes.txt").is_file()  # the sidecar, as detection leaves it

    outcomes = pipeline.push(connect_gateway(cfg), store, result.clips)
    assert [o.result for o in outcomes] == [PushResult.IMPORTED] * 3
    for record in result.clips:
        assert record.sha256 in hydrus.db.files
        assert {"motion:clip", "source:film"} <= hydrus.current_tags(record.sha256)

    again = pipeline.ingest_video(video, cfg, store, detector=detector, cutter=cutter)
    assert again.reused and len(cutter.cut_spans) == 3  # nothing detected or cut twice
    assert detector.seen == [video]


def test_the_clock_decides_when_a_job_is_due_and_when_a_run_started(tmp_path):
    from hydrus_motion.store.queue import JobQueue

    clock = FakeClock(start=1_000_000.0)
    store = open_store(tmp_path)
    queue = JobQueue(store, clock)
    queue.add_source("aa", "/w/a.mp4", "a.mp4", 1)
    job = queue.claim(("detect",))
    queue.retry(job, "ffmpeg exploded", after_s=60)
    clock.advance(59.5)
    assert queue.claim(("detect",)) is None
    clock.advance(1)
    assert queue.claim(("detect",)).attempts == 1

    runs = RunLog(store, clock)
    run = runs.start("nightly")
    clock.advance(30)
    runs.finish(run, RunOutcome.OK)
    last = runs.last_attempt("nightly")
    assert (last.started_at, last.finished_at, last.outcome) == (1_000_060.5, 1_000_090.5,
                                                                 RunOutcome.OK)


def approved_clip(fake, path) -> str:
    """A clip as ingest leaves it in Hydrus, approved by a person (as in test_export)."""
    gateway = connect_gateway(config_from_dict(
        {"hydrus": {"api_url": fake.url, "access_key": ALL_KEY}}))
    file_hash = gateway.import_file(path).hash
    gateway.add_tags(file_hash, ["motion:clip", "motion:pending", "source:film"])
    fake.person_edits_tags(file_hash, add=["approved"])
    gateway.set_notes(file_hash, {"hydrus-motion": json.dumps(
        {"source": {"name": "film.mp4", "sha256": "ab" * 32},
         "clip": {"scene": 1, "fps": 10.0, "frames": 10}}), "caption": "a test pattern"})
    return file_hash


def test_the_nightly_job_trains_through_the_trainer_it_is_given(tmp_path, hydrus,
                                                                unique_mp4):
    approved_clip(hydrus, unique_mp4())
    cfg = config_from_dict({
        "paths": {"state_dir": str(tmp_path / "state")},
        "hydrus": {"api_url": hydrus.url, "access_key": ALL_KEY, "backoff_s": 0},
        "train": {"pretrained_model": "a/model-the-fake-never-loads"}})
    trainer = FakeTrainer(fail="the trainer ran out of GPU memory")
    with pytest.raises(nightly.NightlyFailed) as failed:
        nightly.nightly_steps(cfg, open_store(tmp_path / "state"), connect_gateway(cfg),
                         trainer=trainer, clock=FakeClock())
    assert len(trainer.calls) == 1 and not trainer.calls[0]["resume"]
    # the run is named after the clock's time (UTC): FakeClock starts at 2027-01-15 08:00
    assert trainer.calls[0]["run_dir"] == tmp_path / "state/training/runs/20270115-080000"
    details = failed.value.details
    assert details.export.clips == 1
    assert (details.train.action, details.train.outcome, details.train.error) == (
        "train", "failed", "the trainer ran out of GPU memory")
    assert isinstance(failed.value, HydrusMotionError)
