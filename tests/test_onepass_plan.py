"""The one-pass router, pure: which frame goes to which provisional clip."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from hydrus_motion.clips.batch import kept_frames
from hydrus_motion.clips.onepass_plan import (
    Abandon,
    Feed,
    Finish,
    Provisional,
    Router,
    Start,
    accepted,
)
from hydrus_motion.clips.plan import plan_clips
from hydrus_motion.config import ClipsConfig
from hydrus_motion.records import CropBox, Scene, SceneList

RULES = ClipsConfig(min_frames=10, max_frames=40, trim_frames=2)


def simulate(total: int, cuts: list[int], rules=RULES, ratio=None, latency: int = 2,
             late: dict[int, int] | None = None, crop=None):
    """Run the router as the pass does: cut c is reported `latency` frames after it
    (`late` overrides per cut). Returns {clip: (start, end or None, fed frames)}, abandoned."""
    router = Router(rules, ratio, rules.trim_frames + latency + 1, lambda s, upto: crop)
    reported = {}
    for c in cuts:
        reported.setdefault(c + (late or {}).get(c, latency), []).append(c)
    clips: dict[int, list] = {}
    abandoned: set[int] = set()
    actions = []
    for i in range(total):
        for c in reported.get(i, []):
            actions += router.cut(c)
        actions += router.frame(i)
    actions += router.end(total)
    for a in actions:
        if isinstance(a, Start):
            clips[a.clip] = [a.start_frame, None, [], a.crop]
        elif isinstance(a, Feed):
            assert a.clip not in abandoned and clips[a.clip][1] is None
            clips[a.clip][2].append(a.frame)
        elif isinstance(a, Finish):
            clips[a.clip][1] = a.end_frame
        elif isinstance(a, Abandon):
            abandoned.add(a.clip)
    return {k: v for k, v in clips.items() if k not in abandoned}, abandoned


def plan_for(total: int, cuts: list[int], rules=RULES):
    bounds = [0, *cuts, total]
    scenes = tuple(Scene(i + 1, a, b, a / 30, b / 30) for i, (a, b) in
                   enumerate(zip(bounds, bounds[1:])))
    return plan_clips(SceneList(video=None, fps=Fraction(30), frames=total, scenes=scenes),
                      rules)


def provisional(clips) -> list[Provisional]:
    return [Provisional(start, end, crop, True) for start, end, _, crop in clips.values()]


def test_short_scenes_become_exactly_their_planned_clips():
    cuts = [30, 60, 95]
    clips, abandoned = simulate(120, cuts)
    spans = list(plan_for(120, cuts).spans)
    assert [(s.start_frame, s.end_frame) for s in spans] == [(0, 28), (32, 58), (62, 93),
                                                             (97, 120)]
    assert sorted((c[0], c[1]) for c in clips.values()) == \
        [(s.start_frame, s.end_frame) for s in spans]
    for start, end, fed, _ in clips.values():
        assert fed == list(range(start, end))  # every frame, in order, nothing else
    assert not abandoned
    assert len(accepted(spans, provisional(clips))) == len(spans)


def test_a_scene_longer_than_a_clip_is_abandoned_and_left_to_the_cutter():
    cuts = [20, 120]  # scene 2 has 96 frames after trims: split into 3 chunks of 32
    clips, abandoned = simulate(150, cuts)
    spans = list(plan_for(150, cuts).spans)
    assert [(s.start_frame, s.end_frame) for s in spans] == [
        (0, 18), (22, 54), (54, 86), (86, 118), (122, 150)]
    assert abandoned  # its provisional clip reached max_frames, the encoder was killed
    keep = accepted(spans, provisional(clips))
    assert sorted((s.start_frame, s.end_frame) for s in keep) == [(0, 18), (122, 150)]


def test_a_cut_found_late_drops_the_clip_it_crossed():
    cuts = [30, 60]
    clips, abandoned = simulate(90, cuts, late={30: 12})  # reported 12 frames on: past lag
    spans = list(plan_for(90, cuts).spans)
    keep = accepted(spans, provisional(clips))
    assert (0, 28) not in {(s.start_frame, s.end_frame) for s in keep}
    assert (62, 90) in {(s.start_frame, s.end_frame) for s in keep}
    assert abandoned  # the clip that had run past frame 30 was killed
    for start, end, _, _ in clips.values():  # no clip left holds frames of two scenes
        assert not any(start < c < end for c in cuts)


def test_resampling_feeds_the_frames_the_two_pass_select_keeps():
    ratio = Fraction(24, 30)
    cuts = [35]
    clips, _ = simulate(70, cuts, ratio=ratio)
    spans = {(s.start_frame, s.end_frame): s for s in plan_for(70, cuts).spans}
    assert clips
    for start, end, fed, _ in clips.values():
        assert fed == kept_frames(spans[(start, end)], ratio)


def test_a_short_scene_trimmed_less_is_not_taken_for_its_plan():
    rules = ClipsConfig(min_frames=10, max_frames=40, trim_frames=3)
    cuts = [30, 42]  # scene 2 has 12 frames: the plan trims 1 + 1, the router predicts 3 + 3
    clips, _ = simulate(80, cuts, rules=rules)
    spans = list(plan_for(80, cuts, rules).spans)
    assert (31, 41) in {(s.start_frame, s.end_frame) for s in spans}
    keep = accepted(spans, provisional(clips))
    assert (31, 41) not in {(s.start_frame, s.end_frame) for s in keep}


def test_accepted_needs_the_same_crop_and_even_timing():
    cuts = [30]
    clips, _ = simulate(60, cuts, crop=CropBox(0, 8, 64, 36))
    spans = list(plan_for(60, cuts).spans)  # planned without a crop
    assert accepted(spans, provisional(clips)) == {}
    clips, _ = simulate(60, cuts)
    uneven = [Provisional(c.start_frame, c.end_frame, c.crop, False) for c in provisional(clips)]
    assert accepted(spans, uneven) == {}


@pytest.mark.parametrize("seed", range(20))
def test_random_cuts_what_is_kept_is_exactly_the_plan(seed):
    """Whatever the cuts and latencies: a kept clip is fed exactly its span's frames."""
    rng = random.Random(seed)
    total = rng.randint(40, 400)
    cuts = sorted(rng.sample(range(1, total), rng.randint(0, 8)))
    late = {c: rng.choice([0, 1, 2, 2, 2, 9]) for c in cuts}
    ratio = rng.choice([None, Fraction(24, 30)])
    clips, _ = simulate(total, cuts, ratio=ratio, late=late)
    spans = list(plan_for(total, cuts).spans)
    keep = accepted(spans, provisional(clips))
    fed = {(start, end): frames for start, end, frames, _ in clips.values()}
    for span in keep:
        assert fed[(span.start_frame, span.end_frame)] == kept_frames(span, ratio)
    # and nothing predictable is missed: a scene with full trims, one clip long, whose
    # cuts were reported within the lag, is cut by the pass
    bounds = [0, *cuts, total]
    for a, b in zip(bounds, bounds[1:]):
        head, tail = (RULES.trim_frames if a > 0 else 0), (RULES.trim_frames if b < total else 0)
        full = b - a >= RULES.min_frames + head + tail and b - a - head - tail <= RULES.max_frames
        if full and late.get(a, 0) <= 2 and late.get(b, 0) <= 2:
            assert (a + head, b - tail) in {(s.start_frame, s.end_frame) for s in keep}
