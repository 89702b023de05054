import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import MEDIA, count_frames, decode_gray

from hydrus_motion.clips.done import RECORD_NAME
from hydrus_motion.config import ClipsConfig, Config, EncodeConfig
from hydrus_motion.errors import BadVideo
from hydrus_motion.pipeline import detect_scenes, slice_video

CFG = Config(encode=EncodeConfig(preset="veryfast"))
# every clip in its own ffmpeg run: each run after the first seeks into the source
ONE_PER_RUN = dataclasses.replace(CFG, encode=EncodeConfig(preset="veryfast", clips_per_run=1))


def assert_frame_exact(src: np.ndarray, clip_path: Path, start: int, end: int, step: int = 1):
    """The clip's first and last frames are closest to their own source frames (`src`,
    from decode_gray), not to a neighbour."""
    clip = decode_gray(clip_path)
    expected = list(range(start, end, step))
    assert len(clip) == len(expected)
    for i in (0, len(clip) - 1):
        errors = {n: np.abs(clip[i] - src[n]).mean()
                  for n in (expected[i] - 1, expected[i], expected[i] + 1) if 0 <= n < len(src)}
        assert min(errors, key=errors.get) == expected[i], (clip_path.name, i, errors)


@pytest.mark.parametrize("cfg", [CFG, ONE_PER_RUN], ids=["one-run", "run-per-clip"])
def test_clips_match_plan_frame_for_frame(scenes_video, tmp_path, cfg):
    detect_scenes(scenes_video, cfg)
    clips = slice_video(scenes_video, cfg, tmp_path)
    assert [(c.start_frame, c.end_frame) for c in clips] == [
        (0, 78), (82, 168), (172, 238), (242, 315)]
    source = decode_gray(scenes_video)
    for clip in clips:
        assert count_frames(clip.path) == clip.frames == clip.end_frame - clip.start_frame
        assert_frame_exact(source, clip.path, clip.start_frame, clip.end_frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [RECORD_NAME] + [c.path.name for c in clips])


@pytest.mark.parametrize("base", [CFG, ONE_PER_RUN], ids=["one-run", "run-per-clip"])
def test_vfr_clips_are_cut_by_frame_index(vfr_video, tmp_path, base):
    cfg = dataclasses.replace(base, clips=ClipsConfig(min_frames=20, max_frames=60))
    detect_scenes(vfr_video, cfg)
    clips = slice_video(vfr_video, cfg, tmp_path)
    assert [(c.start_frame, c.end_frame) for c in clips] == [
        (0, 49), (49, 98), (102, 141), (141, 180)]
    source = decode_gray(vfr_video)
    for clip in clips:
        assert count_frames(clip.path) == clip.frames
        assert_frame_exact(source, clip.path, clip.start_frame, clip.end_frame)


def test_edited_sidecar_is_honoured(scenes_video, tmp_path):
    sidecar = tmp_path / "edited.scenes.txt"
    detect_scenes(scenes_video, CFG, sidecar)
    text = sidecar.read_text().splitlines()
    head = [ln for ln in text if ln.startswith("#")]
    sidecar.write_text("\n".join(head + ["1 100 170", "2 170 240"]) + "\n")
    clips = slice_video(scenes_video, CFG, tmp_path / "out", sidecar)
    assert [(c.scene, c.start_frame, c.end_frame) for c in clips] == [
        (1, 102, 168), (2, 172, 238)]
    assert_frame_exact(decode_gray(scenes_video), clips[0].path, 102, 168)


@pytest.mark.parametrize("base", [CFG, ONE_PER_RUN], ids=["one-run", "run-per-clip"])
def test_constant_fps_resampling_is_exact(scenes_video, tmp_path, base):
    cfg = dataclasses.replace(base, encode=dataclasses.replace(base.encode, fps=15),
                              clips=ClipsConfig(min_frames=61, max_frames=240))
    detect_scenes(scenes_video, cfg)
    clips = slice_video(scenes_video, cfg, tmp_path)
    first = clips[0]
    assert (first.start_frame, first.end_frame, first.frames, first.fps) == (0, 78, 39, 15.0)
    source = decode_gray(scenes_video)
    for clip in clips:
        assert count_frames(clip.path) == clip.frames
        assert_frame_exact(source, clip.path, clip.start_frame, clip.end_frame, step=2)


def test_short_side_cap_and_square_pixels(scenes_video, tmp_path):
    cfg = dataclasses.replace(CFG, encode=dataclasses.replace(CFG.encode, max_short_side=120))
    detect_scenes(scenes_video, cfg)
    clip = slice_video(scenes_video, cfg, tmp_path)[0]
    assert (clip.width, clip.height) == (160, 120)


@pytest.mark.skipif(not MEDIA.exists(), reason="shared media not present")
@pytest.mark.parametrize("name,size,cfg", [  # the rotated one with a seek per clip
    ("issue-134-rotate.mp4", (544, 1280), ONE_PER_RUN),
    ("issue-195-aspect-ratio.mp4", (1024, 576), CFG)])
def test_rotated_and_non_square_sources(tmp_path, name, size, cfg):
    video = tmp_path / name
    os.symlink(MEDIA / name, video)
    detect_scenes(video, cfg)
    clips = slice_video(video, cfg, tmp_path / "out")
    assert clips
    for clip in clips:
        # the rotated clip has real black bars in one scene: that one keeps the picture
        assert (clip.width, clip.height) == \
            ((clip.crop.width, clip.crop.height) if clip.crop else size)
        assert count_frames(clip.path) == clip.frames


def test_failed_cut_leaves_no_partial_clip(scenes_video, tmp_path, monkeypatch):
    detect_scenes(scenes_video, CFG)
    from hydrus_motion.clips import batch

    # simulate an encoder that drops each clip's last frame
    def drop_last(span, ratio, offset=0):
        return f"between(n,{span.start_frame - offset},{span.end_frame - offset - 2})"

    monkeypatch.setattr(batch, "span_expr", drop_last)
    with pytest.raises(BadVideo, match="came out with 69 frames instead of 73"):
        slice_video(scenes_video, CFG, tmp_path)
    assert list(tmp_path.iterdir()) == []


def _gray(path: Path, crop: str = "") -> np.ndarray:
    """Frame 0 of `path` as displayed (rotation applied), optionally cropped, at 32x32."""
    import subprocess

    chain = (f"{crop}," if crop else "") + "scale=32:32:flags=area"
    raw = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i",
                          f"file:{path}", "-frames:v", "1", "-vf", chain, "-pix_fmt", "gray",
                          "-f", "rawvideo", "pipe:1"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(32, 32).astype(np.int16)


def test_crop_cuts_the_black_bars_away(tmp_path):
    from conftest import ffmpeg

    from hydrus_motion.clips.cut import FfmpegCutter
    from hydrus_motion.probe import probe_video
    from hydrus_motion.records import ClipSpan, CropBox

    video = tmp_path / "bars.mp4"  # 64x36 picture inside 8-pixel black bars top and bottom
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x36:r=24:d=2", "-vf",
           "pad=64:52:0:8:black", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10",
           str(video))
    info = probe_video(video, CFG.tools)
    spans = [ClipSpan(1, 0, 20, 0.0, 20 / 24, crop=CropBox(0, 8, 64, 36)),
             ClipSpan(1, 20, 40, 20 / 24, 40 / 24)]  # different geometry: its own run
    cropped, whole = FfmpegCutter(CFG.encode, CFG.tools).cut(info, spans, tmp_path / "out")
    assert (cropped.width, cropped.height, cropped.frames) == (64, 36, 20)
    assert (whole.width, whole.height, whole.frames) == (64, 52, 20)
    got = _gray(cropped.path)  # the picture inside the bars, and nothing else
    inside, framed = _gray(video, "crop=64:36:0:8"), _gray(video)
    assert np.abs(got - inside).mean() < 4 < np.abs(got - framed).mean()
    assert decode_gray(whole.path, size=(64, 52))[0][:7].max() < 30  # the bars were there


@pytest.mark.skipif(not MEDIA.exists(), reason="shared media not present")
def test_crop_is_in_displayed_pixels_of_a_rotated_source(tmp_path):
    from hydrus_motion.clips.cut import FfmpegCutter
    from hydrus_motion.probe import probe_video
    from hydrus_motion.records import ClipSpan, CropBox

    video = MEDIA / "issue-134-rotate.mp4"  # 1280x544 coded, shown as 544x1280
    info = probe_video(video, CFG.tools)
    span = ClipSpan(1, 0, 10, 0.0, 10 / info.fps, crop=CropBox(0, 0, 544, 640))
    clip, = FfmpegCutter(CFG.encode, CFG.tools).cut(info, [span], tmp_path / "out")
    assert (clip.width, clip.height) == (544, 640)
    top, bottom = _gray(video, "crop=544:640:0:0"), _gray(video, "crop=544:640:0:640")
    got = _gray(clip.path)
    assert np.abs(got - top).mean() < 6 < np.abs(got - bottom).mean()
