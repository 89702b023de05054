"""Clip rules on real footage (issue 14): short shots kept, drops reported, bars cut.

The footage is PySceneDetect's test media (skipped when absent). The montage is made
of five real shots of 1.1 to 2 s joined by hard cuts, the pace the issue reported
losing entirely under the old rules (61 frames after a 2-frame trim at each cut).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import MEDIA, count_frames, ffmpeg, run_cli

from hydrus_motion.config import Config, EncodeConfig
from hydrus_motion.pipeline import detect_scenes, slice_planned

CFG = Config(encode=EncodeConfig(preset="ultrafast"))
TESTVIDEO = MEDIA / "testvideo.mp4"
needs_media = pytest.mark.skipif(not TESTVIDEO.exists(), reason="shared media not present")

# (first, end) source frames of testvideo.mp4, from its scenes 2, 3, 4, 2 and 3
SHOTS = [(40, 76), (200, 245), (400, 460), (100, 133), (250, 290)]


def montage(path: Path, shots=SHOTS, vf: str = "scale=320:180") -> Path:
    split = f"[0:v]{vf},split={len(shots)}" + "".join(f"[in{i}]" for i in range(len(shots)))
    parts = [f"[in{i}]trim=start_frame={a}:end_frame={b},setpts=PTS-STARTPTS[s{i}]"
             for i, (a, b) in enumerate(shots)]
    joined = "".join(f"[s{i}]" for i in range(len(shots))) + \
        f"concat=n={len(shots)}:v=1[out]"
    ffmpeg("-i", str(TESTVIDEO), "-filter_complex", ";".join([split, *parts, joined]),
           "-map", "[out]", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", str(path))
    return path


@needs_media
def test_short_real_shots_are_kept(tmp_path):
    video = montage(tmp_path / "montage.mp4")
    scenes = detect_scenes(video, CFG)
    assert [(s.start_frame, s.end_frame) for s in scenes.scenes] == [
        (0, 36), (36, 81), (81, 141), (141, 174), (174, 214)]
    result = slice_planned(video, CFG, tmp_path / "out")
    assert result.plan.dropped == ()
    # every shot is kept; the 33-frame one can spare 2 frames, so it is trimmed 1 + 1
    assert [(c.scene, c.start_frame, c.end_frame) for c in result.clips] == [
        (1, 0, 34), (2, 38, 79), (3, 83, 139), (4, 142, 173), (5, 176, 214)]
    for clip in result.clips:  # (frame exactness by pixels: test_slice, on moving media)
        assert count_frames(clip.path) == clip.frames == clip.end_frame - clip.start_frame


@needs_media
def test_letterboxed_real_footage_is_cropped_in_every_scene(tmp_path):
    # 2.39:1 inside 16:9: the picture is rows 46-314 of 640x360
    video = montage(tmp_path / "letterboxed.mp4", SHOTS[:3],
                    vf="scale=640:268,pad=640:360:0:46:black,setsar=1")
    scenes = detect_scenes(video, CFG)
    assert len(scenes.scenes) == 3
    for scene in scenes.scenes:
        c = scene.crop
        assert c is not None and (c.x, c.width) == (0, 640), scene
        assert 46 <= c.y <= 50 and 310 <= c.y + c.height <= 314, scene


@needs_media
def test_drops_are_reported_in_text_and_json(tmp_path):
    video = tmp_path / "counter.mp4"  # 10 fps, 30 frames: shots of 10, 10 and 10 frames
    video.symlink_to(MEDIA / "counter.mp4")
    config = tmp_path / "c.yaml"
    config.write_text(f"paths:\n  state_dir: {tmp_path / 'state'}\nannotate:\n"
                      "  enabled: false\nencode:\n  preset: ultrafast\n")
    assert run_cli("scenes", str(video), "--config", str(config)).returncode == 0
    done = run_cli("slice", str(video), "--out", str(tmp_path / "out"), "--json",
                   "--config", str(config))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    summary = "3 of 3 scenes shorter than clips.min_frames (31)"
    assert doc["clips"] == [] and doc["scene_count"] == 3
    assert doc["dropped_summary"] == summary
    assert doc["dropped_scenes"][0] == {"scene": 1, "start_frame": 0, "end_frame": 10,
                                        "frames": 10, "reason": "too_short",
                                        "detail": "shorter than clips.min_frames"}
    assert f"no clip: {summary}" in done.stderr
    done = run_cli("ingest", str(video), "--no-push", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert f"{video}: 0 clip(s); dropped: {summary}" in done.stdout
    assert "3 scenes dropped" in done.stderr
    done = run_cli("ingest", str(video), "--no-push", "--json", "--config", str(config))
    doc = json.loads(done.stdout)
    (entry,) = doc["videos"]
    assert entry["dropped_summary"] == summary and len(entry["dropped_scenes"]) == 3
    assert doc["summary"]["dropped_scenes"] == 3
