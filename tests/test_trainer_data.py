"""Dataset folder reading, frame sampling and decoding, bad-clip handling, buckets, config."""

from __future__ import annotations

import logging
import shutil

import pytest

pytest.importorskip("torch")
if not shutil.which("ffmpeg"):
    pytest.skip("ffmpeg is not installed", allow_module_level=True)

from trainer_tiny import make_clip, make_dataset  # noqa: E402

from trainer.config import RunConfigError, run_config_from_dict  # noqa: E402
from trainer.data import (  # noqa: E402
    BucketBatches,
    ClipDataset,
    DatasetError,
    bucket_size,
    dataset_id,
    load_clips,
)
from trainer.video import BadClip, read_frames, sample_indices, window_starts  # noqa: E402


def test_sample_indices_follow_the_official_sampler():
    assert sample_indices(100, 16, 4, 0) == list(range(0, 61, 4))
    assert sample_indices(100, 16, 4, 90) == list(range(39, 100, 4))  # start clamped
    short = sample_indices(31, 16, 4, 5)  # shorter than 61: the stride shrinks
    assert short[0] == 0 and short[-1] == 30 and len(short) == 16
    tiny = sample_indices(8, 16, 4, 0)  # fewer than 16 frames: frames repeat
    assert len(tiny) == 16 and set(tiny) == set(range(8))
    assert window_starts(100, 16, 4, 4) == [0, 13, 26, 39]
    assert window_starts(40, 16, 4, 4) == [0]


def test_read_frames_returns_the_asked_frames_cropped(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", 20, size="96x64")
    frames = read_frames(clip, [2, 10, 2, 15], 64, 64)
    assert frames.shape == (4, 64, 64, 3)
    means = frames.reshape(4, -1).mean(1)
    assert means[0] == means[2]  # a repeated index is the same frame
    assert means[0] < means[1] < means[3]  # brightness rises with the frame number
    wide = read_frames(clip, [0], 128, 64)  # bucket shape: width 128 covers, then crops
    assert wide.shape == (1, 64, 128, 3)


def test_read_frames_names_the_file_when_frames_are_missing(tmp_path):
    clip = make_clip(tmp_path / "short.mp4", 5)
    with pytest.raises(BadClip, match="short.mp4.*decoded"):
        read_frames(clip, [0, 40], 64, 64)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(BadClip, match="bad.mp4.*ffmpeg failed"):
        read_frames(bad, [0], 64, 64)


def test_dataset_folder_problems_are_reported_and_skipped(tmp_path, caplog):
    folder = make_dataset(tmp_path / "ds", [(20, "one", ["a"]), (20, "two", ["b"]),
                                            (20, "three", ["c"])])
    videos = sorted((folder / "videos").iterdir())
    videos[0].unlink()  # listed but missing
    videos[1].write_bytes(b"garbage")  # present but unreadable
    with (folder / "manifest.jsonl").open("a") as fh:
        fh.write("{not json\n")
    clips, problems = load_clips(folder)
    assert len(clips) == 2
    assert any("missing" in p and videos[0].name in p for p in problems)
    assert any("manifest.jsonl:4" in p for p in problems)
    ds = ClipDataset(clips, 4, 2, 64, True, 0.0, False, False, seed=1)
    caplog.set_level(logging.WARNING, "trainer")
    samples = [ds[i % 2] for i in range(6)]
    assert all(s["videoid"] != videos[1].stem for s in samples)
    assert ds.bad == {videos[1].stem}
    warnings = [r for r in caplog.records if videos[1].name in r.getMessage()]
    assert len(warnings) == 1  # reported once, never retried
    assert samples[0]["pixels"].shape == (4, 3, 64, 64)
    assert -1 <= float(samples[0]["pixels"].min()) and float(samples[0]["pixels"].max()) <= 1


def test_every_clip_bad_is_an_error_not_a_hang(tmp_path):
    folder = make_dataset(tmp_path / "ds", [(20, "one", [])])
    for video in (folder / "videos").iterdir():
        video.write_bytes(b"garbage")
    clips, _ = load_clips(folder)
    with pytest.raises(DatasetError, match="every clip failed"):
        ClipDataset(clips, 4, 2, 64, False, 0.0, False, False, seed=1)[0]


def test_metadata_csv_fallback_probes_frames_and_needs_a_header(tmp_path):
    folder = make_dataset(tmp_path / "ds", [(12, "a cat", ["cat"])])
    (folder / "manifest.jsonl").unlink()
    clips, problems = load_clips(folder)
    assert problems == [] and clips[0].frames == 12 and clips[0].caption == "a cat"
    assert dataset_id(folder)  # from dataset.json or the csv hash
    (folder / "metadata.csv").write_text("abc,def\n")
    with pytest.raises(DatasetError, match="metadata.csv.*header"):
        load_clips(folder)
    with pytest.raises(DatasetError, match="no manifest.jsonl or metadata.csv"):
        load_clips(tmp_path)


def test_captions_dropout_and_tag_shuffle(tmp_path):
    folder = make_dataset(tmp_path / "ds", [(12, "a cat", ["cat", "sofa", "sun"])])
    clips, _ = load_clips(folder)
    shuffled = ClipDataset(clips, 2, 1, 64, False, 0.0, True, False, seed=3)
    captions = {shuffled[0]["caption"] for _ in range(10)}
    assert len(captions) > 1 and all(sorted(c.split(", ")) == ["cat", "sofa", "sun"]
                                     for c in captions)
    dropped = ClipDataset(clips, 2, 1, 64, False, 1.0, False, False, seed=3)
    assert dropped[0]["caption"] == ""


def test_buckets_keep_orientation_and_batch_within_a_size():
    assert bucket_size(96, 64, 256) == (320, 192)
    assert bucket_size(64, 96, 256) == (192, 320)
    assert bucket_size(100, 100, 512) == (512, 512)
    sizes = [(64, 64), (128, 64), (64, 64), (128, 64), (64, 64)]
    batches = list(BucketBatches(sizes, 2, seed=0))
    assert sorted(i for b in batches for i in b) == list(range(5))
    assert all(len({sizes[i] for i in b}) == 1 for b in batches)
    assert len(BucketBatches(sizes, 2, seed=0)) == len(batches) == 3


def test_run_config_lists_every_problem():
    with pytest.raises(RunConfigError) as info:
        run_config_from_dict({"dataset": "d", "data": {"size": 100, "bogus": 1},
                              "train": {"mixed_precision": "fp8"}})
    text = str(info.value)
    for fragment in ("data.bogus: unknown key", "data.size: 100", "train.mixed_precision",
                     "output_dir: required", "pretrained_model: required"):
        assert fragment in text


def test_a_killed_save_or_log_line_is_ignored_on_resume(tmp_path):
    from trainer import checkpoints as ckpt

    for name in ("checkpoint-3", "checkpoint-12", ".tmp-checkpoint-15", "checkpoint-x"):
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
    assert ckpt.find(tmp_path, "latest").name == "checkpoint-12"  # not the half-saved 15
    assert ckpt.find(tmp_path / "nothing", "latest") is None  # fresh start
    with pytest.raises(FileNotFoundError, match="checkpoint-<step>"):
        ckpt.find(tmp_path, str(tmp_path / "elsewhere"))
    (tmp_path / "loss.jsonl").write_text(
        '{"step": 1, "loss": 4.0}\n{"step": 2, "loss": 9.0}\n{"step": 2, "loss": 2.0}\n'
        '{"step": 3, "loss": 1.0}\n{"step": 4, "lo')  # step 2 retried after a resume; cut line
    assert ckpt.final_loss(tmp_path, 3, window=2) == 1.5
    assert ckpt.final_loss(tmp_path, 1) == 4.0


def test_run_example_shows_every_key_with_its_default():
    import dataclasses
    from pathlib import Path

    import yaml

    from trainer.config import RunConfig, as_dict

    example = yaml.safe_load((Path(__file__).resolve().parents[1] / "trainer" /
                              "run.example.yaml").read_text())
    cfg = run_config_from_dict(example)
    paths = {"dataset": cfg.dataset, "output_dir": cfg.output_dir,
             "pretrained_model": cfg.pretrained_model}
    assert as_dict(cfg) == as_dict(dataclasses.replace(RunConfig(), **paths))


def test_a_clip_on_twos_is_sampled_at_an_even_stride_so_every_frame_is_a_new_drawing(
        tmp_path):
    import hashlib
    import json
    import subprocess

    import numpy as np

    from trainer.data import cadence_stride

    assert cadence_stride(240, 16, 3, 2) == 4  # rounded up to the cadence
    assert cadence_stride(240, 16, 4, 1) == 4
    assert cadence_stride(50, 16, 4, 3) == 3  # the largest multiple that fits
    assert cadence_stride(20, 16, 4, 2) == 4  # too short: sample_indices shrinks it
    folder = tmp_path / "ds"
    (folder / "videos").mkdir(parents=True)
    tmp = folder / "tmp.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",  # a drawing per 2
                    "nullsrc=s=96x64:r=24,geq=lum='mod(floor(N/2)*6,200)+20':cb=128:cr=128",
                    "-frames:v", "80", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p",
                    str(tmp)], check=True, timeout=60)
    videoid = hashlib.sha256(tmp.read_bytes()).hexdigest()
    tmp.rename(folder / "videos" / f"{videoid}.mp4")
    (folder / "manifest.jsonl").write_text(json.dumps(
        {"videoid": videoid, "caption": "a", "tags": ["a"], "frames": 80, "width": 96,
         "height": 64, "cadence": 2}) + "\n")
    clips, problems = load_clips(folder)
    assert not problems and clips[0].cadence == 2
    # stride 1 would sample each drawing twice
    ds = ClipDataset(clips, frames=16, stride=1, size=64, flip=False, caption_dropout=0,
                     tag_shuffle=False, buckets=False, seed=0)
    assert ds.stride_for(clips[0]) == 2
    means = ds[0]["pixels"].mean(dim=(1, 2, 3)).numpy()
    assert np.all(np.abs(np.diff(means)) > 0.02)  # no drawing sampled twice


def test_run_config_checks_ranges_and_refuses_unknown_types(tmp_path, capsys):
    import dataclasses

    import yaml

    from trainer.__main__ import main
    from trainer.typed_yaml import build

    run = {"dataset": str(tmp_path / "ds"), "output_dir": str(tmp_path / "out"),
           "pretrained_model": str(tmp_path / "no-such-model"),
           "checkpoints": {"every_steps": 0}, "data": {"caption_dropout": 1.5},
           "train": {"learning_rate": 0, "lr_scheduler": "warp"}, "eval": {"holdout": 2}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(run))
    assert main(["--config", str(path)]) == 2  # refused before any model would load
    err = capsys.readouterr().err
    for fragment in ("checkpoints.every_steps: 0 is out of range; allowed: an integer >= 1",
                     "data.caption_dropout: 1.5 is out of range; allowed: a number from 0 to 1",
                     "train.learning_rate: 0 is out of range; allowed: a number above 0",
                     "train.lr_scheduler: 'warp' is not allowed",
                     "eval.holdout: 2 is out of range", "5 problem(s)"):
        assert fragment in err
    assert not (tmp_path / "out").exists()

    @dataclasses.dataclass
    class Odd:
        pair: tuple = (1, 2)

    problems: list[str] = []
    build(Odd, {"pair": [3, 4]}, "", problems)
    assert problems and "unknown to the validator" in problems[0]


def test_the_held_out_split_is_stable_as_clips_are_added():
    from pathlib import Path

    from trainer.data import Clip
    from trainer.evaluate import split_holdout

    def clips(n: int) -> list[Clip]:
        return [Clip(f"{i:064x}", Path(f"{i}.mp4"), "c", 20, 64, 64) for i in range(n)]

    train_a, held_a = split_holdout(clips(200), 0.2)
    train_b, held_b = split_holdout(clips(1000), 0.2)
    assert 20 < len(held_a) < 60 and 150 < len(held_b) < 250
    assert set(c.videoid for c in held_a) == {c.videoid for c in held_b
                                              if int(c.videoid, 16) < 200}
    assert not {c.videoid for c in train_b} & {c.videoid for c in held_b}
    assert split_holdout(clips(50), 0.0)[1] == [] and split_holdout(clips(50), 1.0)[0] == []
