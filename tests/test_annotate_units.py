"""Annotation parts without models: aggregation rules, frame choice, quality, duplicates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import ffmpeg

from hydrus_motion.annotate.quality import measure, near_duplicates, quality_tags
from hydrus_motion.annotate.sampling import FrameChoice, pick, sample_clip
from hydrus_motion.annotate.tags import TagList, aggregate, mcut
from hydrus_motion.config import ToolsConfig, config_from_dict
from hydrus_motion.errors import BadVideo
from hydrus_motion.hydrus.scheme import readable_tag

TAGS = TagList(("general", "sensitive", "questionable", "explicit", "cat", "dog", "sky",
                "alice (wonderland)", "bob"), np.array([9, 9, 9, 9, 0, 0, 0, 4, 4]))


def tagger_cfg(**tagger):
    return config_from_dict({"annotate": {"tagger": tagger}}).annotate.tagger


def test_probabilities_are_averaged_over_frames_before_the_thresholds():
    probs = np.array([[0.1, 0.7, 0.1, 0.1, 0.9, 0.3, 0.36, 0.9, 0.8],
                      [0.6, 0.2, 0.1, 0.1, 0.7, 0.5, 0.34, 0.8, 0.95]])
    r = aggregate(probs, TAGS, tagger_cfg())
    assert r.rating.name == "sensitive" and r.rating.score == pytest.approx(0.45)
    assert [t.name for t in r.general] == ["cat", "dog", "sky"]  # 0.8, 0.4, 0.35
    assert [t.name for t in r.character] == ["bob", "alice (wonderland)"]  # .875, .85
    r = aggregate(probs, TAGS, tagger_cfg(general_threshold=0.5, character_threshold=0.86))
    assert [t.name for t in r.general] == ["cat"] and [t.name for t in r.character] == ["bob"]


def test_mcut_cuts_at_the_largest_gap_and_characters_keep_a_floor():
    assert mcut(np.array([0.9, 0.85, 0.3, 0.2])) == pytest.approx(0.575)
    probs = np.array([[0.5, 0.1, 0.1, 0.1, 0.9, 0.85, 0.3, 0.1, 0.05]])
    r = aggregate(probs, TAGS, tagger_cfg(general_mode="mcut", character_mode="mcut"))
    assert [t.name for t in r.general] == ["cat", "dog"]
    assert [t.name for t in r.character] == []  # mcut 0.075 is under the 0.15 floor


def test_include_and_exclude_use_either_spelling():
    probs = np.full((1, 9), 0.99)
    r = aggregate(probs, TAGS, tagger_cfg(exclude=["dog"], include=["cat", "dog",
                                                                   "alice (wonderland)"]))
    assert [t.name for t in r.general] == ["cat"]
    assert [t.name for t in r.character] == ["alice (wonderland)"]
    assert r.hydrus_tags() == ["cat", "character:alice (wonderland)", "rating:general"]


def test_tag_names_follow_the_danbooru_novelai_spelling():
    assert readable_tag("long_hair") == "long hair"
    assert readable_tag("^_^") == "^_^" and readable_tag("0_0") == "0_0"


def test_peak_frames_come_from_the_middle_and_uniform_from_everywhere():
    frames = list(range(100))
    assert pick(frames, 100, FrameChoice("peak", 5, 0.5)) == [30, 40, 50, 60, 70]
    assert pick(frames, 100, FrameChoice("uniform", 4)) == [12, 37, 62, 87]
    assert pick(list(range(0, 100, 8)), 100, FrameChoice("peak", 3, 0.5)) == [32, 48, 64]
    assert pick([0, 1, 2], 3, FrameChoice("peak", 5, 0.5)) == [0, 1, 2]  # short clip


def clip(path: Path, source: str) -> Path:
    ffmpeg("-f", "lavfi", "-i", source, "-frames:v", "60", "-pix_fmt", "yuv420p",
           "-c:v", "libx264", "-crf", "18", str(path))
    return path


@pytest.fixture(scope="module")
def quality_clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("quality")
    return {
        "static": clip(d / "static.mp4", "testsrc2=size=320x240:rate=30,trim=end_frame=1,"
                                         "loop=loop=-1:size=1,setpts=N/30/TB"),
        "moving": clip(d / "moving.mp4", "testsrc2=size=320x240:rate=30"),
        "pan": clip(d / "pan.mp4", "mandelbrot=size=320x240:rate=30"),
        "dark": clip(d / "dark.mp4", "color=c=0x101010:size=320x240:rate=30"),
    }


def test_quality_tells_a_sharp_clip_from_a_flat_dark_one(quality_clips):
    q = {name: measure(sample_clip(path, ToolsConfig(), size=448,
                                   tagger=FrameChoice("peak", 5)))
         for name, path in quality_clips.items()}
    cfg = config_from_dict({}).annotate.quality
    assert q["moving"].sharpness > cfg.blurry_below > q["dark"].sharpness
    assert quality_tags(q["dark"], cfg) == ["quality:blurry", "quality:dark"]
    assert q["dark"].signature == ()  # a flat frame has no perceptual hash


def test_near_duplicates_are_flagged_against_the_earlier_clip(quality_clips):
    sigs = [measure(sample_clip(quality_clips[n], ToolsConfig(), size=448,
                                tagger=FrameChoice("peak", 5))).signature
            for n in ("moving", "dark", "moving", "pan")]
    # the dark clip has no signature (flat), the mandelbrot one is another picture
    assert near_duplicates([*sigs, None], 6) == {2: 0}


def test_a_clip_without_frames_is_bad_video(tmp_path):
    empty = tmp_path / "empty.mp4"
    ffmpeg("-f", "lavfi", "-i", "anullsrc", "-t", "0.5", str(empty))
    with pytest.raises(BadVideo, match="empty.mp4"):
        sample_clip(empty, ToolsConfig(), size=64, tagger=FrameChoice("peak", 3))


def test_config_lists_and_their_errors():
    cfg = config_from_dict({"annotate": {"tagger": {"include": ["a", "b"]}}})
    assert cfg.annotate.tagger.include == ("a", "b")
    with pytest.raises(Exception, match="annotate.tagger.exclude: 'cat' is not allowed; "
                                        "allowed: a list"):
        config_from_dict({"annotate": {"tagger": {"exclude": "cat"}}})


def test_a_long_clip_is_sampled_from_a_bounded_buffer_without_knowing_its_length(tmp_path):
    # 400 frames (more than the buffer holds): blue 100, red 200, blue 100
    path = tmp_path / "long.mkv"  # mkv: the container states no frame count
    ffmpeg("-f", "lavfi", "-i", "color=c=blue:size=64x48:rate=50:duration=2",
           "-f", "lavfi", "-i", "color=c=red:size=64x48:rate=50:duration=4",
           "-f", "lavfi", "-i", "color=c=blue:size=64x48:rate=50:duration=2",
           "-filter_complex", "[0][1][2]concat=n=3:v=1:a=0,format=yuv420p",
           "-c:v", "libx264", str(path))
    frames = sample_clip(path, ToolsConfig(), size=64, tagger=FrameChoice("peak", 5, 0.5),
                         caption=FrameChoice("uniform", 4))
    assert frames.total == 400 and frames.grey.shape[0] == 400
    assert len(frames.tagger_indexes) == 5
    assert all(100 <= i < 300 for i in frames.tagger_indexes)
    assert all(f[24, 32, 2] > 200 and f[24, 32, 0] < 60 for f in frames.tagger_frames)  # red
    assert frames.caption_indexes[0] < 100 and frames.caption_indexes[-1] >= 300


@pytest.mark.expect_error_log  # the missing extra is an ERROR line, once
def test_without_the_caption_extra_each_clip_says_which_extra_and_the_run_goes_on(
        tmp_path, unique_mp4, monkeypatch):
    import sys

    from hydrus_motion.annotate import annotate_clips

    model = tmp_path / "captioner"
    model.mkdir()
    (model / "config.json").write_text("{}")
    for module in ("torch", "transformers"):  # as on a base install
        monkeypatch.setitem(sys.modules, module, None)
    cfg = config_from_dict({"annotate": {"tagger": {"model": None},
                                         "captioner": {"model": str(model)},
                                         "text": {"enabled": False}}})
    clips = [unique_mp4(), unique_mp4()]
    results = annotate_clips(clips, cfg)
    assert [r.caption for r in results] == [None, None]
    for r in results:
        (error,) = r.errors
        assert "needs the Python package 'torch'" in error
        assert "pip install 'hydrus-motion[caption]'" in error
        assert r.quality is not None  # what needs no extra is still measured
