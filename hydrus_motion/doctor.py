"""Preflight checks: is everything the configured work needs present and working?

Each check is a name, ok and a detail a person can act on. Grows as stages land.
"""

from __future__ import annotations

import dataclasses
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
    checks.extend(_hydrus(cfg))
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


def _hydrus(cfg: Config) -> list[Check]:
    """Reachable, key known with the permissions we need, tag service present."""
    from hydrus_motion.config import access_key
    from hydrus_motion.hydrus.gateway import ApiGateway, HydrusServiceError

    quick = dataclasses.replace(cfg.hydrus, retries=0)  # a preflight reports, it does not wait
    gateway = ApiGateway(quick, access_key(cfg))
    try:
        version = gateway.api_version()
    except HydrusMotionError as exc:
        return [Check("hydrus", False, str(exc))]
    checks = [Check("hydrus", True, f"{version} at {cfg.hydrus.api_url}")]
    try:
        gateway.connect()
    except HydrusServiceError as exc:
        return [*checks, Check("hydrus key", True, f"'{gateway.key_name}' has the permissions "
                                                   "needed"),
                Check("hydrus tag service", False, str(exc))]
    except HydrusMotionError as exc:
        return [*checks, Check("hydrus key", False, str(exc))]
    commit = ("may force commits" if gateway.commit_permitted else
              "cannot force commits (no 'manage database' permission): after a Hydrus "
              "crash run `hydrus-motion reconcile`")
    return [*checks,
            Check("hydrus key", True, f"'{gateway.key_name}' has the permissions needed; "
                                      f"{commit}"),
            Check("hydrus tag service", True,
                  f"'{cfg.hydrus.tag_service}' ({gateway.tag_service_key})")]
