"""WD14 / WD v3 tagger (SmilingWolf's ONNX exports) on onnxruntime.

The models' conventions, which a wrong guess silently degrades: input NHWC float32 at the
size the model states (448), channels BGR, values 0-255 with no normalisation, the image
padded to a square with white (centred) before resizing; output one sigmoid probability
per row of selected_tags.csv. ffmpeg already hands us BGR frames.

Frames of many clips go through the model together, in batches of `batch_size` (or one at
a time when the export fixes the batch at 1).

    tagger = WdTagger(cfg.annotate.tagger)
    results = tagger.tag([[frame, frame], [frame]])   # one TagResult per clip
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import cv2
import numpy as np

from hydrus_motion.annotate.models import ModelError, model_folder
from hydrus_motion.annotate.tags import TagList, TagResult, aggregate, read_tag_list
from hydrus_motion.config import TaggerConfig
from hydrus_motion.errors import MissingExtra

log = logging.getLogger(__name__)

MODEL_FILES = ("model.onnx", "selected_tags.csv")


class Tagger(Protocol):
    def tag(self, clips: Sequence[Sequence[np.ndarray]]) -> list[TagResult]:
        """One result per clip from its BGR uint8 frames."""
        ...

    def describe(self) -> dict[str, Any]:
        """Model and thresholds, for provenance."""
        ...


def to_model_input(frame: np.ndarray, size: int) -> np.ndarray:
    """BGR uint8 HxWx3 -> white-padded square, resized to size x size, float32 0-255."""
    h, w = frame.shape[:2]
    side = max(h, w)
    canvas = np.full((side, side, 3), 255, np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top:top + h, left:left + w] = frame
    if side != size:  # area averages when shrinking; cubic when enlarging (as kohya does)
        interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
        canvas = cv2.resize(canvas, (size, size), interpolation=interp)
    return canvas.astype(np.float32)


class WdTagger:
    def __init__(self, cfg: TaggerConfig):
        if not cfg.model:
            raise ModelError("no tagger model is configured (annotate.tagger.model is null)")
        self.cfg = cfg
        self._session = None
        self.size = 0
        self.batch = cfg.batch_size
        self.fixed_batch = False
        self.tags: TagList | None = None
        self.providers: list[str] = []

    def describe(self) -> dict[str, Any]:
        c = self.cfg
        return {"model": c.model, "general_threshold": c.general_threshold,
                "character_threshold": c.character_threshold, "general_mode": c.general_mode,
                "character_mode": c.character_mode, "aggregation": "mean over frames"}

    def tag(self, clips: Sequence[Sequence[np.ndarray]]) -> list[TagResult]:
        self.session  # noqa: B018 - loads the model and its tag list
        assert self.tags is not None
        frames = [f for clip in clips for f in clip]
        probs = self.predict(frames) if frames else np.zeros((0, len(self.tags.names)))
        results, at = [], 0
        for clip in clips:
            results.append(aggregate(probs[at:at + len(clip)], self.tags, self.cfg))
            at += len(clip)
        return results

    def predict(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """(n frames, n tags) probabilities."""
        session = self.session
        name = session.get_inputs()[0].name
        out = []
        for start in range(0, len(frames), self.batch):
            chunk = [to_model_input(f, self.size) for f in frames[start:start + self.batch]]
            real = len(chunk)
            if self.fixed_batch:  # the export takes exactly this many: pad, then drop
                chunk += [chunk[-1]] * (self.batch - real)
            try:
                out.append(session.run(None, {name: np.stack(chunk)})[0][:real])
            except Exception as exc:  # onnxruntime's errors share no public base class
                raise ModelError(f"{self.model_path}: onnxruntime failed on a batch of "
                                 f"{len(chunk)} frames ({exc})") from None
        probs = np.concatenate(out).astype(np.float32)
        self._check_outputs(probs.shape[-1])
        return probs

    @property
    def session(self):
        if self._session is None:
            self._session = self._load()
        return self._session

    def _load(self):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingExtra("the WD tagger", "tag", exc.name or "onnxruntime") from None
        folder = model_folder(self.cfg.model, MODEL_FILES, "tagger", extra="tag")
        self.model_path, self.tags_path = folder / MODEL_FILES[0], folder / MODEL_FILES[1]
        self.tags = read_tag_list(self.tags_path)
        self.providers = _providers(ort.get_available_providers(), self.cfg.device)
        ort.disable_telemetry_events()  # unattended on people's media: no usage reports
        options = ort.SessionOptions()
        options.log_severity_level = 3  # only errors: its warnings are not ours to act on
        try:
            session = ort.InferenceSession(str(self.model_path), options,
                                           providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own untyped failures
            raise ModelError(f"{self.model_path}: onnxruntime cannot load it ({exc})") from None
        self._check_input(session.get_inputs())
        out_shape = session.get_outputs()[0].shape
        if isinstance(out_shape[-1], int):
            self._check_outputs(out_shape[-1])
        log.info("tagger %s: %dx%d input, %d tags, %s", self.cfg.model, self.size, self.size,
                 len(self.tags.names), self.providers[0])
        return session

    def _check_input(self, inputs: list) -> None:
        shape = list(inputs[0].shape) if inputs else []
        ok = (len(inputs) == 1 and len(shape) == 4 and shape[3] == 3
              and isinstance(shape[1], int) and shape[1] == shape[2]
              and inputs[0].type == "tensor(float)")
        if not ok:
            found = f"{inputs[0].type} {shape}" if inputs else "no input"
            raise ModelError(f"{self.model_path}: expects {found}, not a WD tagger input",
                             hint="WD14 / WD v3 models take one float tensor "
                                  "[batch, size, size, 3] (NHWC, BGR, 0-255)")
        self.size = shape[1]
        if isinstance(shape[0], int) and shape[0] > 0:
            self.batch, self.fixed_batch = shape[0], True  # exported with a fixed batch

    def _check_outputs(self, outputs: int) -> None:
        assert self.tags is not None
        if outputs != len(self.tags.names):
            raise ModelError(f"{self.tags_path} lists {len(self.tags.names)} tags but "
                             f"{self.model_path} gives {outputs} scores",
                             hint="the tags file must be the one published with this model")


def _providers(available: list[str], device: str) -> list[str]:
    cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not cuda:
        raise ModelError("annotate.tagger.device is cuda but onnxruntime has no CUDA provider",
                         hint="pip install 'hydrus-motion[tag-gpu]' (onnxruntime-gpu) instead "
                              "of [tag], or set the device to auto")
    if cuda and device != "cpu":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
