"""One pass (detect and cut in one decode) against two passes (`scenes`, then `slice`).

Clips are cut at crf 0 (lossless x264), so the one-pass encoder's input can be compared
with the two-pass cutter's pixel for pixel: same frames, same crop, same scale.
"""

from __future__ import annotations

import dataclasses
import os
import re
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
from hydrus_motion.scenes.sidecar import default_sidecar_path

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


def cli_libavfilter() -> int:
    """The major version of the ffmpeg CLI's libavfilter ("libavfilter  8. 44.100 / ...")."""
    out = subprocess.run(["ffmpeg", "-version"], check=True, capture_output=True,
                         text=True).stdout
    return int(re.search(r"^libavfilter\s+(\d+)\.", out, re.M).group(1))


def pyav_libavfilter() -> int:
    import av

    return av.library_versions["libavfilter"][0]


def assert_same(video: Path, cfg: Config, root: Path, first_frame_close: bool = False
                ) -> list[str]:
    """Byte-identical sidecars; the same clips, frame for frame. Returns the clips the
    one pass cut itself. `first_frame_close`: the video's first frame may differ a little
    (see test_fields_are_undone_in_the_pass_as_the_cutter_does)."""
    side_one, clips_one, during = one_pass(video, cfg, root)
    side_two, clips_two = two_pass(video, cfg, root)
    assert side_one.read_bytes() == side_two.read_bytes()
    assert [c.path.name for c in clips_one] == [c.path.name for c in clips_two]
    for one, two in zip(clips_one, clips_two):
        assert (one.frames, one.width, one.height, one.crop, one.fps) == \
            (two.frames, two.width, two.height, two.crop, two.fps)
        assert count_frames(one.path) == count_frames(two.path) == one.frames
        a, b = yuv_frames(one.path), yuv_frames(two.path)
        if first_frame_close and one.start_frame == 0:
            changed = a[0] != b[0]
            assert changed.mean() < 0.01 and np.abs(a[0] - b[0].astype(int)).max() <= 16
            a, b = a[1:], b[1:]
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


@pytest.mark.parametrize("kind", ["interlaced", "telecined"])
def test_fields_are_undone_in_the_pass_as_the_cutter_does(field_sources, kind, tmp_path):
    """bwdif, and fieldmatch + bwdif (a filter that holds frames back), on the full-size
    branch of the one decode: the same frames as the two-pass cutter's.

    Except where the FFmpeg builds differ: bwdif changed between FFmpeg 5.1 and 8 on a
    frame with no frame before it, the first of the file (a few hundred pixels, by a few
    levels). When the ffmpeg CLI's libavfilter is not PyAV's, that one frame is compared
    loosely; every other frame must match exactly."""
    video = tmp_path / f"{kind}.mp4"
    video.symlink_to(field_sources[kind])
    cfg = dataclasses.replace(LOSSLESS, clips=ClipsConfig(min_frames=20))
    builds_differ = cli_libavfilter() != pyav_libavfilter()
    during = assert_same(video, cfg, tmp_path, first_frame_close=builds_differ)
    assert during == [f"{kind}-scene001-0-{count_frames(video)}.mp4"]


def _media() -> list[Path]:
    return sorted(MEDIA.glob("*.mp4")) if MEDIA.exists() else []


@pytest.mark.parametrize("name", ["scenes", "vfr", "interlaced", *[p.name for p in _media()]])
def test_the_pass_sees_the_frames_scenes_sees(name, scenes_video, vfr_video, field_sources):
    """The premise of byte-identical sidecars: the in-process decode gives detection the
    very frames and times the ffmpeg CLI gives `scenes` (PyAV bundles its own FFmpeg).
    Real media: rotated, non-square pixels, fades, 1080p."""
    import hashlib

    from hydrus_motion.clips.inprocess import decode_in_process
    from hydrus_motion.frames import decode_frames
    from hydrus_motion.probe import probe_video

    video = {"scenes": scenes_video, "vfr": vfr_video,
             "interlaced": field_sources["interlaced"]}.get(name) or MEDIA / name
    info, tools = probe_video(video, Config().tools), Config().tools

    def seen(frames) -> list[tuple[int, float, str]]:
        return [(f.index, f.time, hashlib.sha1(f.image.tobytes()).hexdigest()) for f in frames]

    cli = seen(decode_frames(info, tools, long_side=256))
    ours = seen(frame for frame, _ in decode_in_process(info, long_side=256, chain=None))
    assert len(ours) == len(cli) > 0
    assert ours == cli


def test_a_video_the_pass_cannot_decode_goes_to_the_two_passes(scenes_video, tmp_path):
    """PyAV stops at a damaged packet that the ffmpeg CLI skips with a warning: the one
    pass gives up before writing anything, and the two passes cut the video."""
    from hydrus_motion import pipeline
    from hydrus_motion.store.db import open_store

    data = bytearray(scenes_video.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = b"\xff" * 4000  # PyAV stops at frame 52; the CLI drops one
    video = tmp_path / "damaged.mp4"
    video.write_bytes(data)
    sidecar, out = tmp_path / "d.scenes.txt", tmp_path / "out"
    assert detect_and_cut(video, LOSSLESS, sidecar, out) is None
    assert not sidecar.exists() and list(out.iterdir()) == []
    cfg = dataclasses.replace(LOSSLESS, paths=dataclasses.replace(
        LOSSLESS.paths, state_dir=str(tmp_path / "state")))
    result = pipeline.ingest_video(video, cfg, open_store(tmp_path / "state"), annotate=False)
    assert result.clips and default_sidecar_path(video).exists()
    for clip in result.clips:
        assert count_frames(clip.path) == clip.end_frame - clip.start_frame


@pytest.mark.parametrize("failure", ["encoder", "disk"])
@pytest.mark.parametrize("at_write", [100, "last"])
def test_an_encoder_error_in_its_thread_reaches_the_pass(scenes_video, tmp_path, monkeypatch,
                                                         failure, at_write):
    """The encoders run in a thread of their own: an encoder error there gives up the
    one pass (the two passes cut the video), a write error is the clips' disk; either
    way no sidecar, no clip, and no encoder thread left behind. Also when it happens at
    the last frame, after the decode ended."""
    import threading

    import av

    from hydrus_motion.clips import inprocess
    from hydrus_motion.errors import LocalFailure

    total = count_frames(scenes_video)
    fail_at = total if at_write == "last" else at_write
    real, written = inprocess.ClipWriter.write, []

    def write(self, picture):
        written.append(threading.current_thread().name)
        if len(written) == fail_at:
            if failure == "disk":
                raise OSError(28, "No space left on device", str(self.path))
            raise av.error.InvalidDataError(1094995529, "Invalid data")
        real(self, picture)

    monkeypatch.setattr(inprocess.ClipWriter, "write", write)
    cfg = dataclasses.replace(LOSSLESS, clips=ClipsConfig(min_frames=1, trim_frames=0))
    sidecar, out = tmp_path / "v.scenes.txt", tmp_path / "out"
    if failure == "disk":
        with pytest.raises(LocalFailure, match="No space left"):
            detect_and_cut(scenes_video, cfg, sidecar, out)
    else:
        assert detect_and_cut(scenes_video, cfg, sidecar, out) is None
    assert len(written) == fail_at  # nothing was written after the error
    assert set(written) == {"one-pass-encoder"}
    assert not sidecar.exists() and list(out.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name == "one-pass-encoder"]


def test_interrupted_pass_leaves_no_sidecar_and_no_clip(scenes_video, tmp_path, monkeypatch):
    from hydrus_motion.clips import onepass

    real = onepass.decode_in_process

    def stopped(*args, **kwargs):
        for n, item in enumerate(real(*args, **kwargs)):
            if n == 200:  # clip 1 finished, clip 3 being encoded: the daemon stops
                raise Interrupted("ffmpeg was stopped")
            yield item

    monkeypatch.setattr(onepass, "decode_in_process", stopped)
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
    """The one pass's encoders take the decoded frames' colour tags, so its clips say
    what the two-pass clips say (a BT.709 rip is not shown as BT.601)."""
    video = tmp_path / "tagged.mp4"
    ffmpeg("-i", str(scenes_video), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16",
           "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
           "-color_range", "tv", str(video))
    assert colour_tags(video) == "tv,bt709,bt709,bt709"
    _, clips_one, during = one_pass(video, LOSSLESS, tmp_path)
    _, clips_two = two_pass(video, LOSSLESS, tmp_path)
    assert during
    assert {colour_tags(c.path) for c in clips_one + clips_two} == {"tv,bt709,bt709,bt709"}
