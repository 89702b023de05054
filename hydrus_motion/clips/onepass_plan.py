"""Which decoded frame goes to which clip while the cuts are still being found: pure.

The one-pass cut (onepass.py) decodes a new video once; detection sees every frame and
frames go straight to the encoder of their clip. But a clip's bounds follow from cuts
found later (trims at the next cut, splitting by the scene's full length, the crop from
all of the scene's frames), so the router *predicts* and the plan of the finished
sidecar *decides*:

- every frame waits `lag` frames (detector latency + `trim_frames`) in a buffer before
  it is routed, so the cut that ends its scene is usually known by then: memory holds
  `lag` frames, whatever the length of the scene;
- a clip is predicted as `plan_clips` would make it for a scene long enough: `trim`
  frames off each edge that is a cut, none at the start or end of the video, the crop
  measured on the scene's frames so far (`crop_guess`), frames kept as resampling keeps
  them; it starts at its first frame and finishes at the predicted tail;
- a scene that turns out longer than `max_frames` (it will be split, at places that
  depend on where it ends) and a clip crossed by a cut found late are abandoned: their
  encoders are killed, nothing is kept;
- when the pass ends, `accepted` keeps exactly the provisional clips that equal a span
  of the real plan (same frames, same crop, even timing); every other span is cut by
  the two-pass cutter from the written sidecar, so the result is the two-pass result.

    router = Router(rules, ratio, lag, crop_guess)
    actions = router.cut(c) + router.frame(i) ... + router.end(total)
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from hydrus_motion.config import ClipsConfig
from hydrus_motion.records import ClipSpan, CropBox


@dataclass(frozen=True)
class Start:
    clip: int
    start_frame: int
    crop: CropBox | None


@dataclass(frozen=True)
class Feed:
    clip: int
    frame: int


@dataclass(frozen=True)
class Finish:
    """No more frames: the clip covers source frames [its start, end_frame)."""

    clip: int
    end_frame: int


@dataclass(frozen=True)
class Abandon:
    """The clip cannot be a span of the plan: kill its encoder, keep nothing."""

    clip: int


Action = Start | Feed | Finish | Abandon


@dataclass(frozen=True)
class Provisional:
    """A clip the pass encoded and finished."""

    start_frame: int
    end_frame: int  # first source frame after it
    crop: CropBox | None
    even: bool  # its frames are evenly spaced in time (a CFR encode keeps their timing)

    @property
    def key(self) -> tuple[int, int, CropBox | None]:
        return self.start_frame, self.end_frame, self.crop


def accepted(spans: list[ClipSpan], clips: list[Provisional]) -> dict[ClipSpan, Provisional]:
    """The spans of the plan a provisional clip gives exactly (frames, crop, timing)."""
    done = {c.key: c for c in clips if c.even}
    return {s: done[(s.start_frame, s.end_frame, s.crop)] for s in spans
            if (s.start_frame, s.end_frame, s.crop) in done}


class Router:
    def __init__(self, rules: ClipsConfig, ratio: Fraction | None, lag: int,
                 crop_guess: Callable[[int, int], CropBox | None]):
        self.rules = rules
        self.ratio = ratio
        self.lag = lag
        self.crop_guess = crop_guess  # (scene start, frames analysed) -> crop so far
        self._cuts: list[int] = []  # sorted, distinct
        self._analysed = 0  # frames seen by the detector
        self._decided = 0  # frames routed (or passed over)
        self._total: int | None = None
        self._clip: tuple[int, int, int] | None = None  # (id, scene start, first frame)
        self._fed = 0  # frames of the current clip fed
        self._next_id = 0
        self._given_up: int | None = None  # scene start of a scene too long to predict

    @property
    def decided(self) -> int:
        """Frames routed so far: frames below this index are no longer needed."""
        return self._decided

    def cut(self, frame: int) -> list[Action]:
        """The detector found a cut at `frame` (first frame of a new scene)."""
        if frame <= 0 or frame in self._cuts:
            return []
        bisect.insort(self._cuts, frame)
        if self._clip is not None and self._clip[1] < frame < self._decided:
            return [self._drop()]  # found late: the clip already holds frames past it
        return []

    def frame(self, index: int) -> list[Action]:
        """Frame `index` was analysed; route the frame `lag` behind it."""
        self._analysed = index + 1
        actions: list[Action] = []
        while self._decided < self._analysed - self.lag:
            actions += self._route(self._decided)
            self._decided += 1
        return actions

    def end(self, total: int) -> list[Action]:
        """The decode ended after `total` frames: route the rest, finish the last clip."""
        self._total = self._analysed = total
        actions: list[Action] = []
        while self._decided < total:
            actions += self._route(self._decided)
            self._decided += 1
        if self._clip is not None:
            actions.append(self._close())
        return actions

    def _route(self, j: int) -> list[Action]:
        i = bisect.bisect_right(self._cuts, j)
        start = self._cuts[i - 1] if i else 0
        end = self._cuts[i] if i < len(self._cuts) else self._total
        actions: list[Action] = []
        if self._clip is not None and self._clip[1] != start:
            actions.append(self._close())  # its scene ended
        trim = self.rules.trim_frames
        first = start + (trim if start > 0 else 0)
        tail = (trim if end < (self._total or end + 1) else 0) if end is not None else 0
        if j < first or self._given_up == start or (end is not None and j >= end - tail):
            if self._clip is not None and end is not None and j >= end - tail:
                actions.append(self._close())
            return actions
        if j - first >= self.rules.max_frames:  # longer than a clip: it will be split
            self._given_up = start
            if self._clip is not None:
                actions.append(self._drop())
            return actions
        if self._clip is None:
            if j != first:
                return actions  # this scene's clip was dropped: wait for the next scene
            self._clip = (self._next_id, start, first)
            self._next_id += 1
            self._fed = 0
            actions.append(Start(self._clip[0], first, self.crop_guess(start, self._analysed)))
        if self._kept(j - first):
            actions.append(Feed(self._clip[0], j))
            self._fed += 1
        return actions

    def _kept(self, i: int) -> bool:
        """Resampling keeps the first source frame at or after each output tick."""
        if self.ratio is None or i == 0:
            return True
        p, q = self.ratio.numerator, self.ratio.denominator
        return (i * p) // q > ((i - 1) * p) // q

    def _close(self) -> Action:
        assert self._clip is not None
        clip, first = self._clip[0], self._clip[2]
        self._clip = None
        # frames first .. decided - 1 were all this clip's (fed, or passed over by resampling)
        if self._decided - first < self.rules.min_frames:
            return Abandon(clip)  # shorter than any span: the scene is dropped or trimmed less
        return Finish(clip, self._decided)

    def _drop(self) -> Action:
        assert self._clip is not None
        clip = self._clip[0]
        self._clip = None
        return Abandon(clip)
