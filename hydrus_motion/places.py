"""Where things live by default, the way each platform keeps them (platformdirs), and
which config file a command reads.

    Linux                       (XDG variables win when set)
    config  ~/.config/hydrus-motion/config.yaml          $XDG_CONFIG_HOME
    state   ~/.local/state/hydrus-motion/                $XDG_STATE_HOME
    watch   ~/.local/share/hydrus-motion/watch/          $XDG_DATA_HOME

Windows and macOS get their usual folders (%APPDATA%, %LOCALAPPDATA%, ~/Library/...).
Config discovery, first found wins: `--config FILE`, then HYDRUS_MOTION_CONFIG, then the
user config file above, else the built-in defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

APP = "hydrus-motion"
ENV_VAR = "HYDRUS_MOTION_CONFIG"
CONFIG_NAME = "config.yaml"


def user_config_file() -> Path:
    import platformdirs

    return platformdirs.user_config_path(APP, appauthor=False, roaming=True) / CONFIG_NAME


def user_state_dir() -> Path:
    import platformdirs

    return platformdirs.user_state_path(APP, appauthor=False)


def user_data_dir() -> Path:
    import platformdirs

    return platformdirs.user_data_path(APP, appauthor=False)


def default_watch_dir() -> Path:
    return user_data_dir() / "watch"


class ConfigOrigin(str, Enum):
    """How the config file in use was found."""

    OPTION = "--config"
    ENV = ENV_VAR
    USER = "user config file"
    DEFAULTS = "built-in defaults"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ConfigSource:
    path: Path | None  # None: no file, all defaults
    origin: ConfigOrigin

    def describe(self) -> str:
        """'FILE (from --config)', or what to do when no file is used."""
        if self.path is None:
            return (f"none, built-in defaults (`hydrus-motion config init` writes one at "
                    f"{user_config_file()})")
        return f"{self.path} (from {self.origin})"


def find_config(cli_value: str | os.PathLike | None) -> ConfigSource:
    """--config > HYDRUS_MOTION_CONFIG > the user config file (if it exists) > defaults.

    A file named by --config or the variable must exist (load_config says so if not);
    the user config file is used only when it is there."""
    if cli_value:
        return ConfigSource(Path(cli_value).expanduser(), ConfigOrigin.OPTION)
    env = os.environ.get(ENV_VAR)
    if env:
        return ConfigSource(Path(env).expanduser(), ConfigOrigin.ENV)
    user = user_config_file()
    if user.is_file():
        return ConfigSource(user, ConfigOrigin.USER)
    return ConfigSource(None, ConfigOrigin.DEFAULTS)
