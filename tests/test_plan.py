import dataclasses
from fractions import Fraction
from pathlib import Path

import pytest

from hydrus_motion.clips.plan import plan_clips, resample_ratio, resampled_frames, split
from hydrus_motion.config import ClipsConfig
from hydrus_motion.records import CropBox, DroppedScene, DropReason, Scene, SceneList


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
    plan = plan_clips(scene_list([0, 100, 160, 400, 500]), rules)
    # scene 1 keeps frame 0 (video start) and loses 2 before the cut at 100;
    # scene 2 (60 frames) is too short; scene 4 keeps the video's last frame
    assert [(s.scene, s.start_frame, s.end_frame) for s in plan.spans] == [
        (1, 0, 98), (3, 162, 398), (4, 402, 500)]
    assert plan.spans[0].start == 0 and plan.spans[1].start == pytest.approx(162 / 30)
    assert plan.dropped == (DroppedScene(2, 100, 160, DropReason.TOO_SHORT),)
    assert plan.scenes == 4
    assert plan.drop_summary(61) == "1 of 4 scenes shorter than clips.min_frames (61)"


# scene bounds, min_frames, trim -> kept (start, end) per scene; None: dropped
@pytest.mark.parametrize("bounds,lo,trim,expected", [
    # a 33-frame shot between two cuts spares 2 frames: one from each side
    ([0, 40, 73, 120], 31, 2, [(0, 38), (41, 72), (75, 120)]),
    # exactly the minimum: kept whole, no trim at all
    ([0, 40, 71, 120], 31, 2, [(0, 38), (40, 71), (73, 120)]),
    # one frame to spare: taken at the start
    ([0, 40, 72, 120], 31, 2, [(0, 38), (41, 72), (74, 120)]),
    # plenty to spare: the full trim on both sides
    ([0, 40, 100, 140], 31, 2, [(0, 38), (42, 98), (102, 140)]),
    # first and last scenes have one cut edge; it may take the whole spare
    ([0, 32, 63], 31, 2, [(0, 31), (32, 63)]),
    ([0, 33, 66], 31, 2, [(0, 31), (35, 66)]),
    # below the minimum before any trim: dropped, whatever the trim
    ([0, 30, 90], 31, 0, [None, (30, 90)]),
    # a bigger trim is still capped by what the scene can spare
    ([0, 100, 140, 240], 31, 10, [(0, 90), (105, 136), (150, 240)]),
])
def test_trim_never_eats_a_short_shot(bounds, lo, trim, expected):
    rules = ClipsConfig(min_frames=lo, max_frames=240, trim_frames=trim)
    plan = plan_clips(scene_list(bounds), rules)
    kept = {s.scene: (s.start_frame, s.end_frame) for s in plan.spans}
    assert [kept.get(i + 1) for i in range(len(bounds) - 1)] == expected
    assert all(s.frames >= lo for s in plan.spans)
    assert [d.scene for d in plan.dropped] == [i + 1 for i, e in enumerate(expected) if e is None]


def test_short_scenes_report_and_long_ones_split():
    rules = ClipsConfig()  # defaults: min 31, max 240, trim 2
    plan = plan_clips(scene_list([0, 20, 30, 45, 545, 560, 600]), rules)
    assert [(s.scene, s.start_frame, s.end_frame) for s in plan.spans] == [
        (4, 47, 212), (4, 212, 378), (4, 378, 543), (6, 562, 600)]
    assert [d.scene for d in plan.dropped] == [1, 2, 3, 5]
    assert {d.reason for d in plan.dropped} == {DropReason.TOO_SHORT}
    assert plan.drop_summary(rules.min_frames) == \
        "4 of 6 scenes shorter than clips.min_frames (31)"
    assert plan_clips(scene_list([0, 100]), rules).drop_summary(31) is None


def test_crop_follows_the_scene_unless_off():
    box = CropBox(0, 30, 320, 180)
    scenes = scene_list([0, 100, 200])
    scenes = dataclasses.replace(scenes, scenes=(
        dataclasses.replace(scenes.scenes[0], crop=box), scenes.scenes[1]))
    plan = plan_clips(scenes, ClipsConfig())
    assert [s.crop for s in plan.spans] == [box, None]
    plan = plan_clips(scenes, ClipsConfig(crop="off"))
    assert [s.crop for s in plan.spans] == [None, None]


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
