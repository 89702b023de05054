"""Motion LoRA runs on the tiny SD 1.5-shaped models: the base module stays byte for byte,
both LoRA files load (the diffusers one with the real load_lora_weights), resume works."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")
if not shutil.which("ffmpeg"):
    pytest.skip("ffmpeg is not installed", allow_module_level=True)

from safetensors.torch import load_file, save_file  # noqa: E402
from trainer_tiny import UNET_CHANNELS, build_base, make_dataset  # noqa: E402

from trainer.config import RunConfigError, run_config_from_dict  # noqa: E402
from trainer.convert import original_to_diffusers  # noqa: E402
from trainer.loop import train  # noqa: E402

RANK, ALPHA = 4, 8.0  # scale 2: a file that forgot to fold alpha into `up` shows


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from diffusers import MotionAdapter

    from trainer.data import load_clips
    from trainer.evaluate import holdout_bucket
    from trainer.export import original_layout

    root = tmp_path_factory.mktemp("lora")
    base = build_base(root / "base")
    ds = make_dataset(root / "ds", [(20, "a red ball", ["ball"]), (12, "a blue sky", ["sky"]),
                                    (16, "green grass", ["grass"])])
    torch.manual_seed(5)  # a trained-looking base: proj_out not zero, so LoRA gets gradients
    adapter = MotionAdapter(block_out_channels=UNET_CHANNELS, motion_norm_num_groups=8,
                            use_motion_mid_block=False)
    module = root / "base_v3.safetensors"
    save_file(original_layout(adapter.state_dict(), "fp32"), str(module))
    clips, _ = load_clips(ds)
    holdout = (min(holdout_bucket(c.videoid) for c in clips) + 1) / 1000  # one clip held out
    return {"base": base, "ds": ds, "module": module, "holdout": holdout}


def _cfg(world, out, **train):
    return run_config_from_dict({
        "dataset": str(world["ds"]), "output_dir": str(out),
        "pretrained_model": str(world["base"]), "motion_module": str(world["module"]),
        "export_dtype": "fp32", "data": {"size": 64, "frames": 4, "stride": 2},
        "train": {"max_steps": 2, "mixed_precision": "no", "cache_windows": 1,
                  "gradient_checkpointing": False, "learning_rate": 0.05, "method": "lora",
                  "lora_rank": RANK, "lora_alpha": ALPHA, **train},
        "eval": {"holdout": world["holdout"], "timesteps": 2, "bands": 1,
                 "reference": str(world["module"])},
        "checkpoints": {"every_steps": 1, "limit": 2}})


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_lora_run_keeps_its_base_and_both_files_load(world, tmp_path):
    from trainer.lora import ade_model_key
    from trainer.selfcheck import check_diffusers_lora, check_evolved_lora
    from trainer.selfcheck import main as selfcheck

    out = tmp_path / "run"
    base_sha = _sha(world["module"])
    run = train(_cfg(world, out))
    assert run["method"] == "lora" and run["steps"] == 2
    assert _sha(world["module"]) == base_sha

    # only LoRA tensors moved in the trained UNet; the base module's are bit for bit
    base = load_file(str(world["module"]))
    trained = load_file(str(out / "checkpoints" / "checkpoint-2" / "model.safetensors"))
    lora_keys = [k for k in trained if ".lora_" in k]
    assert lora_keys and all(".motion_modules." in k and ".attn" in k for k in lora_keys)
    in_unet = {k.replace(".base_layer", ""): v for k, v in trained.items() if ".lora_" not in k}
    for key, value in original_to_diffusers(base).items():
        assert torch.equal(in_unet[key], value), key
    assert any(not torch.equal(trained[k], torch.zeros_like(trained[k]))
               for k in lora_keys if ".lora_B." in k)

    # the gate's reference is the base itself here: the same figure as the start
    ev = run["eval"]
    assert ev["reference"]["module"] == str(world["module"])
    assert ev["reference"]["loss"] == pytest.approx(ev["before"]["loss"], rel=1e-6)
    assert ev["after"]["loss"] != ev["before"]["loss"]

    evolved_file = out / "motion_lora.safetensors"
    assert run["outputs"]["motion_lora"] == str(evolved_file)
    evolved = load_file(str(evolved_file))
    key = ("down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0"
           ".attention_blocks.0.processor.to_q_lora.down.weight")
    assert key in evolved and key.replace(".down.", ".up.") in evolved
    assert evolved[key].shape == (RANK, UNET_CHANNELS[0])
    assert {v.dtype for v in evolved.values()} == {torch.float32}
    assert check_evolved_lora(evolved, base) == []
    downs = [k for k in evolved if k.endswith(".down.weight")]
    attention = {k for k in base if ".attention_blocks." in k and
                 k.endswith(("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight"))}
    assert {ade_model_key(k) for k in downs} == attention  # ADE's rule: one per weight
    assert check_evolved_lora({**evolved, "junk.weight": evolved[key]}, base)
    assert selfcheck([str(evolved_file), "--module", str(world["module"])]) == 0

    diffusers_dir = out / "motion_lora_diffusers"
    diffusers_lora = load_file(str(diffusers_dir / "pytorch_lora_weights.safetensors"))
    assert check_diffusers_lora(diffusers_lora, original_to_diffusers(base)) == []
    lone = {k: v for k, v in diffusers_lora.items() if not k.endswith("to_k.lora_B.weight")}
    assert "without their pair" in " ".join(check_diffusers_lora(lone))
    up = key.replace(".down.", ".up.")
    flipped = {**evolved, up: evolved[up].T.contiguous(), key: evolved[key].T.contiguous()}
    assert "wrong shape" in " ".join(check_evolved_lora(flipped, base))
    assert selfcheck([str(diffusers_dir), "--module", str(world["module"])]) == 0

    # each file equals the trained LoRA, alpha/rank folded into up: up @ down is the change
    # the merged motion module carries
    merged = original_to_diffusers(load_file(run["outputs"]["motion_module"]))
    q = "down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.to_q.weight"
    delta = evolved[key.replace(".down.", ".up.")] @ evolved[key]
    assert torch.allclose(merged[q] - original_to_diffusers(base)[q], delta, atol=1e-6)
    assert delta.abs().max() > 0


def test_the_diffusers_file_loads_with_load_lora_weights_and_changes_the_output(world,
                                                                                 tmp_path):
    from diffusers import AnimateDiffPipeline, DDIMScheduler

    from trainer.models import load_adapter, load_base

    out = tmp_path / "run"
    run = train(_cfg(world, out, max_steps=1, learning_rate=0.1))

    def pipeline(module):
        base = load_base(str(world["base"]))
        adapter = load_adapter(str(module), base.unet)[0]
        pipe = AnimateDiffPipeline(vae=base.vae, text_encoder=base.text_encoder,
                                   tokenizer=base.tokenizer, unet=base.unet,
                                   motion_adapter=adapter, scheduler=DDIMScheduler(
                                       beta_schedule="linear", clip_sample=False))
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def frames(pipe):
        with torch.no_grad():
            return pipe(prompt="a red ball", num_frames=4, height=64, width=64,
                        num_inference_steps=2, guidance_scale=1.0, output_type="np",
                        generator=torch.Generator().manual_seed(0)).frames[0]

    pipe = pipeline(world["module"])
    plain = frames(pipe)
    pipe.load_lora_weights(str(out / "motion_lora_diffusers"))  # the real diffusers loader
    assert pipe.get_list_adapters()["unet"]  # on the motion UNet, through peft
    with_lora = frames(pipe)
    assert abs(with_lora - plain).max() > 1e-3  # the LoRA changes what the pipeline makes
    # and exactly as trained: the same as the base with the LoRA merged in
    merged = frames(pipeline(run["outputs"]["motion_module"]))
    assert abs(with_lora - merged).max() < 1e-4


@pytest.fixture()
def fresh_accelerate():
    """accelerate keeps one mixed-precision setting per process; this test wants another."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_lora_runs_resume_with_their_optimizer_state_in_bf16(world, tmp_path,
                                                             fresh_accelerate):
    out = tmp_path / "run"
    half = {"mixed_precision": "bf16", "half_frozen_weights": True}  # base frozen in bf16
    first = train(_cfg(world, out, max_steps=1, **half))
    assert first["steps"] == 1
    (out / "run.json").unlink()
    run = train(_cfg(world, out, max_steps=2, **half), resume="latest")
    assert run["steps"] == 2 and run["resumed_from"].endswith("checkpoint-1")
    assert run["eval"]["before"] == first["eval"]["before"]  # the real start's figure
    assert run["eval"]["reference"] == first["eval"]["reference"]
    # the merged module is built on the base as loaded (fp32), not on its bf16 copy
    base = original_to_diffusers(load_file(str(world["module"])))
    merged = original_to_diffusers(load_file(run["outputs"]["motion_module"]))
    untouched = "down_blocks.0.motion_modules.0.proj_in.weight"
    assert torch.equal(merged[untouched], base[untouched])
    optim = torch.load(out / "checkpoints" / "checkpoint-2" / "optimizer.bin",
                       weights_only=False)
    assert {int(s["step"]) for s in optim["state"].values()} == {2}
    assert len(optim["state"]) == 2 * 4 * 2 * 20  # A and B of 4 projections x 2 attn x 20


def test_lora_needs_a_base_module(world, tmp_path):
    with pytest.raises(RunConfigError, match="train.method: lora needs motion_module"):
        run_config_from_dict({"dataset": "d", "output_dir": "o", "pretrained_model": "p",
                              "train": {"method": "lora"}})
    with pytest.raises(RunConfigError, match="lora_rank"):
        run_config_from_dict({"dataset": "d", "output_dir": "o", "pretrained_model": "p",
                              "motion_module": "m", "train": {"lora_rank": 0}})


def test_a_lora_nights_before_samples_show_the_module_in_use(world, tmp_path,
                                                             fresh_accelerate):
    """The side-by-side's left is what the run is compared with, eval.reference (the
    current module), not the LoRA's fixed base: the same frames a full run starting from
    that module renders before its first step."""
    import numpy as np
    from diffusers import MotionAdapter

    from trainer.export import original_layout

    torch.manual_seed(9)  # "last night's" module: other weights of the same shape
    current = tmp_path / "current.safetensors"
    adapter = MotionAdapter(block_out_channels=UNET_CHANNELS, motion_norm_num_groups=8,
                            use_motion_mid_block=False)
    save_file(original_layout(adapter.state_dict(), "fp32"), str(current))
    samples = {"prompts": [{"prompt": "a red ball", "seed": 3}], "num_inference_steps": 2,
               "before_after": True}

    def before(out, reference, **more) -> np.ndarray:
        cfg = _cfg(world, out, max_steps=1, **more.pop("train", {}))
        cfg = dataclasses.replace(cfg, validation=dataclasses.replace(cfg.validation, **samples),
                                  eval=dataclasses.replace(cfg.eval, reference=reference),
                                  **more)
        lefts.append(train(cfg)["outputs"]["compare_left"])  # what the note says it is
        return np.load(out / "samples" / "before" / "sample-00.npy")

    lefts: list[str] = []

    lora = before(tmp_path / "lora", str(current))
    full = before(tmp_path / "full", None, motion_module=str(current), train={"method": "full"})
    base = before(tmp_path / "base", None, train={"method": "full"})
    def diff(a, b) -> float:
        return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())

    assert diff(lora, full) < 0.5  # 8-bit frames: rounding of the same picture
    assert diff(lora, base) > 2  # the fixed base alone looks otherwise
    assert lefts[0] == f"the module in use ({current})"
    assert lefts[2].startswith("the module it started from (original v3 file")
