"""The training loop end to end on tiny SD 1.5-shaped models: steps, resume, exports."""

from __future__ import annotations

import json
import math
import os
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("accelerate")
if not shutil.which("ffmpeg"):
    pytest.skip("ffmpeg is not installed", allow_module_level=True)

from safetensors.torch import load_file  # noqa: E402
from trainer_tiny import build_base, make_dataset  # noqa: E402

from trainer.config import run_config_from_dict  # noqa: E402
from trainer.convert import original_to_diffusers  # noqa: E402
from trainer.loop import train  # noqa: E402
from trainer.models import (  # noqa: E402
    checkpoint_motion_modules,
    load_adapter,
    load_base,
    motion_unet,
)
from trainer.selfcheck import check_exported  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    base = build_base(root / "base")
    ds = make_dataset(root / "ds", [(30, "a red ball", ["ball", "red"]),
                                    (10, "a blue sky", ["sky", "blue"]),
                                    (20, "green grass", ["grass"])])
    return {"root": root, "base": base, "ds": ds}


def _cfg(world, out, **sections):
    return run_config_from_dict(_cfg_dict(world, out, **sections))


def _cfg_dict(world, out, **sections):
    data = {"dataset": str(world["ds"]), "output_dir": str(out),
            "pretrained_model": str(world["base"]), "export_dtype": "fp32",
            "data": {"size": 64, "frames": 4, "stride": 2},
            "train": {"max_steps": 2, "mixed_precision": "no", "cache_windows": 1},
            "checkpoints": {"every_steps": 1, "limit": 2}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return data


def test_a_run_trains_only_motion_weights_and_publishes_loadable_files(world, tmp_path):
    out = tmp_path / "run"
    run = train(_cfg(world, out, validation={"prompts": ["a red ball"], "every_steps": 1,
                                             "num_inference_steps": 2}))
    assert run["steps"] == 2 and math.isfinite(run["final_loss"])
    assert run["variant"] == "v3" and run["init_module"].startswith("fresh")
    assert run["dataset_id"].startswith("sha256:")
    assert json.loads((out / "run.json").read_text()) == run

    # the accelerate state holds the whole UNet: only motion tensors moved
    base = load_base(str(world["base"]))
    before = motion_unet(base.unet, load_adapter(None, base.unet)[0]).state_dict()
    after = load_file(str(out / "checkpoints" / "checkpoint-2" / "model.safetensors"))
    frozen = [k for k in before if ".motion_modules." not in k]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    moved = [k for k in before if ".motion_modules." in k and not torch.equal(before[k], after[k])]
    assert any(k.endswith("proj_out.weight") for k in moved)  # zero-init no more

    published = load_file(str(out / "motion_module.safetensors"))
    assert check_exported(published, "v3") == []
    umask = os.umask(0)
    os.umask(umask)
    for path in (out / "motion_module.safetensors", out / "run.json", out / "motion_adapter"):
        assert path.stat().st_mode & 0o666 == 0o666 & ~umask  # not mkstemp's private 0600
    motion_after = {k: v for k, v in after.items() if ".motion_modules." in k}
    for key, value in original_to_diffusers(published).items():
        assert torch.equal(value, motion_after[key]), key
    from diffusers import MotionAdapter

    adapter = MotionAdapter.from_pretrained(out / "motion_adapter").state_dict()
    assert all(torch.equal(adapter[k], motion_after[k]) for k in adapter)

    from PIL import Image

    sample = run["outputs"]["samples"][0]
    assert Image.open(sample["gif"]).n_frames == 4
    assert (out / "samples" / "sample-00.mp4").stat().st_size > 0
    assert (out / "samples" / "step-000001" / "sample-00.gif").is_file()  # mid-run samples
    assert list((out / "logs").rglob("events.out.tfevents*"))  # TensorBoard


def test_resume_latest_continues_after_a_kill(world, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    import yaml

    out = tmp_path / "run"
    cheap = {"gradient_checkpointing": False}  # resuming is the point here, not memory
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text(yaml.safe_dump(_cfg_dict(
        world, out, train={**cheap, "max_steps": 1000}, checkpoints={"every_steps": 2})))
    child = subprocess.Popen([sys.executable, "-m", "trainer", "--config", str(run_yaml)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (out / "checkpoints" / "checkpoint-2").is_dir():
            assert child.poll() is None and time.monotonic() < deadline, "no checkpoint-2"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not (out / "run.json").exists() and not (out / "motion_module.safetensors").exists()
    kept = sorted(p.name for p in (out / "checkpoints").iterdir() if not p.name.startswith("."))
    last = max(int(name.split("-")[1]) for name in kept)
    target = last + 2
    run = train(_cfg(world, out, train={**cheap, "max_steps": target},
                     checkpoints={"every_steps": 1}), resume="latest")
    assert run["steps"] == target and run["resumed_from"].endswith(f"checkpoint-{last}")
    steps = {json.loads(line)["step"] for line in (out / "loss.jsonl").read_text().splitlines()
             if line.endswith("}")}
    assert steps >= set(range(1, target + 1))
    assert sorted(p.name for p in (out / "checkpoints").iterdir()
                  if not p.name.startswith(".")) == \
        [f"checkpoint-{target - 1}", f"checkpoint-{target}"]  # rotation limit 2
    optim = torch.load(out / "checkpoints" / f"checkpoint-{target}" / "optimizer.bin",
                       weights_only=False)
    adam_steps = {int(s["step"]) for s in optim["state"].values()}
    assert adam_steps == {target}  # Adam moments came back with the state, not restarted


def test_pixels_path_with_ema_buckets_tag_shuffle_from_an_original_v2_file(world, tmp_path):
    from diffusers import MotionAdapter
    from safetensors.torch import save_file

    from trainer.export import original_layout

    torch.manual_seed(3)
    v2 = MotionAdapter(block_out_channels=(16, 16, 32, 32), motion_norm_num_groups=8,
                       use_motion_mid_block=True)
    init = tmp_path / "mm_v2.safetensors"
    save_file(original_layout(v2.state_dict(), "fp32"), str(init))
    out = tmp_path / "run"
    run = train(_cfg(world, out, motion_module=str(init),
                     data={"buckets": True, "tag_shuffle": True},
                     train={"cache": False, "ema": True, "ema_decay": 0.9,
                            "gradient_accumulation": 2}))
    assert run["variant"] == "v2" and "original v2 file" in run["init_module"]
    published = load_file(str(out / "motion_module.safetensors"))
    assert check_exported(published, "v2") == []
    assert any(k.startswith("mid_block.") for k in published)
    raw = load_file(str(out / "checkpoints" / "checkpoint-2" / "model.safetensors"))
    key = "down_blocks.0.motion_modules.0.proj_in.weight"
    ema_value = original_to_diffusers(published)[key]
    assert not torch.equal(ema_value, raw[key])  # EMA weights are what gets published
    assert not torch.equal(ema_value, v2.state_dict()[key])


def test_motion_module_checkpointing_gives_the_same_gradients(world):
    base = load_base(str(world["base"]))
    torch.manual_seed(0)
    adapter = load_adapter(None, base.unet)[0]
    for name, p in adapter.named_parameters():
        if "proj_out" in name:
            torch.nn.init.normal_(p, std=0.1)  # a non-identity module so gradients differ
    grads = []
    for wrap in (False, True):
        unet = motion_unet(base.unet, adapter)
        if wrap:
            unet.enable_gradient_checkpointing()
            checkpoint_motion_modules(unet)
        unet.train()
        torch.manual_seed(1)
        x = torch.randn(1, 4, 4, 8, 8)
        enc = torch.randn(4, 77, 32)
        unet(x, torch.tensor([500]), encoder_hidden_states=enc).sample.square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in unet.named_parameters() if p.grad is not None})
        assert all(".motion_modules." in n for n in grads[-1])
    assert grads[0].keys() == grads[1].keys()
    assert all(torch.allclose(grads[0][n], grads[1][n], atol=1e-6) for n in grads[0])


def test_no_decodable_clip_is_a_clear_error(world, tmp_path):
    from trainer.data import DatasetError

    broken = tmp_path / "ds"
    shutil.copytree(world["ds"], broken)
    for video in (broken / "videos").iterdir():
        video.write_bytes(b"not a video")
    cfg = _cfg(world, tmp_path / "run", dataset=str(broken))
    with pytest.raises(DatasetError, match="(?s)no clip could be decoded.*ffmpeg failed"):
        train(cfg)


def test_more_frames_than_the_position_table_is_a_config_error(world, tmp_path):
    from trainer.config import RunConfigError

    with pytest.raises(RunConfigError, match="data.frames: 33"):
        train(_cfg(world, tmp_path / "run", data={"frames": 33}))


def _hold_out_one(world) -> tuple[float, str]:
    """An eval.holdout that holds out exactly the clip with the lowest bucket."""
    from trainer.data import load_clips
    from trainer.evaluate import holdout_bucket

    clips, _ = load_clips(world["ds"])
    lowest = min(clips, key=lambda c: holdout_bucket(c.videoid))
    return (holdout_bucket(lowest.videoid) + 1) / 1000, lowest.videoid


def test_held_out_loss_is_measured_before_and_after_and_compares_across_runs(world, tmp_path):
    fraction, held = _hold_out_one(world)
    first = train(_cfg(world, tmp_path / "a", eval={"holdout": fraction},
                       train={"learning_rate": 1e-3}))
    ev = first["eval"]
    assert ev["measured"] == [held] and ev["held_out"] == 1
    for when in ("before", "after"):
        figures = ev[when]
        assert math.isfinite(figures["loss"]) and len(figures["bands"]) == 4
        assert figures["timesteps"] == [62, 187, 312, 437, 562, 687, 812, 937]
    assert ev["before"]["loss"] != ev["after"]["loss"]
    # never trained on: the latent cache holds the two other clips (one window, two flips)
    assert len(list((tmp_path / "a" / "cache" / "latents").glob("*.safetensors"))) == 4

    # a second run from the first one's module measures, before its first step, the very
    # figure the first run reported for its result: the figures compare across runs
    second = train(_cfg(world, tmp_path / "b", eval={"holdout": fraction},
                        motion_module=str(tmp_path / "a" / "motion_module.safetensors"),
                        train={"max_steps": 1}))
    assert second["eval"]["set_id"] == ev["set_id"]
    assert second["eval"]["before"]["loss"] == pytest.approx(ev["after"]["loss"], rel=1e-6)
    assert [b["loss"] for b in second["eval"]["before"]["bands"]] == \
        pytest.approx([b["loss"] for b in ev["after"]["bands"]], rel=1e-6)


def test_the_eval_loss_is_identical_when_computed_twice(world):
    from diffusers import DDPMScheduler

    from trainer.data import load_clips
    from trainer.evaluate import build_eval_set, evaluate

    cfg = _cfg(world, world["root"] / "unused", eval={"timesteps": 4, "bands": 2})
    base = load_base(str(world["base"]))
    torch.manual_seed(1)
    unet = motion_unet(base.unet, load_adapter(None, base.unet)[0])
    clips, _ = load_clips(world["ds"])
    evalset = build_eval_set(clips[:2], cfg, lambda c: (64, 64), base.vae, base.tokenizer,
                             base.text_encoder, torch.device("cpu"), torch.float32)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear",
                              beta_start=0.00085, beta_end=0.012)
    torch.manual_seed(123)  # the training RNG's state does not enter the figure
    once = evaluate(unet, evalset, scheduler, cfg, torch.float32, torch.device("cpu"))
    torch.randn(1000)
    twice = evaluate(unet, evalset, scheduler, cfg, torch.float32, torch.device("cpu"))
    assert once == twice and once["clips"] == 2 and len(once["bands"]) == 2


def test_before_after_sample_has_the_starting_module_left_and_the_new_one_right(world,
                                                                               tmp_path):
    import numpy as np
    from PIL import Image

    from trainer.video import read_frames

    out = tmp_path / "run"
    run = train(_cfg(world, out, train={"learning_rate": 0.05},
                     validation={"prompts": ["a red ball", {"prompt": "sky", "seed": 7,
                                                            "negative_prompt": "grass"}],
                                 "num_inference_steps": 2}))
    compare = run["outputs"]["compare"]
    assert [c["prompt"] for c in compare] == ["a red ball", "sky"]
    for index, pair in enumerate(compare):
        before = np.load(out / "samples" / "before" / f"sample-{index:02d}.npy").astype(float)
        after = np.load(out / "samples" / f"sample-{index:02d}.npy").astype(float)
        frames, height, width, _ = before.shape
        assert np.abs(before - after).mean() > 4  # the run changed what the module makes
        gif = Image.open(pair["gif"])
        assert gif.size == (2 * width, height) and gif.n_frames == frames
        for frame in range(frames):
            gif.seek(frame)
            pixels = np.asarray(gif.convert("RGB"), dtype=float)
            for half, same, other in ((pixels[:, :width], before, after),
                                      (pixels[:, width:], after, before)):
                near, far = (np.abs(half - x[frame]).mean() for x in (same, other))
                assert near < 8 and near + 3 < far  # palette error only, not the other one
        video = read_frames(pair["mp4"], list(range(frames)), 2 * width, height).astype(float)
        for half, same, other in ((video[:, :, :width], before, after),
                                  (video[:, :, width:], after, before)):
            near, far = np.abs(half - same).mean(), np.abs(half - other).mean()
            assert near + 3 < far
    curve = Image.open(run["outputs"]["loss_curve"])
    assert curve.format == "PNG" and curve.size == (800, 420)
