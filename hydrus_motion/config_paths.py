"""Where things live: the folders a config names, or their defaults, and the access key.

Part of hydrus_motion.config (which re-exports every name).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from hydrus_motion import places

if TYPE_CHECKING:
    from hydrus_motion.config import Config

ACCESS_KEY_ENV = "HYDRUS_MOTION_ACCESS_KEY"


def is_access_key(value: str) -> bool:
    return len(value) == 64 and all(ch in "0123456789abcdefABCDEF" for ch in value)


def access_key(cfg: Config) -> str | None:
    """The key to use: HYDRUS_MOTION_ACCESS_KEY, else the config's."""
    return os.environ.get(ACCESS_KEY_ENV) or cfg.hydrus.access_key


def state_dir(cfg: Config) -> Path:
    if cfg.paths.state_dir is None:
        return places.user_state_dir()
    return Path(cfg.paths.state_dir).expanduser()


def watch_dir(cfg: Config) -> Path:
    """daemon.watch_dir, or the default watch folder in the platform's data folder."""
    if cfg.daemon.watch_dir is None:
        return places.default_watch_dir()
    return Path(cfg.daemon.watch_dir).expanduser()


def clips_dir(cfg: Config) -> Path:
    return _folder(cfg, cfg.paths.clips_dir, "clips")


def dataset_dir(cfg: Config) -> Path:
    return _folder(cfg, cfg.paths.dataset_dir, "dataset")


def training_dir(cfg: Config) -> Path:
    return _folder(cfg, cfg.paths.training_dir, "training")


def archive_dir(cfg: Config) -> Path:
    return _folder(cfg, cfg.daemon.archive_dir, "archive")


def quarantine_dir(cfg: Config) -> Path:
    return _folder(cfg, cfg.daemon.quarantine_dir, "quarantine")


def _folder(cfg: Config, configured: str | None, default_name: str) -> Path:
    """A configured folder (`~` expanded), or `<state_dir>/<default_name>`."""
    return Path(configured).expanduser() if configured else state_dir(cfg) / default_name
