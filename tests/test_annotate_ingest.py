"""Ingest annotates new clips before they are recorded, so the push carries the tagger's
tags, the quality tags, the caption note and the models in the provenance note; when
annotation fails the clips are still recorded and pushed, and the failure is reported."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import ALL_KEY, start_fake_hydrus

pytest.importorskip("onnxruntime", reason="extra 'tag' not installed")
pytest.importorskip("onnx", reason="extra 'dev' not installed")
pytest.importorskip("transformers", reason="extra 'caption' not installed")

from tiny_models import build_captioner, build_wd_tagger  # noqa: E402

from hydrus_motion.cli import main  # noqa: E402

CLIPS = 4  # scenes_video: four scenes, each long enough after trimming


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("ingest-models")
    return build_wd_tagger(root / "wd"), build_captioner(root / "cap")


@pytest.fixture()
def hydrus():
    fake = start_fake_hydrus()
    yield fake
    fake.stop()


def ingest(tmp_path, scenes_video, hydrus, capsys, annotate: dict) -> tuple[int, dict]:
    video = tmp_path / "Film.mp4"
    video.write_bytes(scenes_video.read_bytes())
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({
        "paths": {"state_dir": str(tmp_path / "state")}, "encode": {"preset": "ultrafast"},
        "hydrus": {"api_url": hydrus.url, "access_key": ALL_KEY, "backoff_s": 0},
        "annotate": annotate}))
    code = main(["ingest", str(video), "--config", str(config), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_ingest_pushes_tags_caption_and_models_with_each_clip(
        tmp_path, scenes_video, hydrus, capsys, models):
    wd, cap = models
    code, result = ingest(tmp_path, scenes_video, hydrus, capsys, {
        "tagger": {"model": str(wd)},
        "captioner": {"model": str(cap), "max_new_tokens": 4, "frames": 2}})
    assert code == 0, result
    clips = result["videos"][0]["clips"]
    assert len(clips) == CLIPS and result["summary"]["not_annotated"] == 0
    for n, clip in enumerate(clips, start=1):
        assert clip["push"] == "imported" and clip["annotation_errors"] == []
        tags = hydrus.current_tags(clip["sha256"])
        assert {"motion:clip", "motion:pending", "source:film", f"scene:{n}"} <= tags
        assert {t for t in tags if t.startswith("rating:")} == {"rating:general"}
        assert {t for t in tags if t.startswith("motion:")} - {"motion:clip", "motion:pending"}
        notes = hydrus.db.notes[clip["sha256"]]
        assert notes["caption"].strip()
        models_used = json.loads(notes["hydrus-motion"])["models"]
        assert models_used["tagger"]["model"] == str(wd)
        assert models_used["tagger"]["general_threshold"] == 0.35
        assert models_used["captioner"]["model"] == str(cap)
        assert models_used["sampling"]["mode"] == "peak"
        assert {"flow", "camera", "cadence", "sharpness", "brightness"} <= \
            set(models_used["scores"])
        if importlib.util.find_spec("rapidocr"):  # extra 'text'
            assert {"text", "subtitles", "logo"} <= set(models_used["scores"])
            assert models_used["text"]["model"].startswith("rapidocr:")


@pytest.mark.expect_error_log  # a broken or missing model is an ERROR line, once
def test_a_failed_annotation_loses_no_clip_and_is_reported(
        tmp_path, scenes_video, hydrus, capsys):
    code, result = ingest(tmp_path, scenes_video, hydrus, capsys, {
        "tagger": {"model": "nobody/not-cached-tagger"}, "captioner": {"model": None}})
    assert code == 0, result  # the clips are in Hydrus; only their model tags are missing
    clips = result["videos"][0]["clips"]
    assert len(clips) == CLIPS and result["summary"]["not_annotated"] == CLIPS
    for clip in clips:
        assert clip["push"] == "imported"
        (error,) = clip["annotation_errors"]
        assert "tagger model 'nobody/not-cached-tagger' is not in the Hugging Face cache" in error
        tags = hydrus.current_tags(clip["sha256"])
        assert not any(t.startswith("rating:") for t in tags)
        assert any(t.startswith("motion:") and t not in ("motion:clip", "motion:pending")
                   for t in tags)  # quality needs no model: still there
        models_used = json.loads(hydrus.db.notes[clip["sha256"]]["hydrus-motion"])["models"]
        assert models_used["tagger"] is None and models_used["errors"] == [error]
        assert "caption" not in hydrus.db.notes[clip["sha256"]]
