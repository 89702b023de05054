"""Issue 18's smaller items without a daemon: intake pausing on low space, status after
kill -9, --json on failure, each queued clip's own error, telemetry off, duplicate YAML
keys, doctor and lost clip files."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import ALL_KEY, start_fake_hydrus

from hydrus_motion.cli import main
from hydrus_motion.config import config_from_dict, load_config
from hydrus_motion.errors import ConfigError
from hydrus_motion.store import open_store
from hydrus_motion.store.queue import JobQueue


@pytest.fixture()
def hydrus():
    fake = start_fake_hydrus()
    yield fake
    fake.stop()


def test_intake_pauses_below_the_free_space_floor_once_and_resumes(tmp_path, caplog):
    from hydrus_motion.ingest.intake import Intake, low_space

    watch = tmp_path / "watch"
    watch.mkdir()
    (watch / "a.mp4").write_bytes(b"video bytes")
    cfg = config_from_dict({"paths": {"state_dir": str(tmp_path / "state")},
                            "daemon": {"watch_dir": str(watch), "settle_s": 0,
                                       "min_free_gb": 100000}})
    reason = low_space(cfg)  # no test machine has 100 000 GiB free
    assert reason is not None and "daemon.min_free_gb: 100000" in reason
    queue = JobQueue(open_store(tmp_path / "state"))
    intake = Intake(cfg, queue)
    caplog.set_level(logging.INFO)
    for _ in range(3):
        intake.pass_once()
    # the free figure in the reason moves as other programs write; the floor does not
    assert queue.counts()["detect"]["queued"] == 0 and "daemon.min_free_gb: 100000" in intake.paused
    intake.space_check = lambda cfg: None  # space is back
    intake.pass_once()
    intake.pass_once()
    assert queue.counts()["detect"]["queued"] == 1
    lines = [r.message for r in caplog.records if r.name.endswith("intake")]
    assert sum("intake paused" in line for line in lines) == 1
    assert sum("intake resumed" in line for line in lines) == 1
    from hydrus_motion.status import gather, render

    shown = render(gather(cfg))
    assert "intake: paused: only" in shown


def test_status_shows_a_dead_daemons_running_job_as_interrupted(tmp_path):
    from hydrus_motion.status import gather, render

    cfg = config_from_dict({"paths": {"state_dir": str(tmp_path)}})
    queue = JobQueue(open_store(tmp_path))
    queue.add_source("aa", "/w/a.mp4", "a.mp4", 1)
    queue.finish(queue.claim(("detect",)))
    queue.claim(("slice",))  # then kill -9: nobody holds daemon.lock
    doc = gather(cfg)
    assert doc["queue"]["slice"]["interrupted"] == 1 and "running" not in doc["queue"]["slice"]
    assert "slice     queued 0  interrupted 1" in render(doc)


def test_reconcile_json_with_hydrus_down_prints_json_with_the_error(tmp_path, hydrus, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"paths": {"state_dir": str(tmp_path / "state")},
                                  "hydrus": {"api_url": hydrus.url, "access_key": ALL_KEY,
                                             "retries": 0, "backoff_s": 0}}))
    hydrus.stop()
    assert main(["reconcile", "--json", "--config", str(config)]) == 1
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["ok"] is False and doc["command"] == "reconcile"
    assert "connection refused" in doc["error"].lower()
    assert ALL_KEY not in out.out + out.err


def test_a_config_error_is_json_too(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("clips:\n  min_frames: 10\n  min_frames: 20\n")
    assert main(["status", "--json", "--config", str(config)]) == 2
    assert "min_frames" in json.loads(capsys.readouterr().out)["error"]


def test_duplicate_yaml_keys_are_a_config_error_naming_the_key_and_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("daemon:\n  settle_s: 5\n  rescan_s: 9\n  settle_s: 7\n")
    with pytest.raises(ConfigError) as error:
        load_config(config)
    assert "daemon.settle_s: given twice (lines 2 and 4)" in str(error.value)
    (tmp_path / "ok.yaml").write_text("daemon:\n  settle_s: 5\nclips:\n  trim_frames: 1\n")
    assert load_config(tmp_path / "ok.yaml").daemon.settle_s == 5


def test_a_queued_clip_shows_its_own_error_not_another_clips(tmp_path, hydrus):
    from pathlib import Path

    from hydrus_motion.errors import HydrusMotionError
    from hydrus_motion.hydrus.push import leave_queued
    from hydrus_motion.store.db import ClipRecord

    store = open_store(tmp_path)
    records = []
    for n in range(3):
        record = ClipRecord(f"{n}" * 64, Path(f"/clips/c{n}.mp4"), "/v.mp4", "s", n, 0, 61,
                            (), {})
        store.add_clip(record)
        records.append(record)
    error = HydrusMotionError("hydrus: uploading /clips/c0.mp4 failed: connection reset")
    leave_queued(store, records[:1], error)
    leave_queued(store, records[1:], error, waiting_on=records[0])
    assert "c0.mp4 failed" in store.clip(records[0].sha256).last_error
    for other in records[1:]:
        text = store.clip(other.sha256).last_error
        assert "c0.mp4 failed" not in text and "the push stopped at c0.mp4" in text


def test_onnxruntime_telemetry_is_turned_off_when_the_tagger_loads(tmp_path, monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    from tiny_models import build_wd_tagger

    from hydrus_motion.annotate.wd_tagger import WdTagger

    order = []
    for name in ("disable_telemetry_events", "InferenceSession"):
        real = getattr(ort, name)
        monkeypatch.setattr(ort, name, lambda *a, _n=name, _r=real, **k: order.append(_n)
                            or _r(*a, **k))
    folder = build_wd_tagger(tmp_path / "tagger")
    cfg = config_from_dict({"annotate": {"tagger": {"model": str(folder),
                                                    "device": "cpu"}}}).annotate.tagger
    WdTagger(cfg).session  # noqa: B018 - loads it
    assert order == ["disable_telemetry_events", "InferenceSession"]  # off before it starts


def test_doctor_fails_when_recorded_clip_files_are_gone(tmp_path):
    from hydrus_motion.doctor import daemon_checks
    from hydrus_motion.store.db import ClipRecord

    cfg = config_from_dict({"paths": {"state_dir": str(tmp_path / "state")}})
    clip = tmp_path / "film-scene001-0-61.mp4"
    clip.write_bytes(b"clip")
    store = open_store(tmp_path / "state")
    store.add_clip(ClipRecord("c" * 64, clip, str(tmp_path / "film.mp4"), "s", 1, 0, 61, (),
                              {}))
    store.close()

    def check() -> object:
        return next(c for c in daemon_checks(cfg) if c.name == "clip files")

    assert check().ok
    clip.unlink()
    gone = check()
    assert not gone.ok and str(clip) in gone.detail and "hydrus-motion ingest" in gone.detail
    assert "(film.mp4)" in gone.detail
