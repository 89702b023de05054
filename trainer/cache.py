"""On-disk caches of VAE latent moments and CLIP text embeddings.

Each clip gets a few fixed frame windows (x2 with flips); for each we store the VAE's
latent mean and std, so every step still draws a fresh latent sample. Entries are keyed
by a hash of the clip id (its sha256) and every setting that changes the tensor, so a
changed size, stride or base model never reuses a stale entry. Text embeddings are keyed
by caption and model. The VAE and text encoder are only needed while caches are built.
"""

from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path

from trainer.data import Clip, ClipDataset, caption_for
from trainer.video import BadClip, read_frames, sample_indices, window_starts

log = logging.getLogger("trainer")


def _key(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


def _save(tensors: dict, path: Path) -> None:
    import os

    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)  # a killed cache pass never leaves a half entry behind


def build_latent_cache(ds: ClipDataset, vae, cache_dir: Path, windows: int, model_id: str,
                       device, dtype) -> tuple[dict[str, list[Path]], list[str]]:
    """{videoid: [entry files]} for every clip that decodes; problems for those that don't."""
    import torch

    folder = Path(cache_dir) / "latents"
    folder.mkdir(parents=True, exist_ok=True)
    entries: dict[str, list[Path]] = {}
    problems: list[str] = []
    flips = (False, True) if ds.flip else (False,)
    for clip in ds.clips:
        w, h = ds.target_size(clip)
        stride = ds.stride_for(clip)  # a multiple of the clip's cadence (on twos: even)
        files = []
        try:
            for start in window_starts(clip.frames, ds.frames, stride, windows):
                todo = {flip: folder / (_key(clip.videoid, w, h, ds.frames, stride, start,
                                             flip, model_id) + ".safetensors")
                        for flip in flips}
                files += todo.values()
                todo = {f: p for f, p in todo.items() if not p.is_file()}
                if not todo:
                    continue
                frames = read_frames(clip.path, sample_indices(clip.frames, ds.frames,
                                                               stride, start), w, h,
                                     ds.timeout_s)
                pixels = torch.from_numpy(frames.copy()).permute(0, 3, 1, 2).float() / 127.5 - 1
                for flip, path in todo.items():
                    x = (pixels.flip(-1) if flip else pixels).to(device, dtype)
                    with torch.no_grad():
                        dist = vae.encode(x).latent_dist
                    _save({"mean": dist.mean.cpu().half(), "std": dist.std.cpu().half()}, path)
        except BadClip as exc:
            problems.append(str(exc))
            log.warning("skipping clip for the rest of the run: %s", exc)
            continue
        entries[clip.videoid] = files
    return entries, problems


def build_text_cache(captions: set[str], tokenizer, text_encoder, cache_dir: Path,
                     model_id: str, device) -> dict[str, Path]:
    import torch

    folder = Path(cache_dir) / "text"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for caption in sorted(captions):
        path = folder / (_key(caption, model_id, tokenizer.model_max_length) + ".safetensors")
        if not path.is_file():
            with torch.no_grad():
                embeds = encode_text([caption], tokenizer, text_encoder, device)[0]
            _save({"embeds": embeds.cpu().half()}, path)
        out[caption] = path
    return out


def encode_text(captions: list[str], tokenizer, text_encoder, device):
    """Last hidden state of CLIP for each caption (77 tokens, padded), as AnimateDiff does."""
    ids = tokenizer(captions, max_length=tokenizer.model_max_length, padding="max_length",
                    truncation=True, return_tensors="pt").input_ids.to(device)
    return text_encoder(ids)[0]


class CachedDataset:
    """Samples from the caches: dict(latent_mean, latent_std (C,F,h,w), embeds or caption)."""

    def __init__(self, clips: list[Clip], latents: dict[str, list[Path]],
                 texts: dict[str, Path] | None, dropout: float, tag_shuffle: bool, seed: int):
        self.clips = [c for c in clips if latents.get(c.videoid)]
        self.latents, self.texts = latents, texts
        self.dropout, self.tag_shuffle = dropout, tag_shuffle
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        from safetensors.torch import load_file

        clip = self.clips[index]
        entry = load_file(str(self.rng.choice(self.latents[clip.videoid])))
        caption = caption_for(clip, self.rng, self.dropout, self.tag_shuffle)
        item = {"latent_mean": entry["mean"].transpose(0, 1),  # (F,C,h,w) -> (C,F,h,w)
                "latent_std": entry["std"].transpose(0, 1), "videoid": clip.videoid}
        if self.texts is not None and caption in self.texts:
            item["embeds"] = load_file(str(self.texts[caption]))["embeds"]
        else:
            item["caption"] = caption
        return item
