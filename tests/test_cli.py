"""The CLI as a user runs it: JSON shapes, exit codes, and bad input."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ALL_KEY, KNOWN_CUTS, ffmpeg, make_scenes_video, run_cli, start_fake_hydrus

from hydrus_motion.clips.done import RECORD_NAME


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("cfg") / "fast.yaml"
    path.write_text("encode:\n  preset: veryfast\n")
    return str(path)


def test_scenes_and_slice_json_contract(scenes_video, tmp_path, fast_config):
    video = tmp_path / "my clip.mp4"
    shutil.copy(scenes_video, video)
    done = run_cli("scenes", str(video), "--json", "--config", fast_config)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert set(doc) == {"video", "fps", "frames", "scenes"}
    assert doc["fps"] == 30.0 and doc["frames"] == 315
    assert [s["start_frame"] for s in doc["scenes"]] == [0, *KNOWN_CUTS]
    assert doc["scenes"][1] == {"index": 2, "start_frame": 80, "end_frame": 170,
                                "start": pytest.approx(80 / 30), "end": pytest.approx(170 / 30)}
    assert (tmp_path / "my clip.mp4.scenes.txt").exists()

    done = run_cli("slice", str(video), "--out", str(tmp_path / "out"), "--json",
                   "--config", fast_config)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    clips = doc["clips"]
    assert len(clips) == 4
    # the DESIGN.md contract, plus the fields issue 14 added (never fewer)
    assert set(clips[0]) == {"path", "scene", "start_frame", "end_frame", "frames", "fps",
                             "width", "height", "crop", "deinterlace"}
    assert clips[0]["crop"] is None and clips[0]["deinterlace"] is None
    assert all(Path(c["path"]).exists() for c in clips)
    assert set(doc) == {"clips", "scene_count", "dropped_scenes", "dropped_summary"}
    assert (doc["scene_count"], doc["dropped_scenes"], doc["dropped_summary"]) == (4, [], None)


def test_config_from_environment_and_errors_exit_2(scenes_video, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("clips:\n  min_frame: 3\nencode:\n  crf: -1\n")
    env = {**os.environ, "HYDRUS_MOTION_CONFIG": str(bad)}
    done = run_cli("scenes", str(scenes_video), env=env)
    assert done.returncode == 2
    assert "clips.min_frame: unknown key" in done.stderr
    assert "encode.crf: -1 is out of range" in done.stderr
    assert run_cli("slice", str(scenes_video)).returncode == 2  # --out missing


def test_doctor_reports_tools(tmp_path):
    hydrus = start_fake_hydrus()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"hydrus:\n  api_url: {hydrus.url}\n  access_key: {ALL_KEY}\n"
                   "annotate:\n  enabled: false\n")  # the models: test_doctor_models.py
    done = run_cli("doctor", "--json", "--config", str(cfg))
    assert done.returncode == 0, done.stdout
    names = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert names["ffmpeg"]["ok"] and "ffmpeg version" in names["ffmpeg"]["detail"]
    assert names["libx264"]["ok"] and names["scenedetect"]["ok"] and names["hydrus key"]["ok"]
    cfg.write_text(cfg.read_text() + "tools:\n  ffmpeg: /nowhere/ffmpeg\n")
    done = run_cli("doctor", "--config", str(cfg))
    hydrus.stop()
    assert done.returncode == 1 and "[FAIL] ffmpeg" in done.stdout


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Each broken input once per module, with the reason the CLI must give."""
    tmp = tmp_path_factory.mktemp("bad")
    empty = tmp / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    audio = tmp / "audio.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(audio))
    one = tmp / "one.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-frames:v", "1", str(one))
    whole = make_scenes_video(tmp / "whole.mp4", [("testsrc2", 60), ("smptehdbars", 60)])
    cut_moov = tmp / "truncated.mp4"  # moov at the end: the index is lost
    cut_moov.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    faststart = make_scenes_video(tmp / "fs.mp4", [("testsrc2", 60), ("smptehdbars", 60)],
                                  extra=("-movflags", "+faststart"))
    cut_data = tmp / "truncated-data.mp4"  # index intact, half the frames missing
    cut_data.write_bytes(faststart.read_bytes()[: faststart.stat().st_size // 2])
    return {
        "empty": (empty, "the file is empty (0 bytes)"),
        "text": (text, "not a video file ffmpeg can read"),
        "audio": (audio, "has no video stream (streams found: audio)"),
        "one frame": (one, "has 1 decodable frame(s)"),
        "truncated": (cut_moov, "truncated"),
        "truncated data": (cut_data, "frames could be decoded; the file looks truncated"),
        "missing": (tmp / "nope.mp4", "file not found"),
    }


@pytest.mark.parametrize("case", ["empty", "text", "audio", "one frame", "truncated",
                                  "truncated data", "missing"])
def test_bad_input_gets_clear_error_naming_the_file(bad_inputs, case):
    path, reason = bad_inputs[case]
    done = run_cli("scenes", str(path), "--json")
    assert done.returncode == 1
    failed = json.loads(done.stdout)  # --json: a JSON document on failure too
    assert failed["ok"] is False and failed["error"].startswith(f"{path}: ")
    assert f"error: {path}: " in done.stderr and reason in done.stderr
    assert "Traceback" not in done.stderr
    assert not path.with_name(path.name + ".scenes.txt").exists()


@pytest.mark.parametrize("name", ["with space.mp4", "quote'\"s.mp4", "ünïcødé 動画.mp4",
                                  "-leading-dash.mp4", "colon:name.mp4", "100%.mp4"])
def test_awkward_file_names(scenes_video, tmp_path, name, fast_config):
    video = tmp_path / name
    shutil.copy(scenes_video, video)
    out = tmp_path / "out %d"
    assert run_cli("scenes", "--config", fast_config, "--", str(video)).returncode == 0
    done = run_cli("slice", "--config", fast_config, "--out", str(out), "--json", "--",
                   str(video))
    assert done.returncode == 0, done.stderr
    clips = json.loads(done.stdout)["clips"]
    assert len(clips) == 4
    assert all(Path(c["path"]).name.startswith(Path(name).stem) for c in clips)
    assert sorted(p.name for p in out.iterdir()) == sorted(  # + the cut's record (resume)
        [RECORD_NAME] + [Path(c["path"]).name for c in clips])


def test_slice_without_sidecar_says_what_to_do(scenes_video, tmp_path):
    video = tmp_path / "v.mp4"
    shutil.copy(scenes_video, video)
    done = run_cli("slice", str(video), "--out", str(tmp_path / "o"))
    assert done.returncode == 1
    assert "sidecar not found" in done.stderr and "hydrus-motion scenes VIDEO" in done.stderr


def test_json_into_a_closed_pipe_is_not_a_crash(scenes_video, tmp_path):
    """`hydrus-motion scenes --json V | head -0`: the reader is gone before we write."""
    video = tmp_path / "v.mp4"
    shutil.copy(scenes_video, video)
    proc = subprocess.Popen([sys.executable, "-m", "hydrus_motion", "scenes", "--json",
                             str(video)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    proc.stdout.close()  # detection takes over a second, so our write always meets EPIPE
    stderr = proc.stderr.read()
    assert proc.wait(timeout=300) == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_help_works_without_heavy_imports():
    done = run_cli("--help")
    assert done.returncode == 0 and "scenes" in done.stdout and "slice" in done.stdout


def test_a_reader_that_leaves_early_gets_no_error(tmp_path):
    """`hydrus-motion config show | head -1`: no "error: BrokenPipeError" on stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "hydrus_motion", "config", "show"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                            env={**os.environ, "HYDRUS_MOTION_CONFIG": ""})
    proc.stdout.close()  # gone before the first line, as head is after its own
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141) and "error" not in err, err
