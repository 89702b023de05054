"""Find a model's files: a local folder, or a Hugging Face repo id fetched once into the
Hugging Face cache (later runs, offline ones too, read the cache).

    folder = model_folder("SmilingWolf/wd-vit-tagger-v3", ("model.onnx", "selected_tags.csv"),
                          "tagger", extra="tag")
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from hydrus_motion.errors import HydrusMotionError, MissingExtra

log = logging.getLogger(__name__)

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelError(HydrusMotionError):
    """A model cannot be found, downloaded or used; the message names it and why."""


def model_folder(spec: str, required: tuple[str, ...], what: str, *, extra: str,
                 whole_repo: bool = False, ignore: tuple[str, ...] = ()) -> Path:
    """The folder holding `required` files for `spec` (a folder path or a repo id).

    A repo download fetches only `required`, or with `whole_repo` all but `ignore`."""
    path = Path(spec).expanduser()
    if path.is_dir():
        missing = [name for name in required if not (path / name).is_file()]
        if missing:
            raise ModelError(f"{what} model folder {path}: missing {', '.join(missing)}",
                             hint=f"a {what} folder needs {', '.join(required)}")
        return path
    if path.exists() or not _REPO_ID.match(spec):
        raise ModelError(f"{what} model {spec!r}: not a folder and not a Hugging Face repo id",
                         hint="give a folder, or an id such as owner/name")
    return _download(spec, required, what, extra, None if whole_repo else required, ignore)


def _download(repo_id: str, required: tuple[str, ...], what: str, extra: str,
              allow: tuple[str, ...] | None, ignore: tuple[str, ...]) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise MissingExtra(f"the {what}", extra, exc.name or "huggingface_hub") from None
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=list(allow) if allow else None,
                                        ignore_patterns=list(ignore) or None))
    except Exception as exc:  # hub errors share no base class worth naming here
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{what} model {repo_id!r} is not in the Hugging Face cache and could not be "
            f"downloaded ({type(exc).__name__}: {reason})",
            hint=f"run once with network access to cache it, or set the {what} model to a "
                 f"local folder (annotate.{what}.model); null turns the {what} off") from None
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:
        raise ModelError(f"{what} model {repo_id!r} has no {', '.join(missing)}",
                         hint=f"is it a {what} model?")
    log.debug("%s model %s at %s", what, repo_id, folder)
    return folder
