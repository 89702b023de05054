from pathlib import Path

import pytest
import yaml

from hydrus_motion.config import Config, as_dict, config_from_dict, load_config
from hydrus_motion.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.yaml"


def _keys(tree: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in tree.items():
        out.add(prefix + key)
        if isinstance(value, dict):
            out |= _keys(value, f"{prefix}{key}.")
    return out


def test_example_config_shows_every_key_with_its_default():
    example = yaml.safe_load(EXAMPLE.read_text())
    assert _keys(example) == _keys(as_dict(Config()))
    assert load_config(EXAMPLE) == Config()


def test_every_problem_is_reported_at_once_with_path_value_and_allowed():
    with pytest.raises(ConfigError) as err:
        config_from_dict({
            "scenes": {"detector": "magic", "min_scene_len": -1, "adaptiv": {}},
            "clips": {"min_frames": "61"},
            "encode": {"crf": 99, "keep_audio": "yes"},
            "bogus": 1,
        })
    text = str(err.value)
    assert len(err.value.problems) == 7
    assert "scenes.detector: 'magic' is not allowed; allowed: adaptive, content" in text
    assert "scenes.min_scene_len: -1 is out of range; allowed: a number from 0 to 60" in text
    assert "scenes.adaptiv: unknown key" in text
    assert "clips.min_frames: '61' is not allowed; allowed: an integer >= 1" in text
    assert "encode.crf: 99 is out of range" in text
    assert "encode.keep_audio: 'yes' is not allowed; allowed: true or false" in text
    assert "bogus: unknown key" in text


def test_relations_are_checked():
    with pytest.raises(ConfigError, match="clips.max_frames: 30 is below clips.min_frames"):
        config_from_dict({"clips": {"max_frames": 30}})


def test_bad_yaml_and_missing_file_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenes: [unclosed")
    with pytest.raises(ConfigError, match="(?s)bad.yaml.*not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="(?s)missing.yaml.*cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_values_are_typed_and_nested_defaults_kept():
    cfg = config_from_dict({"scenes": {"adaptive": {"adaptive_threshold": 5}},
                            "encode": {"fps": 8}})
    assert cfg.scenes.adaptive.adaptive_threshold == 5.0
    assert cfg.scenes.adaptive.window_width == 2
    assert cfg.encode.fps == 8.0 and cfg.encode.crf == 18
