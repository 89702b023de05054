"""Tiny SD 1.5-shaped models and a tiny dataset folder, built for the trainer tests.

The UNet has SD 1.5's block layout (3 cross-attention down blocks + 1 plain, 2 layers per
block), so its motion modules have the real key structure at toy widths.
"""

from __future__ import annotations

import hashlib
import json
import string
import subprocess
from pathlib import Path

UNET_CHANNELS = (16, 16, 32, 32)


def build_base(folder: Path) -> Path:
    """A diffusers SD 1.5 folder (vae, text_encoder, tokenizer, unet) with random weights."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=UNET_CHANNELS, norm_num_groups=8, cross_attention_dim=32,
        attention_head_dim=4,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    ).save_pretrained(folder / "unet")
    AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                  block_out_channels=(8, 8, 8, 8), norm_num_groups=4,
                  down_block_types=("DownEncoderBlock2D",) * 4,
                  up_block_types=("UpDecoderBlock2D",) * 4).save_pretrained(folder / "vae")
    CLIPTextModel(CLIPTextConfig(vocab_size=100, hidden_size=32, intermediate_size=37,
                                 num_hidden_layers=2, num_attention_heads=4,
                                 max_position_embeddings=77, projection_dim=32,
                                 bos_token_id=0, eos_token_id=1, pad_token_id=1)
                  ).save_pretrained(folder / "text_encoder")
    tok_dir = folder / "tokenizer_src"
    tok_dir.mkdir(parents=True, exist_ok=True)
    letters = list(string.ascii_lowercase) + [",", "."]
    vocab = ["<|startoftext|>", "<|endoftext|>"] + letters + [c + "</w>" for c in letters]
    (tok_dir / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"),
                  model_max_length=77).save_pretrained(folder / "tokenizer")
    return folder


def make_clip(path: Path, frames: int, size: str = "96x64", hue: int = 0) -> Path:
    """An H.264 clip whose brightness rises with the frame number."""
    path.parent.mkdir(parents=True, exist_ok=True)
    src = f"nullsrc=s={size}:r=24,geq=lum='mod(N*8+{hue},200)+20':cb=128:cr='128+{hue}'"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src,
                    "-frames:v", str(frames), "-c:v", "libx264", "-qp", "0",
                    "-pix_fmt", "yuv420p", str(path)], check=True, timeout=60)
    return path


def make_dataset(folder: Path, clips: list[tuple[int, str, list[str]]]) -> Path:
    """A dataset folder per the export contract: (frames, caption, tags) per clip."""
    rows = []
    for index, (frames, caption, tags) in enumerate(clips):
        tmp = make_clip(folder / f"tmp{index}.mp4", frames, hue=index * 10)
        videoid = hashlib.sha256(tmp.read_bytes()).hexdigest()
        tmp.rename(folder / "videos" / f"{videoid}.mp4") if (folder / "videos").is_dir() else \
            ((folder / "videos").mkdir(), tmp.rename(folder / "videos" / f"{videoid}.mp4"))
        rows.append({"videoid": videoid, "caption": caption, "tags": tags,
                     "nl_caption": caption, "frames": frames, "fps": 24.0, "width": 96,
                     "height": 64, "hash": videoid, "source": f"src{index}.mp4"})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "metadata.csv").write_text(
        "videoid,name,page_dir\n" + "".join(f"{r['videoid']},{r['caption']},\n" for r in rows))
    (folder / "dataset.json").write_text(json.dumps(
        {"format_version": 1, "counts": {"clips": len(rows)}, "built_at": "2026-01-01"}))
    return folder
