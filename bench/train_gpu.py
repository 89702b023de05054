"""Motion-module training throughput and peak memory: our settings vs the official loop's.

Full-size SD 1.5 architecture (UNet, VAE, CLIP ViT-L text encoder) with random weights,
a v3-style motion adapter, batch 1, 16 frames, at 256x256 and 512x512. Both settings
run the trainer's own step (trainer.loop.compute_loss) under accelerate:

  official  fp32 weights + fp16 autocast + GradScaler, no gradient checkpointing, VAE and
            text encoder run every step (no cache) -- guoyww/AnimateDiff train.py's
            settings, with PyTorch SDPA in place of its required xformers
  ours      frozen weights bf16, motion modules fp32, bf16 autocast, gradient checkpointing
            incl. the motion modules, cached latent moments + text embeddings

With --method lora (or full,lora), "ours" also runs as a motion LoRA (train.method lora):
rank --lora-rank LoRA layers (fp32) on the motion attention, the motion modules frozen in
bf16 like the rest of the UNet; only the LoRA trains. The official setting has no LoRA.

Each (setting, method, size) runs in its own child process so peak memory is its own.

    .venv/bin/python bench/train_gpu.py                      # GPU: the table for BENCHMARKS.md
    .venv/bin/python bench/train_gpu.py --method full,lora --settings ours   # full vs LoRA
    .venv/bin/python bench/train_gpu.py --tiny --steps 2     # CPU smoke check, toy sizes
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SETTINGS = ("official", "ours")
METHODS = ("full", "lora")


def build(tiny: bool):
    import torch
    from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    if tiny:
        unet = UNet2DConditionModel(block_out_channels=(16, 16, 32, 32), norm_num_groups=8,
                                    cross_attention_dim=32, attention_head_dim=4)
        vae = AutoencoderKL(block_out_channels=(8, 8, 8, 8), norm_num_groups=4,
                            layers_per_block=1, down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4)
        text = CLIPTextConfig(vocab_size=1000, hidden_size=32, intermediate_size=37,
                              num_hidden_layers=2, num_attention_heads=4)
        adapter = MotionAdapter(block_out_channels=(16, 16, 32, 32), motion_norm_num_groups=8,
                                use_motion_mid_block=False)
    else:  # the library defaults are SD 1.5's shapes; CLIP ViT-L/14 text tower
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                            down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4)
        text = CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                              num_hidden_layers=12, num_attention_heads=12,
                              max_position_embeddings=77)
        adapter = MotionAdapter(use_motion_mid_block=False)
    return unet, vae, CLIPTextModel(text), adapter


class _Tokenizer:
    """Stands in for CLIPTokenizer: fixed random ids (the text encoder's cost is the same)."""

    model_max_length = 77

    def __init__(self, vocab: int):
        self.vocab = vocab

    def __call__(self, captions, **_):
        import torch

        ids = torch.randint(0, self.vocab, (len(captions), 77))
        return type("Tokens", (), {"input_ids": ids})()


def run_one(setting: str, size: int, frames: int, steps: int, warmup: int, tiny: bool,
            method: str = "full", lora_rank: int = 32) -> dict:
    import torch
    from accelerate import Accelerator
    from diffusers import DDPMScheduler

    from trainer.loop import compute_loss
    from trainer.models import checkpoint_motion_modules, motion_modules, motion_unet

    official = setting == "official"
    accelerator = Accelerator(mixed_precision="fp16" if official else "bf16")
    device = accelerator.device
    unet2d, vae, text_encoder, adapter = build(tiny)
    unet = motion_unet(unet2d, adapter)
    del unet2d, adapter  # the motion UNet holds copies; 3.4 GB of host memory back
    weight_dtype = torch.float32 if official else torch.bfloat16
    unet.to(weight_dtype)
    for module in motion_modules(unet) if method == "full" else ():
        module.to(torch.float32)
    if not official:
        unet.enable_gradient_checkpointing()
        checkpoint_motion_modules(unet)
    if method == "lora":  # as trainer.loop does for train.method lora
        from trainer.lora import add_motion_lora

        add_motion_lora(unet, lora_rank, float(lora_rank))
    vae.requires_grad_(False).to(device, weight_dtype)
    text_encoder.requires_grad_(False).to(device, weight_dtype)
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-2)
    unet, optimizer = accelerator.prepare(unet, optimizer)
    scheduler = DDPMScheduler(beta_schedule="linear", beta_start=0.00085, beta_end=0.012,
                              clip_sample=False)
    tokenizer = _Tokenizer(text_encoder.config.vocab_size)
    latent = size // 8
    latent_ch = vae.config.latent_channels
    hidden = text_encoder.config.hidden_size

    def batch():
        if official:  # pixels in, VAE + text encoder in the step
            return {"pixels": torch.rand(1, frames, 3, size, size, device=device) * 2 - 1,
                    "caption": ["a clip"]}
        return {"latent_mean": torch.randn(1, latent_ch, frames, latent, latent, device=device),
                "latent_std": torch.rand(1, latent_ch, frames, latent, latent, device=device),
                "embeds": torch.randn(1, 77, hidden, device=device)}

    autocast = torch.autocast(device.type, dtype=torch.float16, enabled=official and
                              device.type == "cuda")
    cuda = device.type == "cuda"

    def step():
        with autocast:  # the official loop autocasts the whole step, VAE included
            loss = compute_loss(unet, batch(), (vae, text_encoder, tokenizer), scheduler,
                                weight_dtype, device)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    losses = [step() for _ in range(steps)]
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return {"setting": setting, "method": method, "size": size, "frames": frames,
            "steps": steps, "trainable_m": sum(p.numel() for p in params) / 1e6,
            "it_per_s": steps / elapsed, "s_per_it": elapsed / steps,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            "reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if cuda else None,
            "loss": losses[-1], "device": torch.cuda.get_device_name() if cuda else "cpu",
            "torch": torch.__version__}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help="which to run (default: both, for the ratio)")
    parser.add_argument("--method", default="full",
                        help="full, lora or full,lora (LoRA runs the 'ours' setting only)")
    parser.add_argument("--lora-rank", type=int, default=32)
    parser.add_argument("--tiny", action="store_true", help="toy model sizes (CPU smoke check)")
    parser.add_argument("--one", metavar="SETTING:SIZE", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.tiny and args.sizes == "256,512":
        args.sizes, args.frames = "64", min(args.frames, 4)
    methods = args.method.split(",")
    if set(methods) - set(METHODS):
        parser.error(f"--method: {args.method!r}; choose from {', '.join(METHODS)}")
    if args.one:
        setting, method, size = args.one.split(":")
        print(json.dumps(run_one(setting, int(size), args.frames, args.steps, args.warmup,
                                 args.tiny, method, args.lora_rank)))
        return 0
    runs = [(setting, method) for method in methods for setting in args.settings.split(",")
            if method == "full" or setting == "ours"]
    results = []
    for size in map(int, args.sizes.split(",")):
        for setting, method in runs:
            argv = [sys.executable, __file__, "--one", f"{setting}:{method}:{size}", "--frames",
                    str(args.frames), "--steps", str(args.steps), "--warmup", str(args.warmup),
                    "--lora-rank", str(args.lora_rank)]
            argv += ["--tiny"] if args.tiny else []
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            if proc.returncode != 0:  # out of memory is a result, not a crash of the bench
                tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
                results.append({"setting": setting, "method": method, "size": size,
                                "error": tail[0]})
            else:
                results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), file=sys.stderr)
    print(f"{'size':>10} {'setting':>9} {'method':>6} {'trained M':>9} {'it/s':>8} {'s/it':>8} "
          f"{'peak GiB':>9} {'x official':>10}")
    for size in map(int, args.sizes.split(",")):
        base = next((r for r in results if r["size"] == size and r["setting"] == "official"
                     and "error" not in r), None)
        for r in (r for r in results if r["size"] == size):
            head = f"{size:>5}x{args.frames:<4} {r['setting']:>9} {r['method']:>6}"
            if "error" in r:
                print(f"{head} failed: {r['error']}")
                continue
            ratio = r["it_per_s"] / base["it_per_s"] if base else float("nan")
            peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "n/a"
            print(f"{head} {r['trainable_m']:9.1f} {r['it_per_s']:8.3f} {r['s_per_it']:8.3f} "
                  f"{peak:>9} {ratio:10.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
