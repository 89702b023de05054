"""Scene detection: find every cut in a video (SceneDetector seam + adapters + sidecar)."""

from __future__ import annotations

from hydrus_motion.config import Config
from hydrus_motion.scenes.base import SceneDetector


def make_detector(cfg: Config) -> SceneDetector:
    """The production detector the config names (heavy imports stay inside adapters)."""
    from hydrus_motion.scenes.pyscenedetect import PySceneDetectDetector

    return PySceneDetectDetector(cfg.scenes, cfg.tools)
