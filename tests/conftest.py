"""Shared fixtures: videos generated with ffmpeg lavfi so every cut frame is known.

Each source is visually distinct from its neighbours (hard cuts) and changes every frame
(a moving pattern and a frame counter), so a pixel comparison can tell frame n from n+1.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hydrus_server import ALL_PERMISSIONS, FakeHydrus

from hydrus_motion.config import Config, config_from_dict

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media" / "pyscenedetect"

# Tests never reach the Hugging Face hub: a model id must come from a (test-made) cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Nor the user's own config, state or watch folder: the platform folders (config
# discovery, default state_dir and watch_dir) point into a folder of this test run.
_HOME = Path(tempfile.mkdtemp(prefix="hydrus-motion-test-home-"))
atexit.register(shutil.rmtree, _HOME, True)
for _var, _sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                   ("XDG_DATA_HOME", "data")):
    os.environ[_var] = str(_HOME / _sub)
for _var in ("HYDRUS_MOTION_CONFIG", "HYDRUS_MOTION_ACCESS_KEY"):
    os.environ.pop(_var, None)

if not shutil.which("ffmpeg"):
    pytest.exit("ffmpeg is required for the tests: run scripts/test.sh, which installs it", 2)

# (lavfi source, frames) per scene; hard cuts fall at the running sums.
SCENES_30FPS = [("testsrc2", 80), ("smptehdbars", 90), ("rgbtestsrc", 70), ("testsrc", 75)]
KNOWN_CUTS = [80, 170, 240]
TOTAL_FRAMES = 315


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
                   check=True)


def make_scenes_video(path: Path, scenes=SCENES_30FPS, fps: int = 30, size="320x240",
                      extra: tuple[str, ...] = ()) -> Path:
    """Concatenate lavfi sources; each gets a moving overlay so frames always differ."""
    inputs, labels = [], []
    for i, (source, frames) in enumerate(scenes):
        sep = ":" if "=" in source else "="
        inputs += ["-f", "lavfi", "-i", f"{source}{sep}size={size}:rate={fps}"]
        labels.append(f"color=c=white:size=40x40:rate={fps}[box{i}];"
                      f"[{i}:v]trim=end_frame={frames},setpts=PTS-STARTPTS[bg{i}];"
                      f"[bg{i}][box{i}]overlay=x='mod(n*7,280)':y=20:shortest=1,"
                      f"format=yuv420p[v{i}]")
    graph = ";".join(labels) + ";" + "".join(f"[v{i}]" for i in range(len(scenes))) + \
        f"concat=n={len(scenes)}:v=1:a=0[out]"
    ffmpeg(*inputs, "-filter_complex", graph, "-map", "[out]", "-c:v", "libx264",
           "-preset", "veryfast", "-crf", "16", "-g", "50", *extra, str(path))
    return path


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def scenes_video(media_dir) -> Path:
    """320x240, 30 fps, 315 frames, hard cuts at KNOWN_CUTS."""
    return make_scenes_video(media_dir / "scenes.mp4")


# a smooth moving picture: every line a little different from the next, so fields show
SMOOTH = "testsrc2=size=160x120:rate={rate},scale=320:240:flags=bicubic"


@pytest.fixture(scope="session")
def field_sources(media_dir) -> dict[str, Path]:
    """A combed (interlaced, 50 fields/s, 100 frames) and a telecined (2:3 from 23.976,
    50 frames) source, as a DVD or broadcast rip has them."""
    out = {"interlaced": media_dir / "interlaced.mp4", "telecined": media_dir / "telecined.mp4"}
    ffmpeg("-f", "lavfi", "-i", SMOOTH.format(rate=50), "-frames:v", "100", "-vf",
           "interlace=scan=tff,setfield=tff", "-c:v", "libx264", "-preset", "ultrafast",
           "-crf", "14", "-flags", "+ildct+ilme", str(out["interlaced"]))
    ffmpeg("-f", "lavfi", "-i", SMOOTH.format(rate="24000/1001"), "-frames:v", "40", "-vf",
           "telecine=first_field=top:pattern=23", "-c:v", "libx264", "-preset", "ultrafast",
           "-crf", "14", "-flags", "+ildct+ilme", str(out["telecined"]))
    return out


@pytest.fixture(scope="session")
def vfr_video(media_dir) -> Path:
    """Variable frame rate: frames 50-99 last 1/15 s, the rest 1/30 s; a cut at frame 100.

    A tool that numbers frames by time * average fps puts this cut at the wrong frame.
    """
    plain = make_scenes_video(media_dir / "vfr-src.mp4", [("testsrc2", 100), ("smptehdbars", 80)])
    out = media_dir / "vfr.mp4"
    ffmpeg("-i", str(plain), "-vf",
           "setpts='if(lt(N,50),N/30,if(lt(N,100),50/30+(N-50)/15,50/30+50/15+(N-100)/30))/TB'",
           "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "veryfast", "-crf", "16",
           str(out))
    return out


def decode_gray(path: Path, size=(64, 48)) -> np.ndarray:
    """All frames of a video as small grayscale images (n, h, w), for pixel comparisons."""
    w, h = size
    raw = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i",
                          f"file:{path}", "-fps_mode", "passthrough", "-vf",
                          f"scale={w}:{h}:flags=area", "-pix_fmt", "gray", "-f", "rawvideo",
                          "pipe:1"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w).astype(np.int16)


def count_frames(path: Path) -> int:
    """Decoded frame count (ffprobe -count_frames), independent of our own code."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
                          "-show_entries", "stream=nb_read_frames", "-of", "json", str(path)],
                         check=True, capture_output=True).stdout
    return int(json.loads(out)["streams"][0]["nb_read_frames"])


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hydrus_motion", *args], capture_output=True,
                          text=True, env=env, timeout=600)


# -- ERROR log lines ---------------------------------------------------------------------


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


@pytest.fixture(autouse=True)
def no_unexpected_error_log(request):
    """An ERROR (or worse) log line in this process fails the test, unless the test says
    it logs one on purpose: `@pytest.mark.expect_error_log`. (A CLI run as a subprocess
    logs into its own stderr, which the test reads itself.)"""
    errors = _Errors()
    root = logging.getLogger()
    root.addHandler(errors)
    try:
        yield
    finally:
        root.removeHandler(errors)
    if errors.lines and request.node.get_closest_marker("expect_error_log") is None:
        pytest.fail("unexpected ERROR log line(s); fix the cause, or mark the test "
                    "@pytest.mark.expect_error_log:\n  " + "\n  ".join(errors.lines[:20]),
                    pytrace=False)


# -- Hydrus ---------------------------------------------------------------------------

ALL_KEY = "a1" * 32  # test-server keys: all permissions, and search only
SEARCH_ONLY_KEY = "b2" * 32


@dataclass(frozen=True)
class HydrusTarget:
    """Where the contract tests point: our test server, or a real client from the env."""

    url: str
    key: str
    limited_key: str | None  # a key that may search but not tag (None: not available)
    fake: FakeHydrus | None

    def config(self, tmp_path: Path, **hydrus: object) -> Config:
        return config_from_dict({"paths": {"state_dir": str(tmp_path / "state")},
                                 "hydrus": {"api_url": self.url, "access_key": self.key,
                                            "backoff_s": 0, **hydrus}})


def start_fake_hydrus(**kwargs: object) -> FakeHydrus:
    perms = {ALL_KEY: ALL_PERMISSIONS, SEARCH_ONLY_KEY: (3,)}
    return FakeHydrus(permissions=perms, **kwargs).start()


@pytest.fixture(scope="session")
def hydrus_target() -> Iterator[HydrusTarget]:
    url, key = os.environ.get("HYDRUS_TEST_API_URL"), os.environ.get("HYDRUS_TEST_ACCESS_KEY")
    if url and key:
        yield HydrusTarget(url, key, os.environ.get("HYDRUS_TEST_LIMITED_KEY"), None)
        return
    fake = start_fake_hydrus()
    yield HydrusTarget(fake.url, ALL_KEY, SEARCH_ONLY_KEY, fake)
    fake.stop()


@pytest.fixture(scope="session")
def unique_mp4(media_dir) -> Callable[[], Path]:
    """A valid, never-seen-before mp4 per call (a real client keeps its files across runs)."""
    base = media_dir / "unique-base.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=1", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(base))

    def make() -> Path:
        out = media_dir / f"unique-{uuid.uuid4().hex}.mp4"
        ffmpeg("-i", str(base), "-c", "copy", "-metadata", f"comment={uuid.uuid4()}", str(out))
        return out

    return make


def trained_on(make: Callable[[], Path], holdout: float = 0.1) -> Path:
    """A clip from `make` that eval.holdout does not keep back: the split goes by the clip's
    hash, and a random one is held out `holdout` of the time (a run of one such clip would
    have nothing to train on)."""
    from hydrus_motion.ingest.content import file_sha256
    from trainer.evaluate import holdout_bucket

    while True:
        clip = make()
        if holdout_bucket(file_sha256(clip)) >= round(holdout * 1000):
            return clip
