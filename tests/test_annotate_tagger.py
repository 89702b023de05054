"""The WD tagger end to end through `hydrus-motion tag`, with a tiny ONNX model whose
outputs are a known function of the pixels (tests/tiny_models.py says which)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import ffmpeg, run_cli

pytest.importorskip("onnxruntime", reason="extra 'tag' not installed")
pytest.importorskip("onnx", reason="extra 'dev' not installed")

from tiny_models import TAGS, build_wd_tagger, fake_hub_cache, write_tags_csv  # noqa: E402

from hydrus_motion.annotate import annotate_clips  # noqa: E402
from hydrus_motion.annotate.annotator import _shared_tagger  # noqa: E402
from hydrus_motion.config import config_from_dict  # noqa: E402


def colour_clip(path: Path, parts: list[tuple[str, float]], size: str) -> Path:
    """Solid colours one after another (seconds each), 20 fps."""
    inputs = []
    for colour, seconds in parts:
        inputs += ["-f", "lavfi", "-i", f"color=c={colour}:size={size}:rate=20:duration={seconds}"]
    n = len(parts)
    ffmpeg(*inputs, "-filter_complex",
           "".join(f"[{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=0,format=yuv420p",
           "-c:v", "libx264", "-crf", "10", str(path))
    return path


@pytest.fixture(scope="module")
def wd(tmp_path_factory) -> Path:
    return build_wd_tagger(tmp_path_factory.mktemp("wd") / "model")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tagclips")
    return {
        # 16:9, blue 20 frames, red 40 (frames 20-59, the middle half), blue 20
        "blue_red_blue": colour_clip(d / "brb.mp4", [("blue", 1), ("red", 2), ("blue", 1)],
                                     "320x180"),
        "lime_portrait": colour_clip(d / "lime.mp4", [("lime", 2)], "180x320"),
        "red_square": colour_clip(d / "square.mp4", [("red", 2)], "240x240"),
    }


def tag_json(*args: str, env: dict | None = None) -> tuple[int, dict, str]:
    proc = run_cli("tag", *args, "--json", env=env)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout else {}, proc.stderr


def by_name(doc: dict) -> dict[str, dict]:
    return {Path(c["path"]).stem: c for c in doc["clips"]}


def test_channel_order_padding_resizing_peak_frames_and_thresholds(wd, clips):
    code, doc, err = tag_json(*map(str, clips.values()), "--tagger-model", str(wd),
                              "--captioner-model", "none")
    assert code == 0, err
    c = by_name(doc)
    brb = c["brb"]
    # peak sampling: only frames from the red middle half, so red wins on every frame
    assert brb["tagger_frames"] and all(20 <= i < 60 for i in brb["tagger_frames"])
    assert set(brb["tags"]["general"]) == {"red frame", "letterboxed"}  # BGR; white bands
    assert brb["tags"]["general"]["red frame"] > 0.99
    assert brb["tags"]["character"] == {"red hero (series)": pytest.approx(1, abs=1e-3)}
    assert brb["tags"]["rating"] == {"sensitive": pytest.approx(1, abs=1e-3)}
    assert brb["hydrus_tags"][:4] == ["red frame", "letterboxed",
                                      "character:red hero (series)", "rating:sensitive"]
    # portrait: padded left and right, so the top and bottom rows are picture, not white
    assert set(c["lime"]["tags"]["general"]) == {"^_^"}  # kaomoji keep their underscore
    assert c["lime"]["tags"]["rating"] == {"general": pytest.approx(0.8808, abs=1e-3)}
    assert set(c["square"]["tags"]["general"]) == {"red frame"}  # square: no padding
    assert c["brb"]["caption"] is None


def test_uniform_sampling_averages_and_each_category_has_its_threshold(wd, clips, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"annotate:\n  sampling: uniform\n  frames: 4\n  tagger:\n"
                      f"    model: {wd}\n  captioner:\n    model: null\n")
    code, doc, err = tag_json(str(clips["blue_red_blue"]), "--config", str(config))
    assert code == 0, err
    (brb,) = doc["clips"]
    assert len(brb["tagger_frames"]) == 4
    general = brb["tags"]["general"]
    # two red and two blue frames: each colour averages ~0.5, over general's 0.35 ...
    assert general["red frame"] == pytest.approx(0.5, abs=0.02)
    assert general["blue frame"] == pytest.approx(0.5, abs=0.02)
    # ... but under character's 0.85, though red hero scores 1.0 on the red frames
    assert brb["tags"]["character"] == {}


def test_a_repo_id_is_read_from_the_hugging_face_cache_offline(wd, clips, tmp_path):
    fake_hub_cache(tmp_path / "hub", "tiny/wd-test-tagger", wd)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    code, doc, err = tag_json(str(clips["red_square"]), "--tagger-model", "tiny/wd-test-tagger",
                              "--captioner-model", "none", env=env)
    assert code == 0, err
    assert "red frame" in doc["clips"][0]["tags"]["general"]
    code, doc, err = tag_json(str(clips["red_square"]), "--tagger-model", "tiny/not-cached",
                              "--captioner-model", "none", env=env)
    assert code == 1
    (error,) = doc["clips"][0]["errors"]
    assert "tagger model 'tiny/not-cached' is not in the Hugging Face cache" in error
    assert "local folder" in error
    assert doc["clips"][0]["quality"] is not None  # what could be done still was


def test_an_unreadable_clip_is_reported_and_the_others_are_tagged(wd, clips, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n")
    code, doc, err = tag_json(str(bad), str(clips["red_square"]), "--tagger-model", str(wd),
                              "--captioner-model", "none")
    assert code == 1
    first, second = doc["clips"]
    assert first["ok"] is False and str(bad) in first["errors"][0]
    assert "not a video file" in first["errors"][0]
    assert second["ok"] is True and "red frame" in second["tags"]["general"]
    assert doc["summary"] == {"clips": 2, "failed": 1}


def _cfg(model: Path | str):
    return config_from_dict({"annotate": {"tagger": {"model": str(model)},
                                          "captioner": {"model": None}}})


@pytest.mark.expect_error_log  # a broken or missing model is an ERROR line, once
@pytest.mark.parametrize("broken, expected", [
    ("nchw", "expects tensor(float) ['batch', 3, 448, 448], not a WD tagger input"),
    ("short_csv", "selected_tags.csv lists 8 tags but"),
    ("no_csv", "missing selected_tags.csv"),
    ("absent", "not a folder and not a Hugging Face repo id"),
])
def test_broken_models_give_a_clear_error_per_clip(broken, expected, clips, tmp_path):
    folder = tmp_path / "m"
    if broken == "nchw":
        build_wd_tagger(folder, nchw=True)
    elif broken == "short_csv":
        build_wd_tagger(folder)
        write_tags_csv(folder / "selected_tags.csv", TAGS[:-1])
    elif broken == "no_csv":
        build_wd_tagger(folder)
        (folder / "selected_tags.csv").unlink()
    else:
        folder = tmp_path / "no" / "such" / "folder"
    results = annotate_clips([clips["red_square"], clips["lime_portrait"]], _cfg(folder))
    for r in results:
        assert not r.ok and r.tags is None and r.quality is not None
        assert expected in r.errors[0]


def test_a_model_with_a_fixed_batch_of_one_is_fed_one_frame_at_a_time(clips, tmp_path):
    model = build_wd_tagger(tmp_path / "b1", fixed_batch=1)
    (r,) = annotate_clips([clips["blue_red_blue"]], _cfg(model))
    assert r.ok and {t.name for t in r.tags.general} == {"red frame", "letterboxed"}


@pytest.mark.expect_error_log  # a broken or missing model is an ERROR line, once
def test_without_onnxruntime_the_error_names_the_extra(monkeypatch, wd, clips):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    _shared_tagger.cache_clear()  # no model loaded in an earlier test may answer
    (r,) = annotate_clips([clips["red_square"]], _cfg(wd))
    assert "hydrus-motion[tag]" in r.errors[0]
