"""Preflight checks: is everything the configured work needs present and working?

Each check is a name, ok and a detail a person can act on. Grows as stages land.
"""

from __future__ import annotations

from dataclasses import dataclass

from hydrus_motion.config import Config
from hydrus_motion.errors import HydrusMotionError
from hydrus_motion.tools import find_tool, run_tool, tool_version


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(cfg: Config) -> list[Check]:
    checks = [_tool("ffmpeg", cfg.tools.ffmpeg, cfg), _tool("ffprobe", cfg.tools.ffprobe, cfg)]
    if checks[0].ok:
        checks.append(_encoder(cfg))
    checks.append(_scenedetect())
    return checks


def _tool(name: str, configured: str, cfg: Config) -> Check:
    try:
        path = find_tool(configured)
        return Check(name, True, f"{tool_version(path)} ({path})")
    except HydrusMotionError as exc:
        return Check(name, False, str(exc))


def _encoder(cfg: Config) -> Check:
    try:
        out = run_tool([find_tool(cfg.tools.ffmpeg), "-hide_banner", "-encoders"], timeout_s=30)
    except HydrusMotionError as exc:
        return Check("libx264", False, str(exc))
    found = b" libx264 " in out.stdout
    return Check("libx264", found, "H.264 encoder available" if found else
                 "this ffmpeg has no libx264 encoder; install a full ffmpeg build")


def _scenedetect() -> Check:
    try:
        import scenedetect
    except ImportError:
        return Check("scenedetect", False, "not installed: pip install scenedetect-headless")
    return Check("scenedetect", True, f"PySceneDetect {scenedetect.__version__}")

