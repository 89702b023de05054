"""Black bars and fields (issue 14), on generated media of known truth.

Letterboxed / pillarboxed sources are lavfi pictures padded with black; the clips must
come out as the picture (edge pixels lit, size within a few pixels of it). Interlaced
and telecined sources are made with ffmpeg's `interlace` and `telecine` filters from a
smooth moving picture; their clips must lose the combing (adjacent lines, which come
from two fields, as alike as lines two apart) and keep every frame.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import SMOOTH, count_frames, ffmpeg

from hydrus_motion.clips.fields import classify, measure_scan
from hydrus_motion.config import ClipsConfig, Config, EncodeConfig
from hydrus_motion.pipeline import detect_scenes, slice_planned
from hydrus_motion.probe import probe_video
from hydrus_motion.records import CropBox, Scan
from hydrus_motion.scenes.bars import BarMeter, frame_extent
from hydrus_motion.scenes.sidecar import default_sidecar_path, read_sidecar

CFG = Config(encode=EncodeConfig(preset="ultrafast"))
W, H = 320, 240
TESTSRC2 = "testsrc2=size={size}:rate=30"


def make_padded(path: Path, scenes: list[str], picture: tuple[int, int, int, int],
                frames: int = 40) -> Path:
    """Scenes of `frames` frames (lavfi sources), each padded to W x H with black so the
    picture sits at (x, y, w, h)."""
    x, y, w, h = picture
    inputs, chains = [], []
    for i, source in enumerate(scenes):
        inputs += ["-f", "lavfi", "-i", source.format(size=f"{w}x{h}")]
        chains.append(f"[{i}:v]trim=end_frame={frames},setpts=PTS-STARTPTS[s{i}]")
    graph = ";".join(chains) + ";" + "".join(f"[s{i}]" for i in range(len(scenes))) + \
        f"concat=n={len(scenes)}:v=1,pad={W}:{H}:{x}:{y}:black,format=yuv420p[out]"
    ffmpeg(*inputs, "-filter_complex", graph, "-map", "[out]", "-c:v", "libx264",
           "-preset", "ultrafast", "-crf", "14", str(path))
    return path


def gray_frames(path: Path, width: int, height: int) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-pix_fmt",
                          "gray", "-f", "rawvideo", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width).astype(np.float32)


def assert_picture_only(video: Path, clip, picture: tuple[int, int, int, int]):
    """The clip is the picture: inside it, within 4 px of it, and pixel for pixel the
    source's picture at its edges (where a black line would show)."""
    x, y, w, h = picture
    c = clip.crop
    assert c is not None
    assert x <= c.x <= x + 4 and y <= c.y <= y + 4
    assert x + w - 4 <= c.x + c.width <= x + w and y + h - 4 <= c.y + c.height <= y + h
    assert (clip.width, clip.height) == (c.width, c.height)
    source = gray_frames(video, W, H)[clip.start_frame:clip.end_frame]
    bars = np.concatenate([source[:, :y].ravel(), source[:, y + h:].ravel(),
                           source[:, :, :x].ravel(), source[:, :, x + w:].ravel()])
    assert bars.size and bars.mean() < 3  # the source really has black bars there
    want = source[:, c.y:c.y + c.height, c.x:c.x + c.width]
    got = gray_frames(clip.path, clip.width, clip.height)
    assert np.abs(got - want).mean() < 4
    for edge in (np.s_[:, 0, :], np.s_[:, -1, :], np.s_[:, :, 0], np.s_[:, :, -1]):
        assert np.abs(got[edge] - want[edge]).mean() < 8, "the clip's edge is not the picture"


@pytest.mark.parametrize("picture", [(0, 40, 320, 160),    # letterbox: 2:1 inside 4:3
                                     (40, 0, 240, 240)],   # pillarbox: 1:1 inside 4:3
                         ids=["letterbox", "pillarbox"])
def test_bars_are_cut_away_frame_exact(tmp_path, picture):
    sources = [TESTSRC2, "rgbtestsrc=size={size}:rate=30"]
    video = make_padded(tmp_path / "barred.mp4", sources, picture)
    scenes = detect_scenes(video, CFG)
    assert scenes.bars_measured and [s.start_frame for s in scenes.scenes] == [0, 40]
    assert "# bars: measured" in default_sidecar_path(video).read_text()
    result = slice_planned(video, CFG, tmp_path / "out")
    assert [(c.start_frame, c.end_frame) for c in result.clips] == [(0, 38), (42, 80)]
    for clip in result.clips:
        assert count_frames(clip.path) == clip.frames
        assert_picture_only(video, clip, picture)
        assert clip.deinterlace is None  # a progressive source is left alone


def test_hand_made_sidecar_gets_bars_sampled_at_slice_time(tmp_path):
    picture = (0, 40, 320, 160)
    video = make_padded(tmp_path / "barred.mp4", [TESTSRC2], picture, frames=45)
    sidecar = default_sidecar_path(video)
    sidecar.write_text("# hydrus-motion scenes 1\n# fps: 30/1\n# frames: 45\n1 0 45\n")
    assert not read_sidecar(sidecar, video).bars_measured
    (clip,) = slice_planned(video, CFG, tmp_path / "out").clips
    assert_picture_only(video, clip, picture)
    off = dataclasses.replace(CFG, clips=ClipsConfig(crop="off"))
    (full,) = slice_planned(video, off, tmp_path / "off").clips
    assert (full.crop, full.width, full.height) == (None, W, H)


def test_dark_scene_borrows_the_video_bars_and_is_never_cropped_to_nothing(tmp_path):
    # scene 2 is a near-black picture (grey 6) with a small grey box in it
    dark = "color=c=0x060606:size={size}:rate=30,drawbox=x=100:y=60:w=30:h=30:c=gray:t=fill"
    picture = (0, 40, 320, 160)
    video = make_padded(tmp_path / "dark.mp4", [TESTSRC2, dark], picture)
    scenes = detect_scenes(video, CFG)
    assert [s.crop for s in scenes.scenes][0] == scenes.scenes[1].crop  # borrowed
    alone = make_padded(tmp_path / "dark-alone.mp4", [dark], picture, frames=45)
    assert detect_scenes(alone, CFG).scenes[0].crop is None  # nothing to trust: full frame


def test_bar_meter_on_known_frames():
    rng = np.random.default_rng(1)
    meter = BarMeter((160, 120), (1920, 1440), black_level=12, min_bar=0.01)

    def framed(top: int, bottom: int, level: int = 120) -> np.ndarray:
        image = np.zeros((120, 160, 3), np.uint8)
        image[top:120 - bottom] = rng.integers(level - 40, level + 40, (120 - top - bottom,
                                                                        160, 3))
        return image

    for _ in range(10):
        meter.add(framed(15, 15))  # frames 0-9: bars of 15 analysis rows
    for _ in range(10):
        meter.add(np.zeros((120, 160, 3), np.uint8))  # frames 10-19: black
    for _ in range(10):
        meter.add(framed(50, 0, level=60))  # frames 20-29: dark sky on top only
    for _ in range(10):
        meter.add(framed(1, 1))  # frames 30-39: 1-row "bars", under min_bar
    box = meter.crop(0, 10)
    # inside the picture (rows 180-1260 of 1440), at most one analysis row (12 px) less
    assert box == CropBox(x=0, y=186, width=1920, height=1068)
    assert meter.crop(10, 20) is None  # all black: never cropped to nothing
    assert meter.crop(20, 30) is None  # lopsided "bar" is a dark picture, not a bar
    assert meter.crop(30, 40) is None
    assert frame_extent(np.zeros((4, 4, 3), np.uint8), 12) is None


# -- fields ----------------------------------------------------------------------------

def combing(frames: np.ndarray) -> float:
    """The most combed frame: mean difference of adjacent lines (one from each field) over
    that of lines two apart (same field). About 0.56 for this progressive picture, 1 and
    more for a frame whose two fields show different moments."""
    adjacent = np.abs(frames[:, 1:-1:2] - frames[:, 0:-2:2]).mean(axis=(1, 2))
    same_field = np.abs(frames[:, 0:-2:2] - frames[:, 2::2]).mean(axis=(1, 2))
    return float((adjacent / same_field).max())


def test_a_long_source_is_measured_in_windows_across_it(tmp_path):
    """Interlaced after a progressive opening (a broadcast's intro), 1000 frames: windows
    that seek (from the key frame before each) see the fields; windows that all read the
    first frames, as the opening alone shows, would call it progressive."""
    video = tmp_path / "late-fields.mp4"
    ffmpeg("-f", "lavfi", "-i", SMOOTH.format(rate=25), "-f", "lavfi", "-i",
           SMOOTH.format(rate=50), "-filter_complex",
           "[0:v]trim=end_frame=150,setpts=PTS-STARTPTS[a];"
           "[1:v]trim=end_frame=1700,setpts=PTS-STARTPTS,interlace=scan=tff,setfield=tff,"
           "fps=25[b];[a][b]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "libx264",
           "-preset", "ultrafast", "-crf", "14", "-flags", "+ildct+ilme", str(video))
    info = probe_video(video, CFG.tools)
    assert info.frames_hint == 1000
    assert measure_scan(info, CFG.tools) is Scan.INTERLACED
    opening = tmp_path / "opening.mp4"  # what a measure of the first frames alone sees
    ffmpeg("-i", str(video), "-frames:v", "200", "-c:v", "libx264", "-preset", "ultrafast",
           "-crf", "14", "-flags", "+ildct+ilme", str(opening))
    assert measure_scan(probe_video(opening, CFG.tools), CFG.tools) is Scan.PROGRESSIVE


@pytest.mark.parametrize("kind,scan,filter_name", [
    ("interlaced", Scan.INTERLACED, "bwdif"), ("telecined", Scan.TELECINED, "fieldmatch")])
def test_fields_are_detected_and_undone_frame_for_frame(tmp_path, field_sources, kind, scan,
                                                        filter_name):
    video = tmp_path / f"{kind}.mp4"
    video.symlink_to(field_sources[kind])
    assert measure_scan(probe_video(video, CFG.tools), CFG.tools) is scan
    frames = count_frames(video)
    sidecar = default_sidecar_path(video)
    sidecar.write_text(f"# hydrus-motion scenes 1\n# fps: 30000/1001\n# frames: {frames}\n"
                       f"1 0 {frames}\n")
    before = combing(gray_frames(video, W, H))
    assert before > 0.9  # the source really is combed
    (clip,) = slice_planned(video, CFG, tmp_path / "out").clips
    assert clip.deinterlace == filter_name
    assert count_frames(clip.path) == clip.frames == frames  # frame numbers stay exact
    assert combing(gray_frames(clip.path, W, H)) < 0.65
    off = dataclasses.replace(CFG, encode=dataclasses.replace(CFG.encode, deinterlace="off"))
    (kept,) = slice_planned(video, off, tmp_path / "off").clips
    assert kept.deinterlace is None and combing(gray_frames(kept.path, W, H)) > 0.9


def test_a_deinterlaced_clip_is_the_same_however_the_cut_is_batched(tmp_path):
    """bwdif looks at the frame before: a clip starting on a key frame, cut in a run of its
    own, still has it (the run seeks to just before the clip, so the demuxer starts one
    key frame earlier), as in one run from the start of the file; the one pass relies on
    that (test_onepass.py)."""
    video = tmp_path / "interlaced-gop20.mp4"
    ffmpeg("-f", "lavfi", "-i", SMOOTH.format(rate=50), "-frames:v", "100", "-vf",
           "interlace=scan=tff,setfield=tff", "-c:v", "libx264", "-preset", "ultrafast",
           "-crf", "14", "-flags", "+ildct+ilme", "-g", "20", "-keyint_min", "20",
           "-sc_threshold", "0", str(video))
    default_sidecar_path(video).write_text(
        "# hydrus-motion scenes 1\n# fps: 25/1\n# frames: 100\n1 0 40\n2 40 100\n")

    def second_clip(clips_per_run: int) -> np.ndarray:
        cfg = Config(encode=EncodeConfig(preset="ultrafast", crf=0, clips_per_run=clips_per_run),
                     clips=ClipsConfig(trim_frames=0, min_frames=20))
        clips = slice_planned(video, cfg, tmp_path / f"per-run-{clips_per_run}").clips
        assert [c.start_frame for c in clips] == [0, 40] and clips[1].deinterlace == "bwdif"
        return gray_frames(clips[1].path, W, H)

    together, alone = second_clip(50), second_clip(1)  # alone: seeks to key frame 40
    assert together.shape == alone.shape == (60, H, W)
    assert (together == alone).all()


@pytest.mark.parametrize("counts,scan", [
    ((0, 0, 300, 3, 301), Scan.PROGRESSIVE),     # real footage (testvideo.mp4)
    ((95, 0, 4, 0, 100), Scan.INTERLACED),
    ((0, 0, 48, 19, 48), Scan.TELECINED),       # 3:2 pulldown: 2 of 5 frames repeat a field
    ((10, 0, 2, 0, 300), Scan.PROGRESSIVE),     # too few frames moved to tell
    ((30, 0, 70, 0, 100), Scan.PROGRESSIVE),
])
def test_classify(counts, scan):
    assert classify(*counts) is scan
