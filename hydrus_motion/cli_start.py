"""`hydrus-motion start` (what scripts/run.sh ends in) and `hydrus-motion daemon`.

`start` is the daemon for people: no config needed. It writes a starter config where the
platform keeps configs when there is none, creates the watch folder (default: `watch`
in the platform's data folder), says where it watches, where the config is and what to
do in Hydrus, and runs the daemon. Without an access key clips are cut and queued; they
are pushed once a key is saved in the config file (or set in the environment and the
daemon started again).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from hydrus_motion.config import Config, access_key, load_config, state_dir, watch_dir
from hydrus_motion.places import ConfigOrigin, ConfigSource, user_config_file

log = logging.getLogger("hydrus_motion")

HYDRUS_STEPS = (
    "In the Hydrus client: services > manage services > client api: turn the Client API "
    "on (port 45869);",
    "then services > review services > client api > add > manually: a key that may "
    "'import and delete files', 'edit file tags', 'search for and fetch files' and 'edit "
    "file notes' ('manage database' too lets us force commits; 'manage popups' shows "
    "nightly results).",
)


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("start", parents=[common], help="set up and watch a folder (the daemon)",
                       description="Watch a folder for videos and run them through scenes, "
                                   "clips, annotation and Hydrus: the daemon, set up for you. "
                                   "Writes a starter config if there is none and creates the "
                                   "watch folder. Runs until Ctrl+C.")
    p.add_argument("--watch", type=Path, metavar="DIR",
                   help="folder to watch (default: daemon.watch_dir, else `watch` in the "
                        "user data folder)")


def cmd_start(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    source: ConfigSource = args.config_source
    wrote = None
    if source.path is None:  # nothing found anywhere: give the user a file to edit
        from hydrus_motion.cli_config import write_starter

        wrote = write_starter(user_config_file(), force=False)
        source = ConfigSource(wrote, ConfigOrigin.USER)
        cfg = load_config(wrote)
    if args.watch is not None:
        cfg = dataclasses.replace(cfg, daemon=dataclasses.replace(
            cfg.daemon, watch_dir=str(args.watch.expanduser().absolute())))
    watch = watch_dir(cfg)
    watch.mkdir(parents=True, exist_ok=True)
    for line in banner(cfg, source, watch, wrote):
        print(line, file=sys.stderr, flush=True)
    return run_daemon(cfg, source.path)


def banner(cfg: Config, source: ConfigSource, watch: Path, wrote: Path | None) -> list[str]:
    lines = [f"hydrus-motion: watching {watch}  (drop videos there; Ctrl+C stops)",
             f"config: {source.describe()}" + ("  (just written: a starter config with "
                                               "every key at its default)" if wrote else ""),
             f"state: {state_dir(cfg)}  (`hydrus-motion status` shows the queue)"]
    if access_key(cfg) is None:
        lines += ["hydrus: no access key yet: clips are cut and queued, and pushed once a "
                  "key is set.", *(f"  {step}" for step in HYDRUS_STEPS),
                  f"  Then save the 64-hex key as hydrus.access_key in {source.path} (taken "
                  "within hydrus_retry_s, no restart), or set HYDRUS_MOTION_ACCESS_KEY and "
                  "start again."]
    else:
        lines.append(f"hydrus: {cfg.hydrus.api_url}: clips arrive tagged "
                     f"'{cfg.hydrus.tags.pending}'; tag them '{cfg.hydrus.tags.approved}' "
                     f"(or '{cfg.hydrus.tags.rejected}') to build the dataset.")
    return lines


def run_daemon(cfg: Config, config_path: Path | None) -> tuple[dict[str, Any], int]:
    from hydrus_motion.daemon import Daemon

    for handler in logging.getLogger().handlers:  # a long-running log wants the time
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: "
                                               "%(message)s", "%Y-%m-%d %H:%M:%S"))
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # we log our own lines
    # watchdog reports a harmless race of its own at every stop as an ERROR
    logging.getLogger("watchdog").setLevel(
        logging.WARNING if log.isEnabledFor(logging.DEBUG) else logging.CRITICAL)
    code = Daemon(cfg, config_path.resolve() if config_path else None).run()
    return {"stopped": True}, code
