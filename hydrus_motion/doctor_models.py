"""`doctor`'s model and accelerator checks: tagger, captioner, base model, motion module,
torch and CUDA, onnxruntime and its providers.

Nothing is downloaded: a Hugging Face repo id is looked up in the local cache only, and
loaded from there. The tagger is loaded whole (onnxruntime, seconds); the captioner's
config and processor are loaded (its weights are left for first use); the base model is
checked for its files; a motion module file is read and named as each UI would load it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

from hydrus_motion.config import Config
from hydrus_motion.doctor import Check
from hydrus_motion.errors import HydrusMotionError

# Packages that each install the one `onnxruntime` module; two of them overwrite each other.
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml",
                     "onnxruntime-openvino", "onnxruntime-silicon")
ORT_FIX = "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"


def model_checks(cfg: Config) -> list[Check]:
    return [_tagger(cfg), _captioner(cfg), _base_model(cfg), _motion_module(cfg), _torch(),
            onnxruntime_check(installed_versions(ORT_DISTRIBUTIONS), cfg.annotate.tagger.device)]


def cached_folder(spec: str, required: tuple[str, ...]) -> tuple[Path | None, str]:
    """A local folder for `spec` without downloading: the folder itself, or the repo's
    snapshot in the Hugging Face cache. (None, why) when it is in neither; why starts
    with "later: " when a first use may still download it (not offline)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path, f"folder {path}"
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None, "huggingface_hub is not installed"
    try:
        folder = Path(snapshot_download(spec, local_files_only=True,
                                        allow_patterns=list(required) or None))
    except Exception:  # LocalEntryNotFoundError, or not a valid repo id
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            return None, (f"{spec!r} is not in the Hugging Face cache and HF_HUB_OFFLINE is "
                          "set: run once online to cache it, or give a local folder")
        return None, (f"later: {spec!r} is not in the Hugging Face cache yet; it is "
                      "downloaded on first use (needs network)")
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:
        return None, f"{spec!r} in the Hugging Face cache lacks {', '.join(missing)}"
    return folder, f"{spec} in the Hugging Face cache"


def _tagger(cfg: Config) -> Check:
    from hydrus_motion.annotate.wd_tagger import MODEL_FILES, WdTagger

    t = cfg.annotate.tagger
    if not cfg.annotate.enabled or not t.model:
        return Check("tagger model", True, "off (annotate.enabled or annotate.tagger.model)")
    if importlib.util.find_spec("onnxruntime") is None:
        return Check("tagger model", False, "the tagger needs onnxruntime: pip install "
                     "'hydrus-motion[tag]' (or [tag-gpu]), or set annotate.tagger.model: null")
    folder, where = cached_folder(t.model, MODEL_FILES)
    if folder is None:
        return _not_here("tagger model", where)
    tagger = WdTagger(replace(t, model=str(folder)))
    try:
        tagger.session  # noqa: B018 - loading is the check
    except HydrusMotionError as exc:
        return Check("tagger model", False, str(exc))
    return Check("tagger model", True, f"{where}: loads, {len(tagger.tags.names)} tags, "
                                       f"{tagger.size} px, on {tagger.providers[0]}")


def _captioner(cfg: Config) -> Check:
    c = cfg.annotate.captioner
    if not cfg.annotate.enabled or not c.model:
        return Check("captioner model", True, "off (annotate.enabled or "
                                              "annotate.captioner.model)")
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        return Check("captioner model", False, f"the captioner needs {missing[0]}: pip install "
                     "'hydrus-motion[caption]', or set annotate.captioner.model: null")
    folder, where = cached_folder(c.model, ())
    if folder is None:
        return _not_here("captioner model", where)
    if not (folder / "config.json").is_file():
        return Check("captioner model", False, f"{where} has no config.json")
    import torch
    from transformers import AutoConfig, AutoProcessor

    from hydrus_motion.annotate.captioner import _check_torchvision

    try:
        _check_torchvision(folder, c.model, torch.__version__)
        config = AutoConfig.from_pretrained(folder)
        AutoProcessor.from_pretrained(folder)
    except HydrusMotionError as exc:
        return Check("captioner model", False, str(exc))
    except Exception as exc:  # transformers raises many kinds; all mean "cannot load"
        return Check("captioner model", False, f"{where}: transformers cannot load it "
                     f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
    return Check("captioner model", True, f"{where}: {config.model_type} config and processor "
                                          "load (weights load on first use)")


def _not_here(name: str, why: str) -> Check:
    later = why.startswith("later: ")
    return Check(name, later, why.removeprefix("later: "))


def _base_model(cfg: Config) -> Check:
    spec = cfg.train.pretrained_model
    if not spec:
        return Check("base model", True, "train.pretrained_model not set: the nightly job "
                                         "exports only")
    path = Path(spec).expanduser()
    if path.is_dir():
        ok = (path / "model_index.json").is_file() and (path / "unet").is_dir()
        return Check("base model", ok, f"{path}: diffusers folder" if ok else
                     f"{path}: not a diffusers folder (no model_index.json and unet/)")
    if path.is_file():
        ok = path.suffix.lower() in (".safetensors", ".ckpt")
        return Check("base model", ok, f"{path}: single file ({path.stat().st_size / 1e9:.1f} "
                     "GB; its SD 1.5 config must be in the HF cache or online)" if ok else
                     f"{path}: neither .safetensors nor .ckpt")
    return Check("base model", False, f"train.pretrained_model {spec!r}: no such file or folder")


def _motion_module(cfg: Config) -> Check:
    spec = cfg.train.motion_module
    if not spec:
        return Check("motion module", True, "train.motion_module not set: the first run starts "
                                            "a fresh module")
    path = Path(spec).expanduser()
    if path.is_dir():
        ok = (path / "config.json").is_file()
        return Check("motion module", ok, f"{path}: diffusers MotionAdapter folder" if ok else
                     f"{path}: a folder without config.json (not a MotionAdapter)")
    if not path.is_file():
        return Check("motion module", False, f"train.motion_module {spec!r}: no such file")
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("safetensors") \
            is None:
        return Check("motion module", True, f"{path}: present (install the train extra to "
                                            "check its contents)")
    from trainer.models import read_state_file
    from trainer.selfcheck import detect_versions

    try:
        raw = read_state_file(path)
    except Exception as exc:
        return Check("motion module", False, f"{path}: cannot be read ({exc})")
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else {}
    versions = {ui: v for ui, v in detect_versions(state).items() if v}
    if not versions:
        return Check("motion module", False, f"{path}: no UI would load it as an AnimateDiff "
                                             "motion module")
    return Check("motion module", True, f"{path}: loads as " + ", ".join(
        f"{v} ({ui})" for ui, v in versions.items()))


def _torch() -> Check:
    if importlib.util.find_spec("torch") is None:
        return Check("torch", True, "not installed (the caption and train extras need it)")
    import torch

    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return Check("torch", True, f"torch {torch.__version__}, CUDA {torch.version.cuda}: "
                                    f"{names}")
    built = (f"built for CUDA {torch.version.cuda} but no GPU is visible (driver?)"
             if torch.version.cuda else "a CPU-only build")
    return Check("torch", True, f"torch {torch.__version__}: {built}; captions and training "
                                "run on the CPU (slow)")


def installed_versions(names: tuple[str, ...]) -> dict[str, str]:
    from importlib import metadata

    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def onnxruntime_check(installed: dict[str, str], device: str) -> Check:
    """The tagger's runtime: which package, which providers, and the CPU/GPU clash."""
    if not installed:
        return Check("onnxruntime", True, "not installed (the tag extra needs it)")
    listed = ", ".join(f"{n} {v}" for n, v in installed.items())
    if len(installed) > 1:
        return Check("onnxruntime", False, f"{listed} are installed side by side: they share "
                     "one `onnxruntime` module, so whichever was installed last wins and CUDA "
                     f"silently disappears (the tagger runs on the CPU); fix: {ORT_FIX}")
    try:
        import onnxruntime
        providers = onnxruntime.get_available_providers()
    except Exception as exc:  # a broken install raises its own errors
        return Check("onnxruntime", False, f"{listed} does not load ({exc}); reinstall it")
    cuda = "CUDAExecutionProvider" in providers
    detail = f"{listed}: providers {', '.join(providers)}"
    if "onnxruntime-gpu" in installed and not cuda:
        detail += " (no CUDA provider: are CUDA and cuDNN for this onnxruntime-gpu installed?)"
    elif "onnxruntime" in installed and device != "cpu":
        detail += " (CPU build: for the GPU, pip install 'hydrus-motion[tag-gpu]' instead)"
    return Check("onnxruntime", cuda or device != "cuda", detail)
