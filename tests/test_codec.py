"""encode.codec: x264 | nvenc, in both cutters, and the check before a cut."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import pytest

from hydrus_motion.clips import codec
from hydrus_motion.clips.batch import Batch, CutPlan, batch_argv
from hydrus_motion.clips.codec import check_codec, codec_argv
from hydrus_motion.config import EncodeConfig, ToolsConfig, config_from_dict
from hydrus_motion.errors import ConfigError, ToolMissing
from hydrus_motion.records import ClipSpan, VideoInfo


def test_codec_is_validated():
    assert config_from_dict({}).encode.codec == "x264"
    assert config_from_dict({"encode": {"codec": "nvenc"}}).encode.codec == "nvenc"
    with pytest.raises(ConfigError, match="encode.codec"):
        config_from_dict({"encode": {"codec": "hevc"}})
    with pytest.raises(ConfigError, match="encode.tune"):
        config_from_dict({"encode": {"codec": "nvenc", "tune": "film"}})


def test_both_cutters_use_the_configured_encoder(tmp_path):
    x264 = EncodeConfig(crf=20, preset="veryfast", tune="film")
    nvenc = EncodeConfig(codec="nvenc", crf=0, preset="veryfast")
    assert codec_argv(x264) == ["-c:v", "libx264", "-crf", "20", "-preset", "veryfast",
                                "-tune", "film"]
    assert codec_argv(nvenc) == ["-c:v", "h264_nvenc", "-preset", "p2", "-rc", "vbr",
                                 "-cq", "1", "-b:v", "0"]
    info = VideoInfo(tmp_path / "v.mp4", "h264", 64, 48, Fraction(30), 4.0, 120, 0, Fraction(1))
    batch = Batch((ClipSpan(1, 0, 40, 0.0, 4 / 3),), None)
    argv = batch_argv("ffmpeg", CutPlan(info, nvenc, None, Fraction(30)), batch, None, False,
                      tmp_path)
    assert argv[argv.index("-c:v") + 1] == "h264_nvenc" and "-crf" not in argv
    assert "-force_key_frames" in argv  # clip starts stay key frames


def fake_ffmpeg(tmp_path: Path, encoders: str, encode_fails: bool) -> str:
    script = tmp_path / "ffmpeg"
    script.write_text("#!/bin/sh\n"
                      f"case \"$*\" in *-encoders*) printf '{encoders}\\n'; exit 0;; esac\n"
                      + ("echo 'Cannot load libcuda.so.1' >&2; exit 1\n" if encode_fails
                         else "exit 0\n"))
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize("encoders,fails,message", [
    (" V....D libx264  libx264 H.264", False, "has no h264_nvenc encoder"),
    (" V....D h264_nvenc  NVIDIA NVENC H.264 encoder", True, "cannot encode here.*libcuda"),
])
def test_nvenc_where_it_cannot_run_is_a_clear_error(tmp_path, encoders, fails, message):
    codec._check_nvenc.cache_clear()
    tools = dataclasses.replace(ToolsConfig(), ffmpeg=fake_ffmpeg(tmp_path, encoders, fails))
    with pytest.raises(ToolMissing, match=message) as caught:
        check_codec(EncodeConfig(codec="nvenc"), tools)
    assert "encode.codec: x264" in caught.value.hint
    check_codec(EncodeConfig(), tools)  # x264 needs no check


def test_nvenc_that_works_passes(tmp_path):
    codec._check_nvenc.cache_clear()
    tools = dataclasses.replace(ToolsConfig(), ffmpeg=fake_ffmpeg(
        tmp_path, " V....D h264_nvenc  NVIDIA NVENC H.264 encoder", False))
    check_codec(EncodeConfig(codec="nvenc"), tools)


def test_default_codec_keeps_the_keys_of_clips_cut_before(tmp_path):
    """Clips cut before encode.codec existed stay finished (no re-cut after an upgrade)."""
    import hashlib
    import json

    from hydrus_motion.clips.done import clip_key

    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    info = VideoInfo(video, "h264", 64, 48, Fraction(30), 4.0, 120, 0, Fraction(1))
    span = ClipSpan(1, 0, 40, 0.0, 4 / 3)
    enc = EncodeConfig()
    old = {k: v for k, v in dataclasses.asdict(enc).items()
           if k not in ("clips_per_run", "keep_free_mb", "codec")}
    stat = video.stat()
    text = json.dumps([stat.st_size, stat.st_mtime_ns, 1, 0, 40, None, old], sort_keys=True)
    assert clip_key(info, enc, span) == hashlib.sha256(text.encode()).hexdigest()[:32]
    assert clip_key(info, dataclasses.replace(enc, codec="nvenc"), span) != \
        clip_key(info, enc, span)


def test_doctor_checks_the_configured_encoder(tmp_path):
    from hydrus_motion.doctor import _encoder

    codec._check_nvenc.cache_clear()
    tools = dataclasses.replace(ToolsConfig(), ffmpeg=fake_ffmpeg(
        tmp_path, " V....D libx264  libx264 H.264", False))
    cfg = config_from_dict({"encode": {"codec": "nvenc"}})
    check = _encoder(dataclasses.replace(cfg, tools=tools))
    assert (check.name, check.ok) == ("h264_nvenc", False)
    assert "has no h264_nvenc" in check.detail and "encode.codec: x264" in check.detail
    assert _encoder(dataclasses.replace(config_from_dict({}), tools=tools)).ok
