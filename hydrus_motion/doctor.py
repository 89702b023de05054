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
    checks.extend(_model_checks(cfg))
    checks.extend(_hydrus(cfg))
    checks.extend(daemon_checks(cfg))
    return checks


def config_check(source) -> Check:
    """Which config file this run read (a places.ConfigSource); loading it already worked."""
    return Check("config", True, source.describe())


def _model_checks(cfg: Config) -> list[Check]:
    from hydrus_motion.doctor_models import model_checks  # it imports Check from here

    return model_checks(cfg)


def _tool(name: str, configured: str, cfg: Config) -> Check:
    try:
        path = find_tool(configured)
        return Check(name, True, f"{tool_version(path)} ({path})")
    except HydrusMotionError as exc:
        return Check(name, False, str(exc))


def _encoder(cfg: Config) -> Check:
    if cfg.encode.codec == "nvenc":  # listed, and a 2-frame test encode on the GPU
        from hydrus_motion.clips.codec import check_codec

        try:
            check_codec(cfg.encode, cfg.tools)
        except HydrusMotionError as exc:
            return Check("h264_nvenc", False, f"{exc}; {exc.hint}")
        return Check("h264_nvenc", True, "NVENC H.264 encoder available and working")
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


# -- what `hydrus-motion daemon` needs ------------------------------------------------

MIN_FREE_BYTES = 1024**3  # room for a few videos' clips and the SQLite journal


def daemon_checks(cfg: Config) -> list[Check]:
    from hydrus_motion.config import archive_dir, clips_dir, quarantine_dir, state_dir

    checks = [_state_folder(state_dir(cfg)), _watch_folder(cfg)]
    for name, folder in (("archive folder", archive_dir(cfg)),
                         ("quarantine folder", quarantine_dir(cfg)),
                         ("clips folder", clips_dir(cfg))):
        checks.append(_writable(name, folder))
    checks += [_free_space(clips_dir(cfg)), _clip_files(cfg), _file_events(), _schedule(cfg),
               _daemon_lock(cfg)]
    return checks


def _clip_files(cfg: Config) -> Check:
    """Every clip still to push, or recent enough for reconcile to re-upload, is on disk."""
    import time
    from pathlib import Path

    from hydrus_motion.config import state_dir

    if not (state_dir(cfg) / "state.sqlite3").exists():
        return Check("clip files", True, "no clips recorded yet")
    from hydrus_motion.store import open_store

    try:
        store = open_store(state_dir(cfg))
    except Exception as exc:  # reported by the state folder check
        return Check("clip files", False, f"the state database cannot be read: {exc}")
    try:
        since = time.time() - cfg.hydrus.reconcile_hours * 3600
        records = store.due(pushed_since=since)
    finally:
        store.close()
    gone = [r for r in records if not Path(r.path).is_file()]
    if not gone:
        return Check("clip files", True, f"all {len(records)} clip(s) to push or re-check "
                                         "are on disk")
    queued = sum(r.push_status == "queued" for r in gone)
    sources = sorted({Path(r.source_path).name for r in gone})
    return Check("clip files", False,
                 f"{len(gone)} of {len(records)} recorded clip file(s) are gone ({queued} not "
                 f"pushed yet; e.g. {gone[0].path}); reconcile cannot upload them again. "
                 f"Re-cut them with `hydrus-motion ingest` on their source(s) "
                 f"({', '.join(sources[:3])}{', ...' if len(sources) > 3 else ''}), or "
                 "restore paths.clips_dir")


def _writable(name: str, folder) -> Check:
    """Writable, or creatable: checked without creating anything (doctor changes nothing)."""
    import os
    import tempfile

    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), None)
        ok = parent is not None and os.access(parent, os.W_OK | os.X_OK)
        return Check(name, ok, f"{folder} will be created" if ok else
                     f"{folder} does not exist and cannot be created under {parent}")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-", suffix=".tmp"):
            pass
    except OSError as exc:
        return Check(name, False, f"{folder}: cannot write there ({exc.strerror or exc})")
    return Check(name, True, f"{folder} is writable")


def _state_folder(folder) -> Check:
    from hydrus_motion.store import open_store

    check = _writable("state folder", folder)
    if not check.ok or not (folder / "state.sqlite3").exists():
        return check
    try:
        store = open_store(folder)  # also brings an old schema up to date
    except Exception as exc:  # sqlite3.Error or OSError: report, never crash the doctor
        return Check("state folder", False, f"{folder}/state.sqlite3 cannot be opened: {exc}")
    try:
        mode = store.conn.execute("PRAGMA journal_mode").fetchone()[0]
        version = store.conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        store.close()
    ok = mode.lower() == "wal"
    return Check("state folder", ok, f"{folder}/state.sqlite3: schema {version}, journal "
                 f"{mode}" + ("" if ok else " (WAL needed: is the folder on a network drive? "
                              "keep paths.state_dir local)"))


def _watch_folder(cfg: Config) -> Check:
    import os

    from hydrus_motion.config import watch_dir

    folder = watch_dir(cfg)
    if cfg.daemon.watch_dir is None and not folder.exists():
        return _writable("watch folder", folder)  # the default: the daemon creates it
    if not folder.is_dir():
        return Check("watch folder", False, f"{folder} does not exist or is not a folder")
    if not os.access(folder, os.R_OK | os.X_OK):
        return Check("watch folder", False, f"{folder}: no permission to list it")
    movable = os.access(folder, os.W_OK) or cfg.daemon.after_success == "keep"
    return Check("watch folder", movable, f"{folder} is readable" + (
        "" if movable else "; but not writable, so finished videos cannot be moved or "
                           "deleted: set daemon.after_success: keep"))


def _free_space(folder) -> Check:
    import shutil

    existing = next(p for p in (folder, *folder.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    return Check("disk space", free >= MIN_FREE_BYTES, f"{free / 1024**3:.1f} GiB free for "
                 f"clips in {folder}" + ("" if free >= MIN_FREE_BYTES else
                                         f" (need at least {MIN_FREE_BYTES / 1024**3:.0f})"))


def _file_events() -> Check:
    try:
        from watchdog.observers import Observer
    except ImportError:
        return Check("file events", False, "the watchdog package is missing; reinstall "
                                           "hydrus-motion (the daemon falls back to rescans)")
    return Check("file events", True, f"watchdog {Observer.__name__}; network drives may "
                 "send no events, the periodic rescan (daemon.rescan_s) covers them")


def _schedule(cfg: Config) -> Check:
    from hydrus_motion.schedule import next_run

    n = cfg.nightly
    if not n.enabled:
        return Check("nightly schedule", True, "off in the daemon (nightly.enabled: false); "
                     "run `hydrus-motion nightly` from a timer")
    upcoming = next_run(n)
    return Check("nightly schedule", upcoming is not None,
                 f"'{n.cron}' ({n.timezone or 'local time'}): next run "
                 f"{upcoming.isoformat(timespec='minutes') if upcoming else 'never'}")


def _daemon_lock(cfg: Config) -> Check:
    from hydrus_motion.config import state_dir
    from hydrus_motion.store.lock import holder

    pid = holder(state_dir(cfg) / "daemon.lock")
    return Check("daemon", True, f"running (pid {pid})" if pid else "not running")
