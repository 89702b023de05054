"""The typed-YAML validator: one copy for the config, the same bytes vendored into the
trainer (which imports nothing of hydrus_motion)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hydrus_motion.typed_yaml import build, in_range

ROOT = Path(__file__).resolve().parents[1]


def test_the_trainer_copy_is_the_same_file():
    ours = (ROOT / "hydrus_motion" / "typed_yaml.py").read_bytes()
    vendored = (ROOT / "trainer" / "typed_yaml.py").read_bytes()
    assert vendored == ours, "trainer/typed_yaml.py drifted: copy hydrus_motion/typed_yaml.py"
    assert b"hydrus_motion" not in vendored.split(b'"""', 2)[2]  # no import of it


@dataclass(frozen=True)
class Inner:
    rate: float = field(default=0.5, metadata=in_range(0, 1, above=True))
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outer:
    steps: int = field(default=10, metadata=in_range(1))
    mode: Literal["a", "b"] = "a"
    key: str | None = field(default=None, metadata={"secret": True})
    items: list = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)


def test_every_problem_is_one_line_with_what_is_allowed():
    problems: list[str] = []
    build(Outer, {"steps": 0, "mode": "c", "key": 5, "nope": 1, "items": "x",
                  "inner": {"rate": 0, "names": ["ok", ""]}}, "", problems)
    assert problems == [
        "nope: unknown key; allowed keys here: steps, mode, key, items, inner",
        "steps: 0 is out of range; allowed: an integer >= 1",
        "mode: 'c' is not allowed; allowed: a, b",
        "key: (value hidden) is not allowed; allowed: a non-empty string",
        "items: 'x' is not allowed; allowed: a list",
        "inner.rate: 0 is out of range; allowed: a number above 0, at most 1",
        "inner.names: item 1: '' is not allowed; allowed: a non-empty string",
    ]


def test_good_values_are_converted_and_absent_ones_keep_their_defaults():
    problems: list[str] = []
    cfg = build(Outer, {"steps": 3, "items": [1, "two"], "inner": {"rate": 1, "names": ["x"]}},
                "", problems)
    assert not problems
    assert cfg == Outer(steps=3, items=[1, "two"], inner=Inner(rate=1.0, names=("x",)))
    assert isinstance(cfg.inner.rate, float) and cfg.mode == "a"


def test_a_type_the_validator_cannot_check_lets_nothing_through():
    @dataclass
    class Odd:
        pair: tuple = (1, 2)

    problems: list[str] = []
    build(Odd, {"pair": [3, 4]}, "", problems)
    assert problems == ["pair: cannot be checked (type <class 'tuple'> is unknown to the "
                        "validator)"]
