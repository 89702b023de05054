"""A clip's training caption from its caption note and its tags as they are in Hydrus.

Pure functions. Tags are grouped in Danbooru/NovelAI order (rating, characters, ...,
general, meta) as `dataset.tag_order` lists them; bookkeeping namespaces and the review
tags never reach a caption.

    training_caption("a cat runs", ["rating:general", "character:tama", "cat"], cfg)
    -> "a cat runs, rating:general, tama, cat"
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hydrus_motion.config import Config
from hydrus_motion.hydrus.scheme import clean_tag, readable_tag

GENERAL = "general"  # tag_order's name for unnamespaced tags
KEEP_NAMESPACE = {"rating"}  # "rating:general" reads as a rating; "general" alone would not

_EDGE_SEPARATORS = re.compile(r"^[\s,;]+|[\s,;]+$")
_EMPTY_PARTS = re.compile(r"(\s*[,;]\s*){2,}")


def caption_tags(tags: Iterable[str], cfg: Config) -> list[str]:
    """The tags that belong in a caption, in caption order, formatted for training."""
    groups: dict[str, list[str]] = {name: [] for name in cfg.dataset.tag_order}
    review = {clean_tag(cfg.hydrus.tags.approved), clean_tag(cfg.hydrus.tags.rejected)}
    for tag in sorted(set(tags)):
        namespace, sep, subtag = tag.partition(":")
        if not sep or not subtag or namespace.strip() == "":  # ":)" is a general tag
            namespace, subtag = GENERAL, tag
        if namespace not in groups or tag in review:
            continue
        shown = f"{namespace}:{subtag}" if namespace in KEEP_NAMESPACE else subtag
        groups[namespace].append(training_tag(shown, cfg.dataset.underscores))
    return [tag for name in cfg.dataset.tag_order for tag in groups[name]]


def training_tag(tag: str, underscores: str) -> str:
    """A tag as the caption spells it (dataset.underscores)."""
    if underscores == "underscores":
        return tag.replace(" ", "_")
    return readable_tag(tag)


def training_caption(note: str | None, tags: Iterable[str], cfg: Config) -> str:
    """The template filled in; separators next to an empty part are dropped."""
    text = cfg.dataset.caption_template.format(
        caption=" ".join((note or "").split()), tags=", ".join(caption_tags(tags, cfg)))
    text = _EMPTY_PARTS.sub(", ", text)
    return _EDGE_SEPARATORS.sub("", text)
