"""The flows, in order. Each stage is a seam (see DESIGN.md); this file only wires them.

Ingest flow (per video), as built so far:

    probe ─▶ detect scenes ─▶ write sidecar          (`hydrus-motion scenes`)
    probe ─▶ read sidecar ─▶ plan spans ─▶ cut clips  (`hydrus-motion slice`)

The sidecar sits between the two on purpose: a person may edit it, and `slice` honours
the edit. Annotation, the Hydrus push and the nightly export/train flow join here as
they are built.
"""

from __future__ import annotations

from pathlib import Path

from hydrus_motion.clips.cut import ClipCutter, FfmpegCutter
from hydrus_motion.clips.plan import plan_clips
from hydrus_motion.config import Config
from hydrus_motion.errors import SidecarError
from hydrus_motion.probe import frame_count_slack, probe_video
from hydrus_motion.records import Clip, SceneList
from hydrus_motion.scenes import make_detector
from hydrus_motion.scenes.base import SceneDetector
from hydrus_motion.scenes.sidecar import default_sidecar_path, read_sidecar, write_sidecar


def detect_scenes(video: Path, cfg: Config, sidecar: Path | None = None,
                  detector: SceneDetector | None = None) -> SceneList:
    info = probe_video(video, cfg.tools)
    scenes = (detector or make_detector(cfg)).detect(info)
    write_sidecar(scenes, sidecar or default_sidecar_path(video))
    return scenes


def slice_video(video: Path, cfg: Config, out_dir: Path, sidecar: Path | None = None,
                cutter: ClipCutter | None = None) -> list[Clip]:
    info = probe_video(video, cfg.tools)
    sidecar = sidecar or default_sidecar_path(video)
    scenes = read_sidecar(sidecar, video)
    drift = abs(info.frames_hint - scenes.frames) if info.frames_hint else 0
    if drift > frame_count_slack(scenes.frames):
        raise SidecarError(f"{sidecar}: made for a video of {scenes.frames} frames, but "
                           f"{video} has {info.frames_hint}",
                           hint="the video changed since detection; run `scenes` again")
    spans = plan_clips(scenes, cfg.clips)
    return (cutter or FfmpegCutter(cfg.encode, cfg.tools)).cut(info, spans, out_dir)
