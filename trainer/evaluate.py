"""Held-out evaluation: a fixed share of the clips, never trained on, and a loss on them
with fixed noise and fixed timesteps, so two sets of weights get comparable figures.

A clip is held out iff sha256(videoid) mod 1000 < holdout * 1000: the decision depends on
the clip alone, so the set stays the same as the dataset grows (new clips join one side
or the other). Each held-out clip has one fixed window (no flip, its own caption) encoded
to the VAE mean; its noise comes from a generator seeded by (eval.seed, videoid), not the
training RNG. The timesteps are spread evenly over the schedule; the loss is reported
overall and per band of timesteps. The run measures its starting weights before step 1
(for a nightly run: the current module) and its result after the last step.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from trainer.data import Clip
from trainer.video import BadClip, read_frames, sample_indices, window_starts

log = logging.getLogger("trainer")


def holdout_bucket(videoid: str) -> int:
    """0-999, from the clip id alone."""
    return int(hashlib.sha256(videoid.encode()).hexdigest()[:12], 16) % 1000


def split_holdout(clips: list[Clip], fraction: float) -> tuple[list[Clip], list[Clip]]:
    """(clips to train on, held-out clips in a fixed order: lowest bucket first)."""
    limit = round(fraction * 1000)
    held = [c for c in clips if holdout_bucket(c.videoid) < limit]
    keep = [c for c in clips if holdout_bucket(c.videoid) >= limit]
    return keep, sorted(held, key=lambda c: (holdout_bucket(c.videoid), c.videoid))


def eval_timesteps(num_train_timesteps: int, count: int) -> list[int]:
    """`count` timesteps at the middle of equal parts of the schedule."""
    return [int((k + 0.5) * num_train_timesteps / count) for k in range(count)]


@dataclass(frozen=True)
class EvalSet:
    videoids: tuple[str, ...]
    latents: tuple  # (C, F, h, w) scaled VAE means, on the CPU
    embeds: tuple   # (77, D) caption embeddings, on the CPU
    set_id: str     # held-out ids + every setting that changes the figure
    problems: tuple[str, ...] = ()


def build_eval_set(held: list[Clip], cfg, size_of, vae, tokenizer, text_encoder, device,
                   dtype) -> EvalSet:
    """Encode the held-out clips once (the VAE and text encoder are still loaded)."""
    import torch

    from trainer.cache import encode_text

    d, e = cfg.data, cfg.eval
    ids, latents, embeds, problems = [], [], [], []
    for clip in held[: e.max_clips]:
        start = window_starts(clip.frames, d.frames, d.stride, 1)[0]
        w, h = size_of(clip)
        try:
            frames = read_frames(clip.path, sample_indices(clip.frames, d.frames, d.stride,
                                                           start), w, h, d.decode_timeout_s)
        except BadClip as exc:
            problems.append(str(exc))
            log.warning("held-out clip not measured: %s", exc)
            continue
        pixels = torch.from_numpy(frames.copy()).permute(0, 3, 1, 2).float() / 127.5 - 1
        with torch.no_grad():
            mean = vae.to(device).encode(pixels.to(device, dtype)).latent_dist.mean
            text = encode_text([clip.caption], tokenizer, text_encoder.to(device), device)[0]
        latents.append((mean.float() * vae.config.scaling_factor).transpose(0, 1).cpu())
        embeds.append(text.float().cpu())
        ids.append(clip.videoid)
    n = cfg.noise
    settings = (sorted(ids), d.size, d.frames, d.stride, d.buckets, e.timesteps, e.seed,
                n.num_train_timesteps, n.beta_start, n.beta_end, n.beta_schedule,
                n.prediction_type, str(cfg.pretrained_model))
    set_id = hashlib.sha256(repr(settings).encode()).hexdigest()[:16]
    return EvalSet(tuple(ids), tuple(latents), tuple(embeds), set_id, tuple(problems))


def evaluate(unet, evalset: EvalSet, scheduler, cfg, weight_dtype, device) -> dict | None:
    """{loss, bands: [{from, to, loss}], clips, timesteps, set_id}; None without clips."""
    import torch

    if not evalset.videoids:
        return None
    e = cfg.eval
    total = scheduler.config.num_train_timesteps
    steps = eval_timesteps(total, e.timesteps)
    per_step = [0.0] * len(steps)
    was_training = unet.training
    unet.eval()
    try:
        with torch.no_grad():
            for videoid, latent, embed in zip(evalset.videoids, evalset.latents,
                                              evalset.embeds):
                generator = torch.Generator().manual_seed(_seed(e.seed, videoid))
                noise = torch.randn((len(steps), *latent.shape), generator=generator)
                for k, t in enumerate(steps):
                    x0 = latent.unsqueeze(0).to(device)
                    eps = noise[k:k + 1].to(device)
                    ts = torch.tensor([t], device=device).long()
                    noisy = scheduler.add_noise(x0, eps, ts)
                    target = eps if scheduler.config.prediction_type == "epsilon" else \
                        scheduler.get_velocity(x0, eps, ts)
                    hidden = embed.unsqueeze(0).to(device, weight_dtype).repeat_interleave(
                        latent.shape[1], dim=0)
                    pred = unet(noisy, ts, encoder_hidden_states=hidden).sample
                    per_step[k] += torch.nn.functional.mse_loss(pred.float(),
                                                                target.float()).item()
    finally:
        unet.train(was_training)
    per_step = [v / len(evalset.videoids) for v in per_step]
    bands = []
    for b in range(e.bands):
        lo, hi = b * total // e.bands, (b + 1) * total // e.bands
        inside = [v for t, v in zip(steps, per_step) if lo <= t < hi]
        if inside:
            bands.append({"from": lo, "to": hi, "loss": sum(inside) / len(inside)})
    return {"loss": sum(per_step) / len(per_step), "bands": bands,
            "clips": len(evalset.videoids), "timesteps": steps, "set_id": evalset.set_id}


def measure_reference(path, module: str, state: dict, unet, evalset: EvalSet, scheduler,
                      cfg, weight_dtype, device) -> dict | None:
    """{module, **figures} of another motion module (`state`) on this run's held-out set,
    put in place of the UNet's for the measurement (LoRA layers off) and taken out again.
    Kept in `path` so a resumed run reports the same figure; None when it does not fit."""
    import json

    from trainer.lora import motion_weights

    kept = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    if kept and kept.get("set_id") == evalset.set_id and kept.get("module") == module:
        return kept
    try:
        with motion_weights(unet, state):
            figures = evaluate(unet, evalset, scheduler, cfg, weight_dtype, device)
    except ValueError as exc:  # another architecture: no like-for-like figure
        log.warning("eval.reference %s not measured: %s", module, exc)
        return None
    if figures is None:
        return None
    figures = {"module": module, **figures}
    from trainer.export import write_json

    write_json(path, figures)
    return figures


def log_figures(accelerator, figures: dict | None, when: str, step: int) -> None:
    """eval/<when>/loss and one eval/<when>/t<from>-<to> per band into the trackers."""
    if figures is None:
        return
    values = {f"eval/{when}/loss": figures["loss"]}
    values.update({f"eval/{when}/t{b['from']:04d}-{b['to']:04d}": b["loss"]
                   for b in figures["bands"]})
    accelerator.log(values, step=step)
    log.info("held-out loss (%s, %d clips): %.5f", when, figures["clips"], figures["loss"])


def _seed(seed: int, videoid: str) -> int:
    return int(hashlib.sha256(f"{seed}:{videoid}".encode()).hexdigest()[:15], 16)
