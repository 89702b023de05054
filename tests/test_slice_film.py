"""Cutting at film scale: 1,000+ clips in batches, resumed after a kill, local failures.

The source's frames carry their own index: 16 blocks of 16x9 pixels, each black or white
for one bit of the frame number, so any decoded frame says which source frame it is.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import ffmpeg

from hydrus_motion.clips import cut as cut_module
from hydrus_motion.clips.done import RECORD_NAME
from hydrus_motion.config import ClipsConfig, Config, EncodeConfig, ToolsConfig, load_config
from hydrus_motion.errors import BadVideo, LocalFailure
from hydrus_motion.pipeline import slice_video
from hydrus_motion.records import Scene, SceneList
from hydrus_motion.scenes.sidecar import default_sidecar_path, write_sidecar

W, H, FPS = 64, 36, 24
SCENE = 12  # frames per scene; a 1-frame trim at each cut leaves 10-frame clips
CFG = Config(clips=ClipsConfig(min_frames=2, max_frames=240, trim_frames=1),
             encode=EncodeConfig(preset="ultrafast", crf=12))


def make_counter_video(path: Path, frames: int) -> Path:
    bits = "255*mod(floor(N/pow(2\\,floor(X/16)+4*floor(Y/9)))\\,2)"
    ffmpeg("-f", "lavfi", "-i", f"nullsrc=s={W}x{H}:r={FPS}:d={frames / FPS}",
           "-vf", f"geq=lum='{bits}':cb=128:cr=128", "-c:v", "libx264", "-preset", "ultrafast",
           "-crf", "10", "-g", "48", str(path))
    return path


def write_scenes(video: Path, frames: int, scene_frames: int = SCENE) -> None:
    fps = Fraction(FPS)
    bounds = list(range(0, frames, scene_frames)) + [frames]
    scenes = tuple(Scene(i + 1, a, b, float(a / fps), float(b / fps))
                   for i, (a, b) in enumerate(zip(bounds, bounds[1:])))
    write_sidecar(SceneList(video, fps, frames, scenes, "test"), default_sidecar_path(video))


def film_part(long_video: Path, video: Path, scenes: int) -> Path:
    """`video`, a link to the long film, with a sidecar of its first `scenes` scenes (the
    others deleted as by hand: header kept, scene lines dropped)."""
    os.symlink(long_video, video)
    write_scenes(video, 1001 * SCENE, SCENE)
    sidecar = default_sidecar_path(video)
    lines = sidecar.read_text().splitlines()
    header = [line for line in lines if line.startswith("#")]
    sidecar.write_text("\n".join(header + [line for line in lines
                                           if not line.startswith("#")][:scenes]) + "\n")
    return video


def decode(paths: list[Path], tmp_path: Path) -> np.ndarray:
    """Gray frames of all `paths` back to back, decoded in one ffmpeg run (concat)."""
    listing = tmp_path / "concat.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in paths))
    raw = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f",
                          "concat", "-safe", "0", "-i", str(listing), "-fps_mode", "passthrough",
                          "-pix_fmt", "gray", "-f", "rawvideo", "pipe:1"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, H, W).astype(np.int16)


def frame_numbers(frames: np.ndarray) -> np.ndarray:
    blocks = frames.reshape(-1, 4, 9, 4, 16).mean(axis=(2, 4)).reshape(-1, 16) > 128
    return (blocks * (1 << np.arange(16))).sum(axis=1)


@pytest.fixture(scope="session")
def long_video(media_dir) -> Path:
    """12,012 frames (8 min 20 s at 24 fps), 1,001 scenes of 12 frames, key frame every 48."""
    video = make_counter_video(media_dir / "long.mp4", 1001 * SCENE)
    write_scenes(video, 1001 * SCENE)
    return video


def test_a_thousand_clips_are_each_frame_exact(long_video, tmp_path):
    progress: list[tuple[int, int]] = []
    clips = slice_video(long_video, CFG, tmp_path / "out",
                        progress=lambda done, total: progress.append((done, total)))
    assert len(clips) == 1001
    assert [(c.start_frame, c.end_frame) for c in clips[:2]] == [(0, 11), (13, 23)]
    assert progress[0] == (0, 1001) and progress[-1] == (1001, 1001)
    assert len(progress) == 1 + -(-1001 // CFG.encode.clips_per_run)  # one call per batch
    assert all(a[0] < b[0] for a, b in zip(progress, progress[1:]))
    decoded = decode([c.path for c in clips], tmp_path)
    expected = np.concatenate([np.arange(c.start_frame, c.end_frame) for c in clips])
    assert len(decoded) == len(expected)  # every clip has exactly its frame count ...
    assert (frame_numbers(decoded) == expected).all()  # ... and exactly its frames
    source = decode([long_video], tmp_path)
    ends = np.cumsum([c.frames for c in clips])
    for clip, end in zip(clips, ends):  # first and last frames match the source's pixels
        for got, want in ((end - clip.frames, clip.start_frame), (end - 1, clip.end_frame - 1)):
            assert np.abs(decoded[got] - source[want]).mean() < 3, (clip.path.name, want)
    assert all(c.frames == 10 or c.frames == 11 for c in clips)


def test_kill_mid_film_keeps_verified_clips_and_resumes(long_video, tmp_path, monkeypatch):
    video = film_part(long_video, tmp_path / "part.mp4", 60)
    config = tmp_path / "cfg.yaml"
    config.write_text("clips: {min_frames: 2, trim_frames: 1}\n"
                      "encode: {preset: ultrafast, crf: 12, clips_per_run: 10}\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "hydrus_motion", "slice", str(video),
                             "--out", str(out), "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("*.mp4"))) < 20:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*.mp4")}
    assert 20 <= len(before) < 60, "the kill came too late to test a resume"
    scratch = list(out.glob(".hydrus-motion-*.tmp"))  # the killed run's (the daemon clears it)

    runs: list[list[str]] = []
    real_run_tool = cut_module.run_tool

    def counting_run_tool(argv, **kwargs):
        runs.append(list(argv))
        return real_run_tool(argv, **kwargs)

    monkeypatch.setattr(cut_module, "run_tool", counting_run_tool)
    clips = slice_video(video, load_config(config), out)
    assert len(clips) == 60
    after = {c.path.name: (c.path.stat().st_ino, c.path.stat().st_mtime_ns) for c in clips}
    assert {name: after[name] for name in before} == before  # not one finished clip redone
    assert len(runs) == -(-(60 - len(before)) // 10)  # only the batches still to do
    decoded = decode([c.path for c in clips], tmp_path)
    expected = np.concatenate([np.arange(c.start_frame, c.end_frame) for c in clips])
    assert (frame_numbers(decoded) == expected).all()
    assert list(out.glob(".hydrus-motion-*.tmp")) == scratch  # none left by this run
    runs.clear()
    assert slice_video(video, load_config(config), out) == clips  # all finished: no run
    assert runs == []


def test_changed_settings_or_damaged_clip_is_cut_again(long_video, tmp_path):
    video = film_part(long_video, tmp_path / "short.mp4", 3)
    out = tmp_path / "out"
    first = slice_video(video, CFG, out)
    stamps = [(c.path.stat().st_ino, c.path.stat().st_mtime_ns) for c in first]
    with open(first[1].path, "r+b") as fh:  # damaged after it was verified
        fh.truncate(100)
    again = slice_video(video, CFG, out)
    now = [(c.path.stat().st_ino, c.path.stat().st_mtime_ns) for c in again]
    assert (now[0], now[2]) == (stamps[0], stamps[2]) and now[1] != stamps[1]
    assert again[1].path.stat().st_size > 100 and again[1].frames == 10
    other = dataclasses.replace(CFG, encode=dataclasses.replace(CFG.encode, crf=30))
    third = slice_video(video, other, out)  # other settings: every clip is cut again
    assert all((c.path.stat().st_ino, c.path.stat().st_mtime_ns) != n
               for c, n in zip(third, now))


def fake_ffmpeg(tmp_path: Path, message: str, code: int = 1) -> str:
    script = tmp_path / "ffmpeg"
    script.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit {code}\n")
    script.chmod(0o755)
    return str(script)


def test_a_full_disk_is_a_local_failure_not_a_bad_video(long_video, tmp_path):
    message = "[segment @ 0x5581] av_interleaved_write_frame(): No space left on device"
    cfg = dataclasses.replace(  # no bar or idet sampling: the cut itself meets the full disk
        CFG, tools=ToolsConfig(ffmpeg=fake_ffmpeg(tmp_path, message)),
        clips=dataclasses.replace(CFG.clips, crop="off"),
        encode=dataclasses.replace(CFG.encode, deinterlace="off"))
    with pytest.raises(LocalFailure, match="cutting failed: no space left on device"):
        slice_video(long_video, cfg, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_not_enough_free_space_is_refused_before_cutting(long_video, tmp_path):
    cfg = dataclasses.replace(CFG, encode=dataclasses.replace(CFG.encode,
                                                              keep_free_mb=10**9))
    with pytest.raises(LocalFailure, match=r"not enough free space .* needs ~0\.\d+ GB"):
        slice_video(long_video, cfg, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_filling_up_mid_film_keeps_finished_clips(long_video, small_disk, tmp_path):
    video = film_part(long_video, tmp_path / "disk.mp4", 40)
    cfg = dataclasses.replace(CFG, encode=dataclasses.replace(CFG.encode, clips_per_run=10,
                                                              keep_free_mb=0))
    out, filler = small_disk / "out", small_disk / "filler"

    def fill_after_first_batch(done: int, total: int) -> None:
        if done and not filler.exists():
            free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
            filler.write_bytes(b"\0" * (free - 4096))

    with pytest.raises(LocalFailure, match="no space left on device") as failure:
        slice_video(video, cfg, out, progress=fill_after_first_batch)
    assert not isinstance(failure.value, BadVideo)
    kept = {p.name: p.stat().st_ino for p in out.glob("*.mp4")}
    assert len(kept) == 10 and not list(out.glob(".hydrus-motion-*.tmp"))
    filler.unlink()  # space returns: the rest is cut, the first ten are not redone
    clips = slice_video(video, cfg, out)
    assert len(clips) == 40 and (out / RECORD_NAME).read_text().count(".mp4") == 40
    assert {c.path.name: c.path.stat().st_ino for c in clips if c.path.name in kept} == kept


def test_probe_and_detection_tell_machine_failures_apart_too(long_video, tmp_path):
    from hydrus_motion.frames import decode_frames
    from hydrus_motion.probe import probe_video

    hungry = ToolsConfig(ffprobe=fake_ffmpeg(tmp_path, "Cannot allocate memory"))
    with pytest.raises(LocalFailure, match="probing failed: out of memory"):
        probe_video(long_video, hungry)
    info = probe_video(long_video, ToolsConfig())
    script = tmp_path / "killed-ffmpeg"
    script.write_text("#!/bin/sh\nkill -9 $$\n")  # as the kernel's OOM killer would
    script.chmod(0o755)
    killed = ToolsConfig(ffmpeg=str(script))
    with pytest.raises(LocalFailure, match="killed by SIGKILL"):
        list(decode_frames(info, killed, long_side=64))


def clip_start_times(path: Path) -> list[float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=start_time",
                          "-of", "csv=p=0", str(path)], check=True, capture_output=True,
                         text=True).stdout.split()
    return [float(x) for x in out]


def test_every_clip_starts_at_zero_after_a_seek_too(long_video, tmp_path):
    video = film_part(long_video, tmp_path / "short.mp4", 9)
    cfg = dataclasses.replace(CFG, encode=dataclasses.replace(CFG.encode, clips_per_run=3))
    clips = slice_video(video, cfg, tmp_path / "out")
    assert len(clips) == 9
    for clip in clips:  # the first clip of a batch that seeks kept the source's clock
        assert all(abs(t) < 0.03 for t in clip_start_times(clip.path)), clip.path.name


def test_kept_audio_is_each_clips_own_in_every_batch(tmp_path):
    """keep_audio: a tone whose pitch names the scene (300 Hz + 200 Hz per scene), cut in
    batches of 3 clips (each seeking): every clip carries its own scene's pitch, as long
    as its picture."""
    frames, scenes = 240, 20
    video = tmp_path / "tones.mp4"
    bits = "255*mod(floor(N/pow(2\\,floor(X/16)+4*floor(Y/9)))\\,2)"
    ffmpeg("-f", "lavfi", "-i", f"nullsrc=s={W}x{H}:r={FPS}:d={frames / FPS}",
           "-f", "lavfi", "-i", f"aevalsrc='0.5*sin(2*PI*t*(300+200*floor(t*{FPS}/{SCENE})))'"
           f":s=48000:d={frames / FPS}", "-vf", f"geq=lum='{bits}':cb=128:cr=128",
           "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", "-g", "48",
           "-c:a", "aac", "-b:a", "192k", "-shortest", str(video))
    write_scenes(video, frames)
    cfg = dataclasses.replace(CFG, encode=dataclasses.replace(
        CFG.encode, keep_audio=True, clips_per_run=3))
    runs: list[list[str]] = []
    real_run_tool = cut_module.run_tool

    def recording_run_tool(argv, **kwargs):
        runs.append(list(argv))
        return real_run_tool(argv, **kwargs)

    cut_module.run_tool = recording_run_tool
    try:
        clips = slice_video(video, cfg, tmp_path / "out")
    finally:
        cut_module.run_tool = real_run_tool
    assert len(clips) == scenes
    for clip in clips:  # picture and sound start together, at 0, after a seek too
        assert all(abs(t) < 0.03 for t in clip_start_times(clip.path)), clip.path.name
        pcm = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(clip.path),
                              "-vn", "-ac", "1", "-ar", "48000", "-f", "s16le", "pipe:1"],
                             check=True, capture_output=True).stdout
        sound = np.frombuffer(pcm, np.int16).astype(np.float64)
        seconds = (clip.end_frame - clip.start_frame) / FPS
        assert abs(len(sound) / 48000 - seconds) < 0.05, clip.path.name
        middle = sound[len(sound) // 4: 3 * len(sound) // 4]  # away from the AAC edges
        spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
        pitch = np.argmax(spectrum) * 48000 / len(middle)
        assert abs(pitch - (300 + 200 * (clip.start_frame // SCENE))) < 40, clip.path.name
    batches = [argv for argv in runs if "segment" in " ".join(argv)]
    assert len(batches) == -(-scenes // 3) and all("-an" in argv for argv in batches)
