"""Where the config is found (--config > HYDRUS_MOTION_CONFIG > user config file >
defaults), `config init` / `config show`, and the commands that name the file in use.
Each test gets its own home folder through HOME and the XDG variables."""

from __future__ import annotations

import json
import stat

import pytest
import yaml
from conftest import ALL_KEY

from hydrus_motion.cli import main
from hydrus_motion.config import Config, load_config


@pytest.fixture()
def home(tmp_path, monkeypatch):
    for var, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "xdg-config"),
                     ("XDG_STATE_HOME", "xdg-state"), ("XDG_DATA_HOME", "xdg-data")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("HYDRUS_MOTION_CONFIG", raising=False)
    monkeypatch.delenv("HYDRUS_MOTION_ACCESS_KEY", raising=False)
    return tmp_path


def show(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main([*args]) == 0
    return json.loads(capsys.readouterr().out)


def config_with(path, min_frames: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"clips": {"min_frames": min_frames}}))
    return path


def test_discovery_order_and_config_on_either_side_of_the_subcommand(home, capsys,
                                                                      monkeypatch):
    doc = show(capsys, "config", "show", "--json")
    assert doc["file"] is None and doc["origin"] == "built-in defaults"
    assert doc["state_dir"] == str(home / "xdg-state" / "hydrus-motion")  # $XDG_STATE_HOME
    assert doc["watch_dir"] == str(home / "xdg-data" / "hydrus-motion" / "watch")

    user = config_with(home / "xdg-config" / "hydrus-motion" / "config.yaml", 11)
    doc = show(capsys, "config", "show", "--json")
    assert (doc["file"], doc["origin"]) == (str(user), "user config file")
    assert doc["config"]["clips"]["min_frames"] == 11

    env = config_with(home / "env.yaml", 12)
    monkeypatch.setenv("HYDRUS_MOTION_CONFIG", str(env))
    doc = show(capsys, "config", "show", "--json")
    assert (doc["origin"], doc["config"]["clips"]["min_frames"]) == ("HYDRUS_MOTION_CONFIG", 12)

    option = config_with(home / "option.yaml", 13)
    for argv in (["--config", str(option), "config", "show", "--json"],
                 ["config", "show", "--json", "--config", str(option)],
                 ["--json", "config", "show", "--config", str(option)]):
        doc = show(capsys, *argv)
        assert (doc["file"], doc["origin"]) == (str(option), "--config")
        assert doc["config"]["clips"]["min_frames"] == 13


def test_config_init_writes_a_starter_once_and_show_never_prints_the_key(home, capsys,
                                                                         monkeypatch):
    target = home / "xdg-config" / "hydrus-motion" / "config.yaml"
    assert main(["config", "init"]) == 0
    text = target.read_text()
    assert text.startswith("# Written by `hydrus-motion config init`")
    assert "# 31 = 16 frames at stride 2" in text  # commented: keys explained
    assert load_config(target) == Config()  # every key at its default
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    target.write_text(text + "# my own edit\n")
    edited = target.read_text()
    capsys.readouterr()
    assert main(["config", "init"]) == 2  # an existing file is kept
    assert target.read_text() == edited
    assert "already there" in capsys.readouterr().err

    target.write_text(yaml.safe_dump({"hydrus": {"access_key": ALL_KEY}}))
    capsys.readouterr()
    assert main(["config", "show"]) == 0
    out = capsys.readouterr()
    assert f"# config file: {target} (from user config file)" in out.out
    assert "# access key: set (in the config file)" in out.out
    monkeypatch.setenv("HYDRUS_MOTION_ACCESS_KEY", "c3" * 32)
    assert main(["config", "show", "--json"]) == 0
    out2 = capsys.readouterr()
    doc = json.loads(out2.out)
    assert doc["access_key"] == "set (from HYDRUS_MOTION_ACCESS_KEY)"
    for printed in (out.out, out.err, out2.out, out2.err):
        assert ALL_KEY not in printed and "c3" * 32 not in printed

    assert main(["config", "init", "--force"]) == 0
    assert load_config(target) == Config()


def test_status_and_doctor_name_the_config_file(home, capsys):
    user = config_with(home / "xdg-config" / "hydrus-motion" / "config.yaml", 61)
    capsys.readouterr()
    assert main(["status"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"config: {user} (from user config file)"
    assert show(capsys, "status", "--json")["config"]["file"] == str(user)
    main(["doctor", "--json"])  # Hydrus is not running here: exit 1, the doc still comes
    doc = json.loads(capsys.readouterr().out)
    assert doc["config_file"] == str(user)
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["config"]["detail"] == f"{user} (from user config file)"
