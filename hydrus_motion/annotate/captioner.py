"""Video captions from a transformers image-text-to-text model that reads several images
(SmolVLM2, SmolVLM/Idefics3, Qwen2-VL, LLaVA-OneVision, ...).

A clip is shown as its sampled frames, in order, as several images in one user message
with the prompt after them: every such model's chat template and processor accept that,
and we already hold the frames, so no second decoder (or video-reader package) is needed.
Clips are generated in batches (left padding), greedy, so a re-run gives the same text.

    captioner = TransformersCaptioner(cfg.annotate.captioner)
    captioner.caption([[frame, frame, frame]])   # ['A dog runs across a lawn.']
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from hydrus_motion.annotate.models import ModelError, model_folder
from hydrus_motion.config import CaptionerConfig
from hydrus_motion.errors import MissingExtra

log = logging.getLogger(__name__)

# Repos often carry other formats of the same weights; transformers reads none of these.
IGNORE = ("onnx/*", "*.onnx", "*.gguf", "*.h5", "*.msgpack", "*.tflite", "*.mlmodel")


class Captioner(Protocol):
    def caption(self, clips: Sequence[Sequence[np.ndarray]]) -> list[str]:
        """One caption per clip from its BGR uint8 frames."""
        ...

    def describe(self) -> dict[str, Any]:
        ...


class TransformersCaptioner:
    def __init__(self, cfg: CaptionerConfig):
        if not cfg.model:
            raise ModelError("no captioner model is configured (annotate.captioner.model is null)")
        self.cfg = cfg
        self._loaded: tuple[Any, Any, Any, Any] | None = None  # processor, model, device, dtype

    def describe(self) -> dict[str, Any]:
        c = self.cfg
        return {"model": c.model, "prompt": c.prompt, "frames": c.frames,
                "max_new_tokens": c.max_new_tokens, "decoding": "greedy"}

    def caption(self, clips: Sequence[Sequence[np.ndarray]]) -> list[str]:
        captions: list[str] = []
        for start in range(0, len(clips), self.cfg.batch_size):
            captions += self._generate(clips[start:start + self.cfg.batch_size])
        return captions

    def _generate(self, clips: Sequence[Sequence[np.ndarray]]) -> list[str]:
        # Load first: without the `caption` extra that raises MissingExtra, which the
        # annotator reports per clip; a bare `import torch` here would end the whole run.
        processor, model, device, dtype = self.loaded
        import torch
        from PIL import Image

        texts, images = [], []
        for frames in clips:
            content = [{"type": "image"} for _ in frames]
            content.append({"type": "text", "text": self.cfg.prompt})
            texts.append(processor.apply_chat_template([{"role": "user", "content": content}],
                                                       add_generation_prompt=True))
            images.append([Image.fromarray(np.ascontiguousarray(f[:, :, ::-1])) for f in frames])
        try:
            inputs = processor(text=texts, images=images, return_tensors="pt", padding=True)
            inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device))
                      for k, v in inputs.items()}
            with torch.inference_mode():
                out = model.generate(**inputs, max_new_tokens=self.cfg.max_new_tokens,
                                     do_sample=False)
        except Exception as exc:  # out of memory, a processor that rejects the input, ...
            raise ModelError(f"captioner model {self.cfg.model!r} failed on {len(clips)} "
                             f"clip(s) ({type(exc).__name__}: {str(exc)[:300]})") from None
        new = out[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in processor.batch_decode(new, skip_special_tokens=True)]

    @property
    def loaded(self) -> tuple[Any, Any, Any, Any]:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def _load(self) -> tuple[Any, Any, Any, Any]:
        # The files first: a missing model is reported without the seconds torch takes to import.
        folder = model_folder(self.cfg.model, ("config.json",), "captioner", extra="caption",
                              whole_repo=True, ignore=IGNORE)
        try:
            import torch
            import transformers
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError as exc:
            raise MissingExtra("the captioner", "caption", exc.name or "transformers") from None
        transformers.utils.logging.disable_progress_bar()  # stderr is for our one-line logs
        _check_torchvision(folder, self.cfg.model, torch.__version__)
        device, dtype = _device_and_dtype(torch, self.cfg.device, self.cfg.dtype)
        try:
            processor = AutoProcessor.from_pretrained(folder)
            model = AutoModelForImageTextToText.from_pretrained(folder, dtype=dtype)
        except Exception as exc:  # transformers raises many kinds; all mean "cannot load"
            raise ModelError(f"captioner model {self.cfg.model!r}: transformers cannot load it "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]})",
                             hint=_load_hint()) from None
        if getattr(processor, "chat_template", None) is None:
            raise ModelError(f"captioner model {self.cfg.model!r} has no chat template",
                             hint="use an instruct/chat model")
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"  # batched generation continues after the prompt
        model.to(device).eval()
        log.info("captioner %s on %s (%s)", self.cfg.model, device, str(dtype).rsplit(".")[-1])
        return processor, model, device, dtype


def _device_and_dtype(torch: Any, device: str, dtype: str) -> tuple[str, Any]:
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ModelError("annotate.captioner.device is cuda but torch sees no CUDA GPU",
                         hint="install a CUDA build of torch, or set the device to auto")
    chosen = "cuda" if device == "cuda" or (device == "auto" and cuda) else "cpu"
    if dtype == "auto":  # half precision only where it is fast: on the GPU
        if chosen == "cpu":
            return chosen, torch.float32
        return chosen, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return chosen, getattr(torch, dtype)


# Model types whose processor needs torchvision (SmolVLM2's video processor).
NEEDS_TORCHVISION = ("smolvlm",)


def torchvision_problem() -> str | None:
    """None when torchvision imports; else why not (missing, or built for another torch)."""
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return "torchvision is not installed"
    except Exception as exc:  # a wheel built for another torch fails inside its import
        return f"torchvision does not load ({type(exc).__name__}: {str(exc)[:120]})"
    return None


def _check_torchvision(folder: Any, model: str, torch_version: str) -> None:
    import json

    try:
        model_type = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        model_type = model_type.get("model_type")
    except (OSError, ValueError, AttributeError):
        return  # transformers reports an unreadable config itself
    problem = torchvision_problem() if model_type in NEEDS_TORCHVISION else None
    if problem:
        raise ModelError(f"captioner model {model!r} ({model_type}) needs torchvision for its "
                         f"processor: {problem}",
                         hint=f"pip install torchvision (the build made for torch "
                              f"{torch_version}), or pip install 'hydrus-motion[caption]'; "
                              "or set annotate.captioner.model to a model that needs none")


def _load_hint() -> str:
    hint = "it must be an image-text-to-text model (AutoModelForImageTextToText)"
    problem = torchvision_problem()
    if problem:
        hint += (f"; some processors (SmolVLM2's video processor) need torchvision ({problem}): "
                 "pip install torchvision (the build matching your torch)")
    return hint
