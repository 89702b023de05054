"""AnimateDiff motion-module finetuning on a hydrus-motion dataset folder.

Its own package: it never imports hydrus_motion, so it runs anywhere accelerate does.

    accelerate launch -m trainer --config RUN.yaml [--resume latest]

Modules, in the order a run uses them: config (RUN.yaml), data + video (clips ->
tensors), models (SD 1.5 + motion adapter), cache (latents, text embeddings), loop (the
training loop), convert + export (original key layout, self-check, published files),
samples (validation videos).
"""

__version__ = "0.1.0"
