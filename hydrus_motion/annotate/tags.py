"""From per-frame tag probabilities to a clip's tags (WD14 / WD v3 conventions).

Per clip we average each tag's probability over the sampled frames, so a tag must hold for
the clip, not flash in one frame. Then, as SmilingWolf's reference app does: the rating is
the most probable of the rating rows; general and character tags pass a threshold each
(0.35 / 0.85) or MCut (the midpoint of the largest gap between sorted probabilities; at
least 0.15 for characters); names use spaces for underscores, except kaomoji like `^_^`.

    tag_list = read_tag_list(Path("selected_tags.csv"))
    result = aggregate(probs, tag_list, cfg.annotate.tagger)   # probs: (frames, tags)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hydrus_motion.annotate.models import ModelError
from hydrus_motion.config import TaggerConfig
from hydrus_motion.hydrus.scheme import readable_tag

RATING, GENERAL, CHARACTER = 9, 0, 4  # `category` values in selected_tags.csv
CATEGORY_NAMES = {RATING: "rating", GENERAL: "general", CHARACTER: "character"}
CHARACTER_MCUT_FLOOR = 0.15


@dataclass(frozen=True)
class TagList:
    names: tuple[str, ...]  # formatted for people (spaces, kaomoji kept)
    categories: np.ndarray  # one category code per model output


@dataclass(frozen=True)
class ScoredTag:
    name: str
    score: float


@dataclass(frozen=True)
class TagResult:
    rating: ScoredTag | None
    general: list[ScoredTag] = field(default_factory=list)
    character: list[ScoredTag] = field(default_factory=list)

    def hydrus_tags(self) -> list[str]:
        """General tags unnamespaced, `character:`, `rating:`: the peer taggers' scheme."""
        tags = [t.name for t in self.general] + [f"character:{t.name}" for t in self.character]
        return tags + ([f"rating:{self.rating.name}"] if self.rating else [])

    def as_dict(self) -> dict:
        def scored(tags: list[ScoredTag]) -> dict[str, float]:
            return {t.name: round(t.score, 4) for t in tags}
        return {"rating": self.rating and {self.rating.name: round(self.rating.score, 4)},
                "general": scored(self.general), "character": scored(self.character)}


def read_tag_list(path: Path) -> TagList:
    """selected_tags.csv (tag_id,name,category,count); ModelError names the file and row."""
    names, categories = [], []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"name", "category"} <= set(reader.fieldnames):
                raise ModelError(f"{path}: not a tagger tags file (needs columns name, "
                                 f"category; found {reader.fieldnames})")
            for row in reader:
                try:
                    categories.append(int(row["category"]))
                except (TypeError, ValueError):
                    raise ModelError(f"{path}: line {reader.line_num}: category "
                                     f"{row['category']!r} is not a number") from None
                names.append(readable_tag(row["name"] or ""))
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot read the tags file ({exc})") from None
    if not names:
        raise ModelError(f"{path}: the tags file lists no tags")
    return TagList(tuple(names), np.array(categories))


def aggregate(probs: np.ndarray, tags: TagList, cfg: TaggerConfig) -> TagResult:
    """Mean over frames (axis 0), then rating argmax and per-category thresholds."""
    mean = np.asarray(probs, dtype=np.float64).mean(axis=0)
    wanted = _filter(tags.names, cfg)
    rating = None
    rating_idx = np.flatnonzero(tags.categories == RATING)
    if rating_idx.size:
        best = int(rating_idx[np.argmax(mean[rating_idx])])
        rating = ScoredTag(tags.names[best], float(mean[best]))

    def pick(category: int, mode: str, threshold: float, floor: float = 0.0) -> list[ScoredTag]:
        idx = np.flatnonzero((tags.categories == category) & wanted)
        if not idx.size:
            return []
        cut = max(floor, mcut(mean[idx])) if mode == "mcut" else threshold
        chosen = [i for i in idx if mean[i] >= cut]
        chosen.sort(key=lambda i: -mean[i])
        return [ScoredTag(tags.names[i], float(mean[i])) for i in chosen]

    return TagResult(
        rating=rating,
        general=pick(GENERAL, cfg.general_mode, cfg.general_threshold),
        character=pick(CHARACTER, cfg.character_mode, cfg.character_threshold,
                       CHARACTER_MCUT_FLOOR))


def mcut(values: np.ndarray) -> float:
    """Midpoint of the largest gap between neighbouring sorted values (MCut)."""
    ordered = np.sort(values)[::-1]
    if ordered.size < 2:
        return float(ordered[0]) if ordered.size else 1.0
    gaps = ordered[:-1] - ordered[1:]
    t = int(np.argmax(gaps))
    return float((ordered[t] + ordered[t + 1]) / 2)


def _filter(names: tuple[str, ...], cfg: TaggerConfig) -> np.ndarray:
    def norm(tag: str) -> str:
        return readable_tag(tag.strip().lower())
    include = {norm(t) for t in cfg.include}
    exclude = {norm(t) for t in cfg.exclude}
    return np.array([(not include or n.lower() in include) and n.lower() not in exclude
                     for n in names], dtype=bool)
