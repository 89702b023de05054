"""One pass (detect and cut in one decode) against two passes (`scenes`, then `slice`).

Clips are cut at crf 0 (lossless x264), so the one-pass encoder's input can be compared
with the two-pass cutter's pixel for pixel: same frames, same crop, same scale.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import MEDIA, count_frames, ffmpeg, make_scenes_video
from test_scenes import GOLDENS, golden_config

from hydrus_motion.clips.cut import FfmpegCutter
from hydrus_motion.clips.done import RECORD_NAME
from hydrus_motion.config import ClipsConfig, Config, EncodeConfig
from hydrus_motion.errors import Interrupted
from hydrus_motion.pipeline import detect_and_cut, detect_scenes, slice_video

LOSSLESS = Config(encode=EncodeConfig(preset="ultrafast", crf=0),
                  clips=ClipsConfig(max_frames=80))  # scene 2 (90 frames) is split


def yuv_frames(path: Path) -> np.ndarray:
    """Every frame of a clip as raw yuv420p bytes (n, bytes)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout
    width, height = map(int, out.strip().split(",")[:2])
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", f"file:{path}",
                          "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p",
                          "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, width * height * 3 // 2)


def frame_times(path: Path) -> list[float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=pts_time", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return [float(line.strip(",")) for line in out.split()]


def one_pass(video: Path, cfg: Config, root: Path):
    """What ingest does for a new video: the one pass, then the cutter for the rest."""
    sidecar, out = root / "one.scenes.txt", root / "one"
    info, plan = detect_and_cut(video, cfg, sidecar, out)
    during = sorted(p.name for p in out.glob("*.mp4"))  # cut while detecting
    clips = FfmpegCutter(cfg.encode, cfg.tools).cut(info, list(plan.spans), out)
    return sidecar, clips, during


def two_pass(video: Path, cfg: Config, root: Path):
    sidecar = root / "two.scenes.txt"
    detect_scenes(video, cfg, sidecar)
    return sidecar, slice_video(video, cfg, root / "two", sidecar)


def assert_same(video: Path, cfg: Config, root: Path) -> list[str]:
    """Byte-identical sidecars; the same clips, frame for frame. Returns the clips the
    one pass cut itself."""
    side_one, clips_one, during = one_pass(video, cfg, root)
    side_two, clips_two = two_pass(video, cfg, root)
    assert side_one.read_bytes() == side_two.read_bytes()
    assert [c.path.name for c in clips_one] == [c.path.name for c in clips_two]
    for one, two in zip(clips_one, clips_two):
        assert (one.frames, one.width, one.height, one.crop, one.fps) == \
            (two.frames, two.width, two.height, two.crop, two.fps)
        assert count_frames(one.path) == count_frames(two.path) == one.frames
        a, b = yuv_frames(one.path), yuv_frames(two.path)
        assert (a[0] == b[0]).all() and (a[-1] == b[-1]).all(), one.path.name
        times_one, times_two = frame_times(one.path), frame_times(two.path)
        steps_one = np.diff(times_one)
        assert np.allclose(steps_one, np.diff(times_two), atol=2e-3), one.path.name
    return during


def test_one_pass_gives_the_two_pass_result(scenes_video, tmp_path):
    during = assert_same(scenes_video, LOSSLESS, tmp_path)
    # scenes 1, 3 and 4 came out of the one decode; the split scene 2 from the cutter
    assert during == ["scenes-scene001-0-78.mp4", "scenes-scene003-172-238.mp4",
                      "scenes-scene004-242-315.mp4"]


def test_vfr_source(vfr_video, tmp_path):
    """Frames 50-99 last twice as long: that clip cannot be a constant-rate encode, so the
    cutter makes it; the evenly timed scene after the cut comes from the one pass."""
    cfg = dataclasses.replace(LOSSLESS, clips=ClipsConfig(min_frames=20))
    during = assert_same(vfr_video, cfg, tmp_path)
    assert during == ["vfr-scene002-102-180.mp4"]


def test_black_bars_and_resampling(scenes_video, tmp_path):
    video = tmp_path / "bars.mp4"  # the scenes inside 30-pixel bars top and bottom
    ffmpeg("-i", str(scenes_video), "-vf", "pad=320:300:0:30:black", "-c:v", "libx264",
           "-preset", "veryfast", "-crf", "16", str(video))
    cfg = dataclasses.replace(LOSSLESS, encode=dataclasses.replace(LOSSLESS.encode, fps=24))
    during = assert_same(video, cfg, tmp_path)
    assert "320x236+0+32" in (tmp_path / "one.scenes.txt").read_text()  # cropped clips
    # the crops predicted from each scene's first frames held
    assert during == ["bars-scene001-0-78.mp4", "bars-scene003-172-238.mp4",
                      "bars-scene004-242-315.mp4"]


@pytest.mark.skipif(not MEDIA.exists(), reason="shared media not present")
def test_rotated_source(tmp_path):
    video = tmp_path / "rotated.mp4"  # 1280x544 coded, shown as 544x1280
    os.symlink(MEDIA / "issue-134-rotate.mp4", video)
    cfg = dataclasses.replace(LOSSLESS, clips=ClipsConfig())
    assert_same(video, cfg, tmp_path)


def test_interrupted_pass_leaves_no_sidecar_and_no_clip(scenes_video, tmp_path, monkeypatch):
    from hydrus_motion.clips import onepass

    real = onepass.decode_with_full

    def stopped(*args, **kwargs):
        for n, item in enumerate(real(*args, **kwargs)):
            if n == 200:  # clip 1 finished, clip 3 being encoded: the daemon stops
                raise Interrupted("ffmpeg was stopped")
            yield item

    monkeypatch.setattr(onepass, "decode_with_full", stopped)
    with pytest.raises(Interrupted):
        detect_and_cut(scenes_video, LOSSLESS, tmp_path / "v.scenes.txt", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert list((tmp_path / "out").iterdir()) == []


_KILLED = """
import sys, time
from pathlib import Path
from hydrus_motion.clips import onepass_plan
from hydrus_motion.config import ClipsConfig, Config, EncodeConfig
from hydrus_motion.pipeline import detect_and_cut

route = onepass_plan.Router.frame
def slow(self, index):
    time.sleep(0.03)
    return route(self, index)
onepass_plan.Router.frame = slow
cfg = Config(encode=EncodeConfig(preset="ultrafast", crf=0), clips=ClipsConfig(max_frames=80))
detect_and_cut(Path(sys.argv[1]), cfg, Path(sys.argv[2]), Path(sys.argv[3]))
"""


def test_killed_pass_leaves_no_sidecar_and_no_clip(scenes_video, tmp_path):
    """kill -9 mid-pass, with finished provisional clips on disk: none reaches the clips
    folder, no sidecar; the next run does it all."""
    sidecar, out = tmp_path / "v.scenes.txt", tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(scenes_video), str(sidecar),
                             str(out)])
    deadline = time.monotonic() + 60
    while not list(out.glob(".hydrus-motion-*/clip000001.mp4")):  # clip 2 under way
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not sidecar.exists()
    assert [p for p in out.iterdir() if not p.name.startswith(".hydrus-motion-")] == []
    info, plan = detect_and_cut(scenes_video, LOSSLESS, sidecar, out)
    assert sidecar.exists() and (out / RECORD_NAME).exists()
    clips = FfmpegCutter(LOSSLESS.encode, LOSSLESS.tools).cut(info, list(plan.spans), out)
    assert [count_frames(c.path) for c in clips] == [c.frames for c in clips] == \
        [78, 43, 43, 66, 73]


def test_ingest_uses_one_pass_for_a_new_video(tmp_path, monkeypatch):
    from hydrus_motion import pipeline
    from hydrus_motion.store.db import open_store

    video = make_scenes_video(tmp_path / "new.mp4", [("testsrc2", 50), ("smptehdbars", 60)])
    used = []
    real = pipeline.detect_and_cut
    monkeypatch.setattr(pipeline, "detect_and_cut",
                        lambda *a: used.append(a[0]) or real(*a))
    cfg = dataclasses.replace(LOSSLESS, paths=dataclasses.replace(
        LOSSLESS.paths, state_dir=str(tmp_path / "state")))
    store = open_store(tmp_path / "state")
    first = pipeline.ingest_video(video, cfg, store, annotate=False)
    assert used == [video] and [(r.start_frame, r.end_frame) for r in first.clips] == \
        [(0, 48), (52, 110)]
    again = pipeline.ingest_video(video, cfg, store, annotate=False)  # sidecar current
    assert used == [video] and again.reused


@pytest.mark.parametrize("golden", GOLDENS, ids=[g.name for g in GOLDENS])
def test_one_pass_finds_the_golden_cuts(golden, tmp_path):
    """PySceneDetect's goldens through the one pass: the golden cuts (and for the default
    detector the sidecar `scenes` writes, byte for byte), while clips are cut in the same
    decode (small and fast here; clips are compared frame by frame on the generated media
    above). Scenes split for length (fades.mp4 is one 250-frame scene for most detectors)
    and cuts reported late (the threshold detector's fades) go to the cutter by design
    (docs/CLIPS.md)."""
    import json

    from hydrus_motion.config import ScenesConfig
    from hydrus_motion.probe import probe_video

    video = MEDIA / golden.name.rsplit(".", 3)[0]
    scenes = ScenesConfig(**golden_config(golden, probe_video(video, Config().tools).fps))
    cfg = Config(scenes=scenes, encode=EncodeConfig(preset="ultrafast", crf=30,
                                                    max_short_side=72))
    side_one, clips, during = one_pass(video, cfg, tmp_path)
    expected = json.loads(golden.read_text())["cuts"]
    if scenes.detector != "histogram":  # those goldens predate 0.7.2 (test_scenes.py)
        found = [int(line.split()[1]) for line in side_one.read_text().splitlines()
                 if line and not line.startswith("#")][1:]
        assert found == expected
    if golden.name.endswith(".AdaptiveDetector.default.json"):  # the default detector
        side_two = tmp_path / "two.scenes.txt"
        detect_scenes(video, cfg, side_two)
        assert side_one.read_bytes() == side_two.read_bytes()
    assert set(during) <= {c.path.name for c in clips}
    if video.name == "testvideo.mp4" and scenes.detector in ("adaptive", "content"):
        # real footage, hard cuts: every clip of a scene not split came out of the pass
        whole = [c.path.name for c in clips if [d.scene for d in clips].count(c.scene) == 1]
        assert whole and during == whole


def colour_tags(path: Path) -> str:
    return subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                           "stream=color_range,color_space,color_transfer,color_primaries",
                           "-of", "csv=p=0", str(path)],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_one_pass_clips_keep_the_sources_colour_tags(scenes_video, tmp_path):
    """A raw pipe carries no colour tags; the one pass passes the probed ones on, so its
    clips say what the two-pass clips say (a BT.709 rip is not shown as BT.601)."""
    video = tmp_path / "tagged.mp4"
    ffmpeg("-i", str(scenes_video), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16",
           "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
           "-color_range", "tv", str(video))
    assert colour_tags(video) == "tv,bt709,bt709,bt709"
    _, clips_one, during = one_pass(video, LOSSLESS, tmp_path)
    _, clips_two = two_pass(video, LOSSLESS, tmp_path)
    assert during
    assert {colour_tags(c.path) for c in clips_one + clips_two} == {"tv,bt709,bt709,bt709"}
