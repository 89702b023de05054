"""`hydrus-motion config init | show`: the config file where the platform keeps configs.

    hydrus-motion config init [--force]   a commented starter config (every key at its
                                          default) at the file discovery would read
    hydrus-motion config show [--json]    the effective config, access key masked, and
                                          which file it came from
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from hydrus_motion.config import ACCESS_KEY_ENV, Config, as_dict, load_config, state_dir, watch_dir
from hydrus_motion.errors import UsageError
from hydrus_motion.places import ConfigSource, user_config_file

EXAMPLE = "config.example.yaml"  # shipped in the package (a link to the checkout's copy)


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("config", help="write a starter config, or show the effective one",
                       description="Where the config lives: --config FILE, else "
                                   "$HYDRUS_MOTION_CONFIG, else the user config file "
                                   f"({user_config_file()}), else built-in defaults.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser("init", parents=[common], help="write a commented starter config",
                              description="Write a starter config with every key at its "
                                          "default and what it means, at --config FILE or "
                                          "$HYDRUS_MOTION_CONFIG if given, else the user "
                                          "config file. An existing file is kept unless "
                                          "--force.")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    actions.add_parser("show", parents=[common], help="the effective config (key masked)",
                       description="Print the config in effect, with the access key masked, "
                                   "and say which file it came from.")


def cmd_config(args: argparse.Namespace, cfg: Config | None) -> tuple[dict[str, Any], int]:
    source: ConfigSource = args.config_source
    if args.action == "init":
        target = source.path or user_config_file()
        write_starter(target, force=args.force)
        if not args.json:
            print(f"wrote {target}")
        return {"written": str(target)}, 0
    cfg = load_config(source.path)
    doc = {"file": source.path and str(source.path), "origin": str(source.origin),
           "access_key": _key_state(cfg), "state_dir": str(state_dir(cfg)),
           "watch_dir": str(watch_dir(cfg)), "config": _plain(as_dict(cfg))}
    if not args.json:
        import yaml

        print(f"# config file: {source.describe()}")
        print(f"# access key: {doc['access_key']}")
        print(f"# state folder: {doc['state_dir']}; watch folder: {doc['watch_dir']}")
        sys.stdout.write(yaml.safe_dump(doc["config"], sort_keys=False, allow_unicode=True))
    return doc, 0


def write_starter(target: Path, force: bool) -> Path:
    """The starter config at `target` (folders made, mode 600: it may get the key)."""
    from hydrus_motion.files import atomic_write_text

    if target.exists() and not force:
        raise UsageError(f"{target}: a config file is already there; nothing was changed",
                         hint="edit it, or replace it with `hydrus-motion config init --force`")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, starter_text(target))
    try:
        os.chmod(target, 0o600)
    except OSError:  # a file system without modes (some network drives): still usable
        pass
    return target


def starter_text(target: Path) -> str:
    head = (f"# Written by `hydrus-motion config init` as {target}.\n"
            "# The access key is best kept out of files: HYDRUS_MOTION_ACCESS_KEY=<64 hex>.\n"
            "# If you put it under hydrus.access_key instead, keep this file private.\n#\n")
    return head + example_text()


def example_text() -> str:
    """config.example.yaml: from the package, else the source checkout, else generated."""
    import yaml

    candidates = [resources.files("hydrus_motion").joinpath(EXAMPLE),
                  Path(__file__).resolve().parents[1] / EXAMPLE]
    for candidate in candidates:
        try:
            text = candidate.read_text(encoding="utf-8")
            if isinstance(yaml.safe_load(text), dict):  # not a link stored as text
                return text
        except (OSError, yaml.YAMLError):
            continue
    return ("# every key with its default (config.example.yaml in the source explains each)\n"
            + yaml.safe_dump(_plain(as_dict(Config())), sort_keys=False))


def _key_state(cfg: Config) -> str:
    if os.environ.get(ACCESS_KEY_ENV):
        return f"set (from {ACCESS_KEY_ENV})"
    return "set (in the config file)" if cfg.hydrus.access_key else "not set"


def _plain(value: Any) -> Any:
    """Tuples as lists, so YAML and JSON print them as plain lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value

