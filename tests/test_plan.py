from fractions import Fraction
from pathlib import Path

import pytest

from hydrus_motion.clips.plan import plan_clips, resample_ratio, resampled_frames, split
from hydrus_motion.config import ClipsConfig
from hydrus_motion.records import Scene, SceneList


def scene_list(bounds: list[int], fps=30) -> SceneList:
    scenes = tuple(Scene(i + 1, a, b, a / fps, b / fps)
                   for i, (a, b) in enumerate(zip(bounds, bounds[1:])))
    return SceneList(Path("v.mp4"), Fraction(fps), bounds[-1], scenes)


@pytest.mark.parametrize("start,end,lo,hi,expected", [
    (0, 60, 61, 240, []),                                   # too short: dropped
    (0, 61, 61, 240, [(0, 61)]),                            # exactly the minimum
    (0, 240, 61, 240, [(0, 240)]),                          # exactly the maximum
    (0, 241, 61, 240, [(0, 120), (120, 241)]),              # equal halves, every frame used
    (10, 730, 61, 240, [(10, 250), (250, 490), (490, 730)]),
    (0, 101, 61, 100, [(0, 100)]),                          # halves too short: max-size chunks
])
def test_split(start, end, lo, hi, expected):
    chunks = split(start, end, lo, hi)
    assert chunks == expected
    for a, b in chunks:
        assert lo <= b - a <= hi


def test_trim_only_at_cut_edges_and_drop_short_scenes():
    rules = ClipsConfig(min_frames=61, max_frames=240, trim_frames=2)
    spans = plan_clips(scene_list([0, 100, 160, 400, 500]), rules)
    # scene 1 keeps frame 0 (video start) and loses 2 before the cut at 100;
    # scene 2 (60 frames) is too short; scene 4 keeps the video's last frame
    assert [(s.scene, s.start_frame, s.end_frame) for s in spans] == [
        (1, 0, 98), (3, 162, 398), (4, 402, 500)]
    assert spans[0].start == 0 and spans[1].start == pytest.approx(162 / 30)


def test_trim_can_make_a_scene_too_short():
    rules = ClipsConfig(min_frames=61, max_frames=240, trim_frames=2)
    spans = plan_clips(scene_list([0, 100, 163, 300]), rules)
    assert [(s.start_frame, s.end_frame) for s in spans] == [(0, 98), (165, 300)]
    spans = plan_clips(scene_list([0, 100, 162, 300]), rules)  # 62 - 4 = 58 < 61
    assert [(s.start_frame, s.end_frame) for s in spans] == [(0, 98), (164, 300)]


@pytest.mark.parametrize("src,target,ratio", [
    (Fraction(30), None, None), (Fraction(30), 15.0, Fraction(1, 2)),
    (Fraction(24), 30.0, None),  # never raise the rate
    (Fraction(30000, 1001), 8.0, Fraction(8008, 30000)),
])
def test_resample_ratio(src, target, ratio):
    assert resample_ratio(src, target) == ratio


def test_resampled_frames_counts_ticks():
    assert resampled_frames(61, None) == 61
    assert resampled_frames(61, Fraction(1, 2)) == 31   # frames 0,2,...,60
    assert resampled_frames(60, Fraction(1, 2)) == 30
    assert resampled_frames(1, Fraction(1, 4)) == 1
