"""Scene detection: find every cut in a video (SceneDetector seam + adapters + sidecar)."""

from __future__ import annotations

from hydrus_motion.config import Config
from hydrus_motion.scenes.base import SceneDetector


def make_detector(cfg: Config) -> SceneDetector:
    """The production detector the config names (heavy imports stay inside adapters)."""
    if cfg.scenes.detector == "transnetv2":
        from hydrus_motion.scenes.transnet import TransNetV2Detector

        return TransNetV2Detector(cfg.scenes, cfg.tools)
    from hydrus_motion.scenes.pyscenedetect import PySceneDetectDetector

    return PySceneDetectDetector(cfg.scenes, cfg.tools, cfg.clips)
