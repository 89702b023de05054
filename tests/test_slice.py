import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import MEDIA, count_frames, decode_gray

from hydrus_motion.config import ClipsConfig, Config, EncodeConfig
from hydrus_motion.errors import BadVideo
from hydrus_motion.pipeline import detect_scenes, slice_video

CFG = Config(encode=EncodeConfig(preset="veryfast"))


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


def test_clips_match_plan_frame_for_frame(scenes_video, tmp_path):
    detect_scenes(scenes_video, CFG)
    clips = slice_video(scenes_video, CFG, tmp_path)
    assert [(c.start_frame, c.end_frame) for c in clips] == [
        (0, 78), (82, 168), (172, 238), (242, 315)]
    source = decode_gray(scenes_video)
    for clip in clips:
        assert count_frames(clip.path) == clip.frames == clip.end_frame - clip.start_frame
        assert_frame_exact(source, clip.path, clip.start_frame, clip.end_frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(c.path.name for c in clips)


def test_vfr_clips_are_cut_by_frame_index(vfr_video, tmp_path):
    cfg = dataclasses.replace(CFG, clips=ClipsConfig(min_frames=20, max_frames=60))
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


def test_constant_fps_resampling_is_exact(scenes_video, tmp_path):
    cfg = dataclasses.replace(CFG, encode=dataclasses.replace(CFG.encode, fps=15),
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
@pytest.mark.parametrize("name,size", [("issue-134-rotate.mp4", (544, 1280)),
                                       ("issue-195-aspect-ratio.mp4", (1024, 576))])
def test_rotated_and_non_square_sources(tmp_path, name, size):
    video = tmp_path / name
    os.symlink(MEDIA / name, video)
    detect_scenes(video, CFG)
    clips = slice_video(video, CFG, tmp_path / "out")
    assert clips
    for clip in clips:
        # the rotated clip has real black bars in one scene: that one keeps the picture
        assert (clip.width, clip.height) == \
            ((clip.crop.width, clip.crop.height) if clip.crop else size)
        assert count_frames(clip.path) == clip.frames


def test_failed_cut_leaves_no_partial_clip(scenes_video, tmp_path, monkeypatch):
    detect_scenes(scenes_video, CFG)
    from hydrus_motion.clips import cut

    # simulate an encoder that drops each clip's last frame
    drop_last = lambda span, ratio: f"between(n,{span.start_frame},{span.end_frame - 2})"  # noqa: E731
    monkeypatch.setattr(cut, "_span_expr", drop_last)
    with pytest.raises(BadVideo, match="came out with 69 frames instead of 73"):
        slice_video(scenes_video, CFG, tmp_path)
    assert list(tmp_path.iterdir()) == []
