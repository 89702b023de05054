"""The typed reports print the JSON the CLI always printed, and read back the run
history any earlier version wrote."""

from __future__ import annotations

import json

from hydrus_motion.reports import (
    ClipLine,
    ExportReport,
    IngestReport,
    NightlyDetails,
    NightlyReport,
    TrainReport,
    VideoReport,
)
from hydrus_motion.store.states import RunOutcome

# a nightly run's details as the runs table holds them (written before the reports)
STORED = {
    "reconcile": {"checked": 3, "unchanged": 3},
    "export": {"dataset_id": "d1", "changed": True, "clips": 12, "new": 2, "removed": 0,
               "skipped": 1, "frames": 400},
    "train": {"action": "train", "reason": "new data", "run": "r7", "outcome": "trained",
              "steps": 500, "final_loss": 0.1234, "seconds": 1840.2, "dataset_clips": 12,
              "eval": {"before": 0.2, "after": 0.15, "clips": 2}},
    "promotion": {"run": "r7", "promoted": False, "reason": "held-out loss worse"},
    "samples": {"files": 2, "in_hydrus": 2, "popup": True},
}


def test_nightly_details_read_back_and_print_the_stored_json_unchanged():
    details = NightlyDetails.from_json(STORED)
    assert details.train.steps == 500 and details.export.clips == 12
    assert json.dumps(details.as_json()) == json.dumps(STORED)  # same keys, same order


def test_a_run_that_stopped_early_reads_back_with_the_parts_it_reached():
    failed = {"reconcile": {"checked": 0},
              "export": STORED["export"],
              "train": {"action": "resume", "reason": "r6 was interrupted", "run": "r6",
                        "outcome": "failed", "error": "trainer exited with 1"}}
    details = NightlyDetails.from_json(failed)
    assert details.promotion is None and details.samples is None
    assert details.train.error == "trainer exited with 1"
    assert json.dumps(details.as_json()) == json.dumps(failed)
    assert details.summary() == " (12 clips; training failed: r6 was interrupted)"
    assert NightlyDetails.from_json({}).summary() == ""
    assert NightlyDetails.from_json(None).as_json() == {}


def test_the_status_line_of_a_trained_run():
    assert NightlyDetails.from_json(STORED).summary() == (
        " (12 clips; trained 500 steps, loss 0.1234, 1840 s; "
        "run r7 NOT promoted: held-out loss worse)")


def test_a_skipped_training_prints_no_outcome_keys():
    train = TrainReport("skip", "no approved clips yet", None)
    assert train.as_json() == {"action": "skip", "reason": "no approved clips yet", "run": None}
    report = NightlyReport(4, RunOutcome.OK, None, NightlyDetails(
        export=ExportReport("d", False, 0, 0, 0, 0, 0), train=train))
    assert json.dumps(report.as_json()) == (
        '{"run": 4, "outcome": "ok", "error": null, "details": {"export": {"dataset_id": "d", '
        '"changed": false, "clips": 0, "new": 0, "removed": 0, "skipped": 0, "frames": 0}, '
        '"train": {"action": "skip", "reason": "no approved clips yet", "run": null}}}')


def test_the_ingest_summary_counts_every_video_and_clip():
    clip = ClipLine("/c/a.mp4", "s1", 1, 0, 40, "queued", "hydrus down", ["tagger: no"])
    pushed = ClipLine("/c/b.mp4", "s2", 2, 40, 90, "imported", None, [])
    good = VideoReport("/v/a.mp4", clips=[clip, pushed], source_sha256="v1",
                       plan={"scene_count": 3, "dropped_scenes": [{"scene": 3}],
                             "dropped_summary": "1 of 3 scenes shorter"})
    bad = VideoReport("/v/b.mp4", ok=False, error="/v/b.mp4: not a video")
    report = IngestReport([good, bad])
    report.pushes.update(["imported"])
    assert report.summary() == {"videos": 2, "failed_videos": 1, "clips": 2, "queued": 1,
                                "imported": 1, "not_annotated": 1, "dropped_scenes": 1}
    assert not report.ok
    assert list(good.as_json()) == ["video", "ok", "error", "clips", "source_sha256",
                                    "scene_count", "dropped_scenes", "dropped_summary"]
    assert list(bad.as_json()) == ["video", "ok", "error", "clips"]
    assert good.as_json()["clips"][0] == {
        "path": "/c/a.mp4", "sha256": "s1", "scene": 1, "start_frame": 0, "end_frame": 40,
        "push": "queued", "error": "hydrus down", "annotation_errors": ["tagger: no"]}
