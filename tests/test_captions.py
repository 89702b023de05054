"""Training captions from a caption note and Hydrus tags (pure; no Hydrus needed)."""

from __future__ import annotations

import pytest

from hydrus_motion.config import config_from_dict
from hydrus_motion.dataset.captions import caption_tags, training_caption
from hydrus_motion.errors import ConfigError

TAGS = ["motion:clip", "motion:pending", "source:my film", "scene:3", "approved", "rejected",
        "long_hair", "1girl", "^_^", ":)", "character:hatsune_miku", "series:vocaloid",
        "creator:someone", "rating:sensitive", "meta:highres", "camera:pan"]


def cfg(**dataset):
    return config_from_dict({"dataset": dataset})


def test_tags_come_in_danbooru_order_without_bookkeeping_or_review_tags():
    assert caption_tags(TAGS, cfg()) == [
        "rating:sensitive", "hatsune miku", "vocaloid", "someone",
        "1girl", ":)", "^_^", "long hair", "highres"]


def test_underscore_style_and_kaomoji():
    assert caption_tags(["long hair", "^_^", "o_o"], cfg(underscores="underscores")) == \
        ["^_^", "long_hair", "o_o"]
    assert caption_tags(["long_hair", "^_^", "o_o", "a_b"], cfg()) == \
        ["^_^", "a b", "long hair", "o_o"]


def test_tag_order_picks_and_orders_the_groups():
    assert caption_tags(TAGS, cfg(tag_order=["general", "character"])) == \
        ["1girl", ":)", "^_^", "long hair", "hatsune miku"]
    assert caption_tags(TAGS, cfg(tag_order=["camera"])) == ["pan"]


@pytest.mark.parametrize(("note", "tags", "template", "expected"), [
    ("A girl waves.", ["1girl"], "{caption}, {tags}", "A girl waves., 1girl"),
    (None, ["1girl"], "{caption}, {tags}", "1girl"),
    ("A girl waves.", [], "{caption}, {tags}", "A girl waves."),
    (None, ["motion:clip"], "{caption}, {tags}", ""),
    ("  two\nlines  ", ["x"], "{tags}; {caption}", "x; two lines"),
    ("waves", ["1girl"], "anime, {tags}, {caption}, best", "anime, 1girl, waves, best"),
    (None, ["1girl"], "anime, {caption}, {tags}", "anime, 1girl"),
])
def test_template_drops_the_separators_of_empty_parts(note, tags, template, expected):
    assert training_caption(note, tags, cfg(caption_template=template)) == expected


def test_bad_template_and_tag_order_are_config_errors():
    with pytest.raises(ConfigError) as err:
        cfg(caption_template="{caption} {taggs}", tag_order="rating")
    text = str(err.value)
    assert "dataset.caption_template: '{caption} {taggs}' is not allowed" in text
    assert "dataset.tag_order: 'rating' is not allowed; allowed: a list" in text
