"""The end of a run: motion_module.safetensors, motion_adapter/, samples/, then run.json.

A LoRA run (train.method lora) also writes its LoRA in both formats beside them:
motion_lora.safetensors (ComfyUI-AnimateDiff-Evolved, original MotionLoRA keys) and
motion_lora_diffusers/pytorch_lora_weights.safetensors (diffusers' load_lora_weights);
its motion_module.safetensors is the fixed base with the LoRA merged in.

run.json is written last, so its presence means every other output of that run is
complete (the nightly job and `hydrus-motion train` read it).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from trainer import __version__
from trainer import checkpoints as ckpt
from trainer.config import RunConfig, as_dict
from trainer.export import publish_adapter, publish_lora, publish_motion_module, write_json

log = logging.getLogger("trainer")


def publish_run(cfg: RunConfig, out: Path, state: dict, adapter_config: dict, variant: str,
                init_desc: str, dataset_id: str, step: int, skipped: list[str],
                started: float, resume_dir: Path | None, parts: tuple,
                evaluation: dict | None = None, lora: dict | None = None) -> dict:
    loss = ckpt.final_loss(out, step)
    meta = {"format": "animatediff-motion-module", "variant": variant, "steps": step,
            "trainer": f"hydrus-motion trainer {__version__}"}
    module = publish_motion_module(state, variant, out, cfg.export_dtype, meta)
    adapter = publish_adapter(state, adapter_config, out)
    log.info("published %s (%s-style) and %s", module, variant, adapter)
    lora_files = (None, None)
    if lora is not None:
        t = cfg.train
        lora_files = publish_lora(lora, state, out, {
            **meta, "format": "animatediff-motion-lora", "rank": t.lora_rank,
            "alpha": t.lora_alpha, "alpha_folded_into_up": True,
            "base_module": cfg.motion_module})
        log.info("published the motion LoRA: %s and %s", *lora_files)
    samples, compare, left, sample_error = [], [], None, None
    if cfg.validation.prompts:
        from trainer.samples import render_samples, side_by_side

        vae, text_encoder, tokenizer, unet, ema, params = parts
        if ema is not None:  # samples show what was published
            ema.store(params)
            ema.copy_to(params)
        try:
            v = cfg.validation
            samples = render_samples(v.prompts, (vae, text_encoder, tokenizer, unet), cfg,
                                     out / "samples", unet.device, keep_frames=v.before_after)
            if v.before_after:
                compare = side_by_side(out / "samples" / "before", samples, out / "samples",
                                       v.fps)
                said = out / "samples" / "before" / "weights.json"  # what the left shows
                left = json.loads(said.read_text(encoding="utf-8"))["left"] if said.is_file() \
                    else None
        except Exception as exc:  # samples are a review aid; the weights are already out
            sample_error = f"{type(exc).__name__}: {exc}"
            log.error("validation samples failed: %s", sample_error)
        finally:
            if ema is not None:
                ema.restore(params)
    curve = _loss_curve(out, step, evaluation)
    run = {
        "trainer_version": __version__,
        "dataset": str(cfg.dataset),
        "dataset_id": dataset_id,
        "base_model": str(cfg.pretrained_model),
        "init_module": init_desc,
        "variant": variant,
        "method": cfg.train.method,
        "steps": step,
        "final_loss": loss,
        "hyperparameters": {k: as_dict(cfg)[k] for k in ("data", "noise", "train")},
        "skipped_clips": skipped,
        "eval": evaluation,
        "resumed_from": str(resume_dir) if resume_dir else None,
        "outputs": {"motion_module": str(module), "motion_adapter": str(adapter),
                    "samples": samples, "compare": compare, "compare_left": left,
                    "loss_curve": curve,
                    "sample_error": sample_error,
                    "motion_lora": str(lora_files[0]) if lora_files[0] else None,
                    "motion_lora_diffusers": str(lora_files[1]) if lora_files[1] else None},
        "started_at": _iso(started),
        "finished_at": _iso(time.time()),
    }
    write_json(out / "run.json", run)
    return run


def _loss_curve(out: Path, step: int, evaluation: dict | None) -> str | None:
    from trainer.curve import draw_loss_curve, read_losses

    ev = evaluation or {}
    loss = {k: (ev.get(k) or {}).get("loss") for k in ("before", "after")}
    try:
        return str(draw_loss_curve(read_losses(out / "loss.jsonl"), loss["before"],
                                   loss["after"], step, out / "loss_curve.png",
                                   f"run {out.name}: training and held-out loss"))
    except (OSError, ValueError) as exc:  # a review aid; never the run's failure
        log.error("loss curve not drawn: %s", exc)
        return None


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
