"""The training loop, on accelerate, in the shape of diffusers' train_text_to_image.py.

Only motion-module parameters train (train.method full), or only LoRA layers on their
attention over the fixed starting module (lora; trainer/lora.py). One timestep per clip
shared by all its frames, the caption embedding repeated per frame, MSE on epsilon (or v):
the official recipe.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import time
from contextlib import suppress
from pathlib import Path

from trainer import checkpoints as ckpt
from trainer.cache import CachedDataset, build_latent_cache, build_text_cache, encode_text
from trainer.config import RunConfig, RunConfigError, as_dict
from trainer.data import BucketBatches, ClipDataset, DatasetError, dataset_id, load_clips
from trainer.evaluate import (
    build_eval_set,
    evaluate,
    log_figures,
    measure_reference,
    split_holdout,
)
from trainer.models import (
    adapter_variant,
    checkpoint_motion_modules,
    load_adapter,
    load_base,
    motion_modules,
    motion_state_dict,
    motion_unet,
)

log = logging.getLogger("trainer")


def train(cfg: RunConfig, resume: str | None = None) -> dict:
    """Run (or continue) one finetune; returns run.json's content."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler
    from tqdm.auto import tqdm

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = cfg.train
    bars = sys.stderr.isatty()  # under the daemon stderr is its log: lines, not bars
    if not bars:
        _no_library_bars()
    accelerator = Accelerator(
        gradient_accumulation_steps=t.gradient_accumulation, mixed_precision=t.mixed_precision,
        log_with=_trackers(t.report_to),
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")))
    set_seed(t.seed)
    started = time.time()
    resume_dir = ckpt.find(out, resume) if resume else None
    if not resume and ckpt.existing(out):  # a fresh run would mix its states with these
        raise RunConfigError(f"{out}: holds checkpoints of an earlier run; continue it with "
                             "--resume latest, or use a new output folder")
    start_step = ckpt.step_of(resume_dir) if resume_dir else 0

    base = load_base(cfg.pretrained_model)
    adapter, init_desc = load_adapter(cfg.motion_module, base.unet, cfg.fresh_variant)
    adapter_config = dict(adapter.config)
    log.info("motion module: %s", init_desc)
    if cfg.data.frames > adapter_config["motion_max_seq_length"]:
        raise RunConfigError(f"data.frames: {cfg.data.frames} is more than the motion module's "
                             f"position table holds ({adapter_config['motion_max_seq_length']})")
    unet = motion_unet(base.unet, adapter)
    # a LoRA run's fixed base as loaded (fp32, on the CPU): the merged module is built on it
    base_state = adapter.state_dict() if t.method == "lora" else None
    del adapter
    reference_state = None  # eval.reference's tensors: the gate's figure for a LoRA run
    if cfg.eval.reference:
        reference_state = load_adapter(cfg.eval.reference, base.unet)[0].state_dict()
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(t.mixed_precision,
                                                                      torch.float32)
    device = accelerator.device
    vae, text_encoder, tokenizer = base.vae, base.text_encoder, base.tokenizer
    vae.requires_grad_(False)
    text_encoder.requires_grad_(False)
    if t.half_frozen_weights:
        unet.to(weight_dtype)
    for module in motion_modules(unet) if t.method == "full" else ():
        module.to(torch.float32)  # trainable weights (and the pe tables) stay fp32
    if t.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
        checkpoint_motion_modules(unet)
    if t.method == "lora":  # freezes the rest, the motion modules included
        from trainer.lora import add_motion_lora

        add_motion_lora(unet, t.lora_rank, t.lora_alpha)
    vae.to(device, weight_dtype)
    text_encoder.to(device, weight_dtype)

    # Resolved once: `export` switches the dataset link atomically to a new build, and this
    # run must keep reading the build it started with.
    dataset_dir = Path(cfg.dataset).expanduser().resolve()
    clips, skipped = load_clips(dataset_dir, cfg.data.decode_timeout_s)
    for problem in skipped:
        log.warning("skipping clip: %s", problem)
    clips, held = split_holdout(clips, cfg.eval.holdout)
    if not clips:
        raise DatasetError(f"{cfg.dataset}: every clip is held out for evaluation "
                           f"(eval.holdout {cfg.eval.holdout}); lower eval.holdout")
    d = cfg.data
    rng_seed = f"{t.seed}:{start_step}"  # a resumed run does not replay the same samples
    pixels = ClipDataset(clips, d.frames, d.stride, d.size, d.flip, d.caption_dropout,
                         d.tag_shuffle, d.buckets, rng_seed, d.decode_timeout_s)
    evalset = build_eval_set(held, cfg, pixels.target_size, vae, tokenizer, text_encoder,
                             device, weight_dtype)
    log.info("held out for evaluation: %d clip(s), %d measured", len(held),
             len(evalset.videoids))
    if t.cache:
        model_id = f"{Path(cfg.pretrained_model).expanduser().resolve()}"
        with accelerator.main_process_first():
            latents, bad = build_latent_cache(pixels, vae, cfg.cache_path, t.cache_windows,
                                              model_id, device, weight_dtype)
            texts = None
            if not d.tag_shuffle:  # shuffled tag captions are endless; encode those per step
                texts = build_text_cache({c.caption for c in clips} | {""}, tokenizer,
                                         text_encoder, cfg.cache_path, model_id, device)
        skipped += bad
        dataset = CachedDataset(clips, latents, texts, d.caption_dropout, d.tag_shuffle,
                                rng_seed)
        vae.to("cpu")  # the caches replace the VAE until validation
        if texts is not None:
            text_encoder.to("cpu")
    else:
        dataset = pixels
    if len(dataset) == 0:
        raise DatasetError(f"{cfg.dataset}: no clip could be decoded ({len(skipped)} skipped)"
                           + "".join(f"\n  - {p}" for p in skipped[:20]))
    loader = _loader(dataset, pixels, t.batch_size, d, t.seed + start_step)

    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=t.learning_rate, betas=(t.adam_beta1, t.adam_beta2),
                                  weight_decay=t.weight_decay, eps=t.adam_epsilon)
    lr_scheduler = get_scheduler(t.lr_scheduler, optimizer,
                                 num_warmup_steps=t.lr_warmup_steps * accelerator.num_processes,
                                 num_training_steps=t.max_steps * accelerator.num_processes)
    unet, optimizer, loader, lr_scheduler = accelerator.prepare(unet, optimizer, loader,
                                                                lr_scheduler)
    ema = None
    if t.ema:
        from diffusers.training_utils import EMAModel

        ema = EMAModel(params, decay=t.ema_decay)
        ema.to(device)
        accelerator.register_for_checkpointing(ema)
    if resume_dir:
        accelerator.load_state(str(resume_dir))
        log.info("resumed from %s at step %d", resume_dir, start_step)
    n = cfg.noise
    scheduler = DDPMScheduler(num_train_timesteps=n.num_train_timesteps, beta_start=n.beta_start,
                              beta_end=n.beta_end, beta_schedule=n.beta_schedule,
                              prediction_type=n.prediction_type, clip_sample=False)
    if accelerator.is_main_process and t.report_to != "none":
        accelerator.init_trackers("trainer", config=_flat_hparams(cfg))
    before = _eval_before(out, resume_dir, accelerator, unet, evalset, scheduler, cfg,
                          weight_dtype, device)
    reference = None  # its figures, when it fits this UNet
    if reference_state is not None:
        reference = measure_reference(out / "eval_reference.json", cfg.eval.reference,
                                      reference_state, accelerator.unwrap_model(unet), evalset,
                                      scheduler, cfg, weight_dtype, device)
        log_figures(accelerator, reference, "reference", 0)
    v = cfg.validation
    if v.prompts and v.before_after and resume_dir is None and accelerator.is_main_process:
        from contextlib import ExitStack

        from trainer.lora import motion_weights
        from trainer.samples import render_samples

        plain = accelerator.unwrap_model(unet)
        with ExitStack() as in_use:
            # "before" is what a person compares tonight's result with: the module in use
            # (eval.reference), not a LoRA run's fixed base; one that does not fit this
            # UNet changes nothing (motion_weights checks before it copies)
            left = f"the module it started from ({init_desc})"
            if reference_state is not None:
                with suppress(ValueError):
                    in_use.enter_context(motion_weights(plain, reference_state))
                    left = f"the module in use ({cfg.eval.reference})"
            render_samples(v.prompts, (vae, text_encoder, tokenizer, plain), cfg,
                           out / "samples" / "before", device, keep_frames=True)
        from trainer.export import write_json

        write_json(out / "samples" / "before" / "weights.json", {"left": left})

    step, losses = start_step, []
    bar = tqdm(total=t.max_steps, initial=step, desc="steps",
               disable=not (bars and accelerator.is_local_main_process))
    every = max(1, t.max_steps // 10)  # without a bar: a log line per tenth of the run
    unet.train()
    while step < t.max_steps:
        for batch in loader:
            with accelerator.accumulate(unet):
                loss = compute_loss(unet, batch, (vae, text_encoder, tokenizer), scheduler,
                                    weight_dtype, device)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, t.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            losses.append(accelerator.gather(loss.detach()).mean().item())
            if not accelerator.sync_gradients:
                continue
            step += 1
            if ema is not None:
                ema.step(params)
            step_loss = sum(losses) / len(losses)
            losses = []
            if not math.isfinite(step_loss):
                raise FloatingPointError(f"loss became {step_loss} at step {step}")
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}")
            if bar.disable and accelerator.is_main_process and \
                    (step % every == 0 or step == t.max_steps):
                log.info("step %d/%d: loss %.4f", step, t.max_steps, step_loss)
            accelerator.log({"train/loss": step_loss, "train/lr": lr_scheduler.get_last_lr()[0]},
                            step=step)
            ckpt.record_loss(out, step, step_loss, accelerator.is_main_process)
            if step % cfg.checkpoints.every_steps == 0 or step == t.max_steps:
                ckpt.save(accelerator, out, step, cfg.checkpoints.limit)
            if v.prompts and v.every_steps and step % v.every_steps == 0 and \
                    step < t.max_steps and accelerator.is_main_process:
                from trainer.samples import render_samples

                render_samples(v.prompts, (vae, text_encoder, tokenizer,
                                           accelerator.unwrap_model(unet)), cfg,
                               out / "samples" / f"step-{step:06d}", device)
            if step >= t.max_steps:
                break
    bar.close()
    accelerator.wait_for_everyone()
    result = {}
    if accelerator.is_main_process:
        from trainer.publish import publish_run

        with _ema_weights(ema, params):
            after = evaluate(unet, evalset, scheduler, cfg, weight_dtype, device)
        log_figures(accelerator, after, "after", step)
        state, lora = _final_state(accelerator.unwrap_model(unet), ema, params, t,
                                   base_state)
        result = publish_run(cfg, out, state, adapter_config, adapter_variant(adapter_config),
                             init_desc, dataset_id(dataset_dir), step, skipped, started,
                             resume_dir, (vae, text_encoder, tokenizer,
                                          accelerator.unwrap_model(unet), ema, params),
                             _eval_record(cfg, held, evalset, before, after, reference),
                             lora=lora)
    accelerator.end_training()
    return result


def _no_library_bars() -> None:
    """diffusers' and transformers' own bars (loading weights, pipelines) off too."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def compute_loss(unet, batch: dict, frozen: tuple, scheduler, weight_dtype, device):
    """The diffusion loss of one batch: noise the clip latents at one timestep per clip
    (shared by its frames) and regress the noise (or v) with the motion UNet."""
    import torch

    vae, text_encoder, tokenizer = frozen
    latents = _latents(batch, vae, vae.config.scaling_factor, weight_dtype, device)
    embeds = batch["embeds"].to(device) if "embeds" in batch else \
        encode_text(batch["caption"], tokenizer, text_encoder.to(device), device)
    noise = torch.randn_like(latents)
    steps = scheduler.config.num_train_timesteps
    timesteps = torch.randint(0, steps, (latents.shape[0],), device=device).long()
    noisy = scheduler.add_noise(latents, noise, timesteps)
    target = noise if scheduler.config.prediction_type == "epsilon" else \
        scheduler.get_velocity(latents, noise, timesteps)
    frames = latents.shape[2]
    pred = unet(noisy, timesteps, encoder_hidden_states=embeds.to(weight_dtype)
                .repeat_interleave(frames, dim=0)).sample
    return torch.nn.functional.mse_loss(pred.float(), target.float())


def _latents(batch, vae, scaling, weight_dtype, device):
    import torch

    if "latent_mean" in batch:  # cached moments: a fresh sample each step
        mean = batch["latent_mean"].to(device, torch.float32)
        std = batch["latent_std"].to(device, torch.float32)
        return (mean + std * torch.randn_like(mean)) * scaling
    pixels = batch["pixels"]  # (B, F, 3, H, W)
    b, f = pixels.shape[:2]
    with torch.no_grad():
        latents = vae.to(device).encode(pixels.flatten(0, 1).to(device, weight_dtype))
        latents = latents.latent_dist.sample().float() * scaling
    return latents.unflatten(0, (b, f)).transpose(1, 2)  # (B, C, F, h, w)


def _loader(dataset, pixels: ClipDataset, batch_size: int, d, seed: int):
    import torch

    def reseed(worker: int) -> None:  # each worker its own sample sequence
        dataset.rng = random.Random(f"{seed}:{worker}")

    common = {"num_workers": d.num_workers, "worker_init_fn": reseed}
    if d.buckets:
        by_id = {c.videoid: pixels.target_size(c) for c in pixels.clips}
        sizes = [by_id[c.videoid] for c in dataset.clips]
        return torch.utils.data.DataLoader(dataset, batch_sampler=BucketBatches(
            sizes, batch_size, seed), **common)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                       generator=torch.Generator().manual_seed(seed), **common)


def _eval_before(out: Path, resume_dir, accelerator, unet, evalset, scheduler, cfg,
                 weight_dtype, device) -> dict | None:
    """The starting weights' held-out figures: measured before step 1 and kept in
    eval_before.json, so a resumed run reports the figure of its real start."""
    import json

    path = out / "eval_before.json"
    if path.is_file():
        kept = json.loads(path.read_text(encoding="utf-8"))
        if kept and kept.get("set_id") == evalset.set_id:
            return kept
    if resume_dir is not None:
        log.warning("no held-out figure of this run's starting weights (%s); the run "
                    "reports only its result", path)
        return None
    figures = evaluate(unet, evalset, scheduler, cfg, weight_dtype, device)
    if accelerator.is_main_process:
        from trainer.export import write_json

        write_json(path, figures or {})
        log_figures(accelerator, figures, "before", 0)
    return figures


def _eval_record(cfg: RunConfig, held: list, evalset, before, after,
                 reference: dict | None = None) -> dict:
    """run.json's eval: the held-out set, the two measurements (and the reference's)."""
    change = None
    if before and after:
        change = (after["loss"] - before["loss"]) / before["loss"] if before["loss"] else None
    return {"holdout": cfg.eval.holdout, "held_out": len(held),
            "measured": list(evalset.videoids), "set_id": evalset.set_id,
            "problems": list(evalset.problems), "before": before, "after": after,
            "relative_change": change, "reference": reference}


class _ema_weights:
    """The EMA weights in place for a while (nothing when EMA is off)."""

    def __init__(self, ema, params):
        self.ema, self.params = ema, params

    def __enter__(self):
        if self.ema is not None:
            self.ema.store(self.params)
            self.ema.copy_to(self.params)

    def __exit__(self, *exc):
        if self.ema is not None:
            self.ema.restore(self.params)


def _trackers(report_to: str):
    if report_to == "none":
        return None
    if report_to == "wandb":
        import importlib.util

        if importlib.util.find_spec("wandb") is None:
            raise RunConfigError("train.report_to: wandb is not installed (pip install wandb), "
                                 "or choose tensorboard | none")
    return report_to


def _final_state(unet, ema, params, t, base_state) -> tuple[dict, dict | None]:
    """(motion-module tensors to publish, the LoRA's or None), the EMA weights when EMA is
    on. A LoRA run publishes the base with the LoRA merged in as its motion module (the
    base as loaded: in the UNet it may be half, like every frozen weight)."""
    with _ema_weights(ema, params):
        if t.method != "lora":
            return {k: v.detach().cpu().clone() for k, v in motion_state_dict(unet).items()}, None
        from trainer.lora import lora_state, merged_state

        lora = lora_state(unet, t.lora_alpha / t.lora_rank)
        return merged_state(base_state, lora), lora


def _flat_hparams(cfg: RunConfig) -> dict:
    flat = {}
    for section in ("data", "noise", "train"):
        for key, value in as_dict(cfg)[section].items():
            flat[f"{section}.{key}"] = value
    return flat
