"""Validation samples of a run back into Hydrus, against the Hydrus test server."""

from __future__ import annotations

import json

import pytest
from conftest import ALL_KEY, ffmpeg, start_fake_hydrus

from hydrus_motion.config import config_from_dict
from hydrus_motion.hydrus.gateway import connect_gateway
from hydrus_motion.hydrus.samples import announce, publish_samples, run_summary

RUN = {"dataset_id": "d" * 64, "clips": 12, "steps": 40, "final_loss": 0.123456,
       "base_model": "/models/sd15", "init_module": "mm_sd_v15_v2.ckpt",
       "finished_at": "2026-11-21T05:00:00Z"}
POPUP_LESS_KEY = "e5" * 32


@pytest.fixture()
def hydrus():
    fake = start_fake_hydrus()
    fake.keys[POPUP_LESS_KEY] = ("no popups", (1, 2, 3, 6, 7))
    yield fake
    fake.stop()


def gateway_for(fake, key=ALL_KEY):
    return connect_gateway(config_from_dict({"hydrus": {"api_url": fake.url,
                                                        "access_key": key}}))


@pytest.fixture()
def samples(tmp_path, unique_mp4):
    gif = tmp_path / "sample-0.gif"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64:rate=8:duration=1", str(gif))
    return [unique_mp4(), gif]


def test_samples_arrive_tagged_with_the_run_and_a_readable_note(hydrus, samples):
    gateway = gateway_for(hydrus)
    cfg = config_from_dict({})
    published = publish_samples(gateway, cfg, RUN, "20261121-0300", samples)
    assert [p.result for p in published] == ["imported", "imported"]
    for p in published:
        assert hydrus.current_tags(p.hash) == {"motion:sample", "motion run:20261121-0300"}
        note = hydrus.db.notes[p.hash]["motion run"]
        assert "steps: 40, final loss: 0.1235" in note and "12 clips" in note
        assert json.loads(hydrus.db.notes[p.hash]["hydrus-motion"])["run"]["steps"] == 40
    assert hydrus.db.files[published[1].hash]["mime"] == "image/gif"

    again = publish_samples(gateway, cfg, RUN, "20261121-0300", samples)
    assert [p.result for p in again] == ["already in hydrus"] * 2
    assert len(hydrus.db.files) == 2

    hydrus.person_deletes_file(published[0].hash)
    assert publish_samples(gateway, cfg, RUN, "x", samples[:1])[0].result == "deleted"


def test_popup_names_the_run_and_attaches_the_samples(hydrus, samples):
    gateway = gateway_for(hydrus)
    hashes = [p.hash for p in publish_samples(gateway, config_from_dict({}), RUN, "r1",
                                               samples)]
    assert announce(gateway, "nightly run r1 finished", hashes)
    assert hydrus.popups == [{"status_title": "hydrus-motion",
                              "status_text_1": "nightly run r1 finished",
                              "files_label": "hydrus-motion", "hashes": hashes}]


def test_without_the_popup_permission_there_is_no_popup_and_no_error(hydrus):
    assert not announce(gateway_for(hydrus, POPUP_LESS_KEY), "done")
    assert hydrus.popups == []


def test_summary_tolerates_a_run_without_loss():
    assert "steps: ?, final loss: ?" in run_summary({}, "r")
