"""`hydrus-motion tag CLIP...`: annotate clips and print what each got."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from hydrus_motion.config import Config
from hydrus_motion.progress_bar import bars_wanted, progress_bar

log = logging.getLogger("hydrus_motion")


def cmd_tag(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    import dataclasses

    from hydrus_motion.annotate import annotate_clips

    def chosen(value: str | None, current: str | None) -> str | None:
        return current if value is None else (None if value.lower() == "none" else value)

    a = cfg.annotate
    a = dataclasses.replace(
        a, tagger=dataclasses.replace(a.tagger, model=chosen(args.tagger_model, a.tagger.model)),
        captioner=dataclasses.replace(a.captioner,
                                      model=chosen(args.captioner_model, a.captioner.model)))
    cfg = dataclasses.replace(cfg, annotate=a)
    with progress_bar("tag", "clip", bars_wanted(args.json)) as progress:
        results = annotate_clips(args.clips, cfg, progress=progress)
    if not args.json:
        for r in results:
            _print_annotation(r.as_dict(cfg))
    failed = sum(not r.ok for r in results)
    log.info("tag: %d clip(s)%s", len(results), f": {failed} failed" if failed else "")
    return {"clips": [r.as_dict(cfg) for r in results],
            "summary": {"clips": len(results), "failed": failed}}, 1 if failed else 0


def _print_annotation(a: dict[str, Any]) -> None:
    print(a["path"])
    for error in a["errors"]:
        print(f"  error: {error}")
    if a["quality"]:
        q = a["quality"]
        print("  quality: " + ", ".join(f"{k} {v}" for k, v in q.items()
                                        if not isinstance(v, dict | list))
              + (f", near duplicate of {a['near_duplicate_of']}" if a["near_duplicate_of"]
                 else ""))
    if a["tags"]:
        scored = {**a["tags"]["character"], **a["tags"]["general"]}
        print("  tags: " + ", ".join(f"{t} ({s:.2f})" for t, s in scored.items()))
        if a["tags"]["rating"]:
            print("  rating: " + ", ".join(f"{t} ({s:.2f})"
                                           for t, s in a["tags"]["rating"].items()))
    if a["caption"] is not None:
        print(f"  caption: {a['caption']}")
    if a["hydrus_tags"]:
        print("  hydrus tags: " + ", ".join(a["hydrus_tags"]))
