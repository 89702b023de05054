"""The captioner through `hydrus-motion tag`: a tiny random Idefics3 (SmolVLM's
architecture) saved as a model repo and loaded by repo id from an offline cache, the
code path a real model id takes."""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import pytest
from conftest import ffmpeg, run_cli

pytest.importorskip("transformers", reason="extra 'caption' not installed")
pytest.importorskip("torch", reason="extra 'caption' not installed")

from tiny_models import build_captioner, fake_hub_cache  # noqa: E402

from hydrus_motion.annotate import annotate_clips  # noqa: E402
from hydrus_motion.annotate.captioner import TransformersCaptioner  # noqa: E402
from hydrus_motion.annotate.sampling import FrameChoice, sample_clip  # noqa: E402
from hydrus_motion.config import config_from_dict  # noqa: E402

REPO = "tiny/idefics3-captioner"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("captioner")
    fake_hub_cache(root / "hub", REPO, build_captioner(root / "model"))
    clips = []
    # the second clip has 2 frames: fewer images, a shorter prompt, padding in a batch
    for i, (source, frames) in enumerate([("testsrc2", 30), ("mandelbrot", 2)]):
        clips.append(root / f"clip{i}.mp4")
        ffmpeg("-f", "lavfi", "-i", f"{source}=size=160x120:rate=10", "-frames:v", str(frames),
               "-pix_fmt", "yuv420p", "-c:v", "libx264", str(clips[-1]))
    return root, clips


def test_a_repo_id_captioner_writes_a_caption_per_clip(hub):
    root, clips = hub
    env = {**os.environ, "HF_HUB_CACHE": str(root / "hub"), "HF_HUB_OFFLINE": "1"}
    config = root / "short.yaml"  # a random model rarely stops by itself: keep it short
    config.write_text("annotate:\n  captioner:\n    max_new_tokens: 8\n    frames: 2\n")
    proc = run_cli("tag", *map(str, clips), "--tagger-model", "none", "--config", str(config),
                   "--captioner-model", REPO, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    for c in doc["clips"]:
        assert c["ok"] and c["tags"] is None
        assert isinstance(c["caption"], str) and c["caption"].strip()


def test_batched_captions_equal_one_at_a_time(hub):
    root, clips = hub
    cfg = config_from_dict({"annotate": {"tagger": {"model": None},
                                         "captioner": {"model": str(root / "model"),
                                                       "batch_size": 2, "frames": 3,
                                                       "max_new_tokens": 8}}})
    batched = [a.caption for a in annotate_clips(clips, cfg)]
    single = TransformersCaptioner(dataclasses.replace(cfg.annotate.captioner, batch_size=1))
    frames = [sample_clip(c, cfg.tools, size=448, tagger=FrameChoice("peak", 1),
                          caption=FrameChoice("uniform", 3)).caption_frames for c in clips]
    assert batched == single.caption(frames)  # left padding keeps batched generation right


@pytest.mark.expect_error_log  # a broken or missing model is an ERROR line, once
def test_a_folder_that_is_not_a_captioner_and_a_missing_extra_are_clear(hub, tmp_path,
                                                                        monkeypatch):
    _, clips = hub
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    cfg = config_from_dict({"annotate": {"tagger": {"model": None},
                                         "captioner": {"model": str(tmp_path)}}})
    (r,) = annotate_clips(clips[:1], cfg)
    assert "transformers cannot load it" in r.errors[0] and r.quality is not None
    monkeypatch.setitem(sys.modules, "transformers", None)
    (r,) = annotate_clips(clips[:1], cfg)
    assert "hydrus-motion[caption]" in r.errors[0]


@pytest.mark.expect_error_log  # a broken or missing model is an ERROR line, once
def test_a_smolvlm2_captioner_without_torchvision_names_what_to_install(hub, tmp_path):
    from hydrus_motion.annotate.captioner import torchvision_problem

    if torchvision_problem() is None:
        pytest.skip("torchvision loads here; the message is for installs where it does not")
    (tmp_path / "config.json").write_text('{"model_type": "smolvlm"}')  # SmolVLM2's type
    _, clips = hub
    cfg = config_from_dict({"annotate": {"tagger": {"model": None},
                                         "captioner": {"model": str(tmp_path)}}})
    (r,) = annotate_clips(clips[:1], cfg)
    assert "needs torchvision for its processor" in r.errors[0]
    assert "pip install torchvision (the build made for torch" in r.errors[0]
