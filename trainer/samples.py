"""Validation samples: AnimateDiffPipeline with the trained UNet, one mp4 + one gif per prompt.

Fixed seed and DDIM on the training noise schedule (as the official validation), at the
training size and frame count, so samples from different nights compare.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path


def prompt_parts(item) -> tuple[str, str | None, int | None]:
    """(prompt, negative prompt, seed) of a validation.prompts item."""
    if isinstance(item, str):
        return item, None, None
    return item["prompt"], item.get("negative_prompt") or None, item.get("seed")


def render_samples(prompts: list, parts: tuple, cfg, folder: Path, device,
                   keep_frames: bool = False) -> list[dict]:
    """[{prompt, mp4, gif}] written into `folder` (and sample-NN.npy, the raw frames, with
    keep_frames); the VAE and text encoder go back to where they were (the CPU, while
    caches stand in for them)."""
    import torch
    from diffusers import AnimateDiffPipeline, DDIMScheduler

    vae, text_encoder, tokenizer, unet = parts
    homes = (vae.device, text_encoder.device)
    n, v = cfg.noise, cfg.validation
    scheduler = DDIMScheduler(num_train_timesteps=n.num_train_timesteps, beta_start=n.beta_start,
                              beta_end=n.beta_end, beta_schedule=n.beta_schedule,
                              prediction_type=n.prediction_type, clip_sample=False,
                              steps_offset=1, timestep_spacing="linspace")
    vae.to(device)
    text_encoder.to(device)
    pipe = AnimateDiffPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                               unet=unet, motion_adapter=None, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    half = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.train.mixed_precision)
    # frozen weights are half and the motion modules fp32: autocast reconciles them
    autocast = torch.autocast(device.type, dtype=half) if half else contextlib.nullcontext()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    was_training = unet.training
    unet.eval()
    try:
        for index, item in enumerate(prompts):
            prompt, negative, seed = prompt_parts(item)
            generator = torch.Generator(device="cpu").manual_seed(v.seed if seed is None
                                                                  else seed)
            with torch.no_grad(), autocast:
                video = pipe(prompt=prompt, negative_prompt=negative,
                             num_frames=cfg.data.frames, height=cfg.data.size,
                             width=cfg.data.size, num_inference_steps=v.num_inference_steps,
                             guidance_scale=v.guidance_scale, generator=generator,
                             output_type="np").frames[0]
            frames = (video.clip(0, 1) * 255).round().astype("uint8")
            stem = folder / f"sample-{index:02d}"
            if keep_frames:
                import numpy as np

                np.save(stem.with_suffix(".npy"), frames)
            written.append({"prompt": prompt, "mp4": str(write_mp4(frames, stem.with_suffix(
                ".mp4"), v.fps)), "gif": str(write_gif(frames, stem.with_suffix(".gif"), v.fps))})
    finally:
        unet.train(was_training)
        vae.to(homes[0])
        text_encoder.to(homes[1])
    return written


def side_by_side(before_dir: Path, after: list[dict], folder: Path, fps: int) -> list[dict]:
    """For each prompt: the starting module's sample (left) and the new one (right) in one
    mp4 and gif, same seed and settings. Prompts without a `before` sample are left out."""
    import numpy as np

    out = []
    for index, sample in enumerate(after):
        left_file = Path(before_dir) / f"sample-{index:02d}.npy"
        right_file = Path(sample["mp4"]).with_suffix(".npy")
        if not (left_file.is_file() and right_file.is_file()):
            continue
        left, right = np.load(left_file), np.load(right_file)
        if left.shape != right.shape:
            continue
        frames = np.ascontiguousarray(np.concatenate([left, right], axis=2))
        stem = Path(folder) / f"compare-{index:02d}"
        out.append({"prompt": sample["prompt"],
                    "mp4": str(write_mp4(frames, stem.with_suffix(".mp4"), fps)),
                    "gif": str(write_gif(frames, stem.with_suffix(".gif"), fps))})
    return out


def write_gif(frames, path: Path, fps: int) -> Path:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    tmp = path.with_name(f".{path.name}.tmp")
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                   duration=round(1000 / fps), loop=0)
    os.replace(tmp, path)
    return path


def write_mp4(frames, path: Path, fps: int) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if not ffmpeg:
        raise RuntimeError("ffmpeg is not installed; it writes the mp4 samples")
    count, height, width, _ = frames.shape
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    argv = [ffmpeg, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
            "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-c:v", "libx264",
            "-pix_fmt", "yuv420p", "-crf", "18", "-frames:v", str(count), str(tmp)]
    proc = subprocess.run(argv, input=frames.tobytes(), capture_output=True, timeout=300)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"{path}: ffmpeg could not write the sample: "
                           f"{proc.stderr.decode('utf-8', 'replace').strip()[-300:]}")
    os.replace(tmp, path)
    return path
