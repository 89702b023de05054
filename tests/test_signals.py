"""Annotation signals on generated clips of known truth: optical-flow motion and camera
moves, a fade and a flicker that are not motion, drawing cadence, burned-in text, and
near duplicates across two videos (tagged, and tagged as one group in Hydrus)."""

from __future__ import annotations

import json

import pytest
from conftest import ALL_KEY, MEDIA, ffmpeg, start_fake_hydrus
from signal_media import FONT, duplicate_sources, moving_clip, on_twos_clip, plain_clip, text_clip

from hydrus_motion.annotate import annotate_clips
from hydrus_motion.annotate.motion import measure_motion, motion_tags
from hydrus_motion.annotate.sampling import FrameChoice, sample_clip
from hydrus_motion.cli import main
from hydrus_motion.config import config_from_dict
from hydrus_motion.store.db import open_store

CFG = config_from_dict({})


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    return tmp_path_factory.mktemp("signals")


def motion_of(path):
    frames = sample_clip(path, CFG.tools, size=448, tagger=FrameChoice("peak", 5),
                         window=CFG.annotate.motion.window_frames,
                         window_width=CFG.annotate.motion.flow_width)
    m = measure_motion(frames, CFG.annotate.motion)
    return m, motion_tags(m, CFG.annotate.motion)


@pytest.mark.parametrize("name, camera", [
    ("pan_left", "pan left"), ("pan_right", "pan right"), ("tilt_up", "tilt up"),
    ("tilt_down", "tilt down"), ("zoom_in", "zoom in"), ("zoom_out", "zoom out")])
def test_camera_moves_of_a_still_picture_are_labelled(media, name, camera):
    m, tags = motion_of(moving_clip(media, name))
    assert f"camera:{camera}" in tags, m
    assert "motion:static" not in tags
    if name.startswith("pan"):  # 2 px of 320 per frame at 24 fps: 0.15 widths per second
        assert abs(m.pan) == pytest.approx(0.15, rel=0.15) and abs(m.tilt) < 0.03


@pytest.mark.parametrize("name", ["static", "fade", "flicker"])
def test_a_still_picture_a_fade_and_a_flicker_are_not_motion(media, name):
    m, tags = motion_of(moving_clip(media, name))
    assert tags[:2] == ["motion:static", "camera:static"], m


def test_cadence_on_twos_and_threes_is_found_and_a_pan_on_ones_has_none(media):
    for hold, tag in ((2, "motion:on twos"), (3, "motion:on threes")):
        m, tags = motion_of(on_twos_clip(media, hold))
        assert m.cadence == hold and tag in tags, m
    m, tags = motion_of(moving_clip(media, "slow_pan"))  # every frame changes a little
    assert m.cadence == 1 and not [t for t in tags if t.startswith("motion:on ")]


@pytest.mark.skipif(not FONT.is_file(), reason="DejaVu font (fonts-dejavu-core) not installed")
def test_burned_in_text_is_flagged_by_where_it_sits_and_a_clean_clip_is_not(media):
    pytest.importorskip("rapidocr", reason="extra 'text' not installed")
    cfg = config_from_dict({"annotate": {"tagger": {"model": None},
                                         "captioner": {"model": None}}})
    paths = [plain_clip(media), text_clip(media, "subtitles"), text_clip(media, "logo")]
    clean, subs, logo = annotate_clips(paths, cfg)
    wanted = ("quality:text", "quality:subtitles", "quality:logo")
    text_tags = [{t for t in r.hydrus_tags(cfg) if t in wanted} for r in (clean, subs, logo)]
    assert text_tags == [set(), {"quality:text", "quality:subtitles"},
                         {"quality:text", "quality:logo"}]
    assert clean.text.text == 0 and subs.text.subtitles == 1 and logo.text.logo == 1
    assert subs.as_dict(cfg)["quality"]["subtitles"] == 1.0  # `tag --json` shows it


@pytest.mark.skipif(not (MEDIA / "testvideo.mp4").is_file(), reason="shared media absent")
def test_the_real_test_videos_copyright_line_is_flagged(media):
    pytest.importorskip("rapidocr", reason="extra 'text' not installed")
    clip = media / "testvideo-shot.mp4"
    ffmpeg("-i", str(MEDIA / "testvideo.mp4"), "-vf", "trim=start_frame=200:end_frame=260,"
           "setpts=PTS-STARTPTS,scale=-2:360", "-an", "-c:v", "libx264", "-preset",
           "veryfast", str(clip))
    cfg = config_from_dict({"annotate": {"tagger": {"model": None},
                                         "captioner": {"model": None}}})
    (result,) = annotate_clips([clip], cfg)
    assert "quality:text" in result.hydrus_tags(cfg) and result.text.text == 1.0
    read = result.scores()["text_read"]  # in the note and `tag --json`
    assert "Copyright © 2013 Brandon Castellano" in read and "www.bcastell.com" in read


def test_texture_the_detector_takes_for_text_is_not_text_once_read(media):
    """A fractal zoom: the detector alone boxes its edge in every frame; the recogniser
    reads nothing there (docs/CURATION.md)."""
    pytest.importorskip("rapidocr", reason="extra 'text' not installed")
    clip = media / "mandelbrot.mp4"
    ffmpeg("-f", "lavfi", "-i", "mandelbrot=size=256x144:rate=24", "-frames:v", "40",
           "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "veryfast", str(clip))
    results = {}
    for verify in (False, True):
        cfg = config_from_dict({"annotate": {"tagger": {"model": None},
                                             "captioner": {"model": None},
                                             "text": {"verify": verify}}})
        (results[verify],) = annotate_clips([clip], cfg)
    assert results[False].text.text >= 0.6  # what the detector alone says
    assert results[True].text.text == 0 and results[True].text.read == ()
    assert "quality:text" not in results[True].hydrus_tags(cfg)


def test_a_reencoded_copy_in_another_video_is_a_near_duplicate_in_hydrus_too(
        media, tmp_path, capsys):
    a, b = duplicate_sources(media)
    hydrus = start_fake_hydrus()
    try:
        config = tmp_path / "config.yaml"
        config.write_text(json.dumps({
            "paths": {"state_dir": str(tmp_path / "state")},
            "clips": {"min_frames": 33}, "encode": {"preset": "ultrafast"},
            "hydrus": {"api_url": hydrus.url, "access_key": ALL_KEY, "backoff_s": 0},
            "annotate": {"tagger": {"model": None}, "captioner": {"model": None},
                         "text": {"enabled": False}}}))
        code = main(["ingest", str(a), str(b), "--config", str(config), "--json"])
        result = json.loads(capsys.readouterr().out)
        assert code == 0, result
        (clip_a,) = result["videos"][0]["clips"]
        copy, other = sorted(result["videos"][1]["clips"], key=lambda c: -c["start_frame"])
        assert "quality:near duplicate" in hydrus.current_tags(copy["sha256"])
        assert "quality:near duplicate" not in hydrus.current_tags(other["sha256"])
        assert "quality:near duplicate" not in hydrus.current_tags(clip_a["sha256"])
        group = f"duplicate group:{clip_a['sha256'][:12]}"
        assert group in hydrus.current_tags(copy["sha256"])
        assert group in hydrus.current_tags(clip_a["sha256"])
        assert not any(t.startswith("duplicate group:")
                       for t in hydrus.current_tags(other["sha256"]))
        note = json.loads(hydrus.db.notes[copy["sha256"]]["hydrus-motion"])
        assert note["models"]["near_duplicate_of"] == clip_a["sha256"]
        store = open_store(tmp_path / "state")
        (related,) = store.conn.execute("SELECT related_at FROM signatures WHERE sha256 = ?",
                                        (copy["sha256"],)).fetchone()
        assert related is not None  # sent once; a later push does not send it again
        store.close()
    finally:
        hydrus.stop()


def test_without_the_text_extra_annotation_goes_on_and_says_so_once(media, monkeypatch,
                                                                    caplog):
    import sys

    monkeypatch.setitem(sys.modules, "rapidocr", None)  # as on an install without [text]
    cfg = config_from_dict({"annotate": {"tagger": {"model": None},
                                         "captioner": {"model": None},
                                         "text": {"device": "cpu"}}})  # a fresh detector
    results = annotate_clips([moving_clip(media, "pan_left"), moving_clip(media, "static")],
                             cfg)
    for r in results:
        (error,) = r.errors
        assert error.startswith("text: ") and "pip install 'hydrus-motion[text]'" in error
        assert r.text is None and r.motion is not None  # the rest is still measured
    assert "camera:pan left" in results[0].hydrus_tags(cfg)
    said = [rec for rec in caplog.records if "needs the Python package 'rapidocr'"
            in rec.getMessage()]
    assert len(said) == 1


def test_a_chain_of_near_duplicates_is_one_group_and_a_failed_tagging_is_kept_for_later(
        tmp_path):
    from pathlib import Path

    from hydrus_motion.hydrus.gateway import HydrusUnreachable
    from hydrus_motion.hydrus.push import group_duplicates
    from hydrus_motion.store.db import PUSHED, ClipRecord
    from hydrus_motion.store.signatures import SignatureLibrary, to_group

    class Gateway:
        def __init__(self, fail_after: int | None = None):
            self.tags: dict[str, set[str]] = {}
            self.fail_after = fail_after

        def add_tags(self, sha256, tags):
            if self.fail_after is not None and sum(map(len, self.tags.values())) >= \
                    self.fail_after:
                raise HydrusUnreachable("hydrus down")
            self.tags.setdefault(sha256, set()).update(tags)

    store = open_store(tmp_path / "state")
    library = SignatureLibrary(store)
    sig = [0x0F0F_0F0F_0F0F_0F0F] * 5
    shas = [c * 64 for c in "abc"]
    for n, (sha, flip) in enumerate(zip(shas, (0, 1, 3))):  # b ~ a, c ~ b (not a)
        store.add_clip(ClipRecord(sha, Path(f"/clips/{n}.mp4"), "/v.mp4", "s", n, 0, 33, (),
                                  {}))
        store.mark(sha, PUSHED)
        library.add(sha, [s ^ ((1 << (flip * 2)) - 1) for s in sig], max_distance=4,
                    relate=True)
    assert [(p.sha256[0], p.duplicate_of[0], p.root[0]) for p in to_group(store)] == \
        [("b", "a", "a"), ("c", "b", "a")]
    down = Gateway(fail_after=2)  # tags the first pair, then Hydrus goes away
    assert group_duplicates(down, store) == 1
    assert [p.sha256[0] for p in to_group(store)] == ["c"]
    up = Gateway()
    assert group_duplicates(up, store) == 1 and to_group(store) == []
    assert up.tags == {"c" * 64: {"duplicate group:aaaaaaaaaaaa"},
                       "b" * 64: {"duplicate group:aaaaaaaaaaaa"}}
    assert group_duplicates(up, store) == 0  # each pair once
    store.close()


def test_a_band_line_most_of_a_videos_clips_share_is_a_watermark_not_subtitles():
    from hydrus_motion.annotate.text import TextScore, mark_watermarks

    def score(*lines):
        return TextScore(3, 1.0, 1.0, 0.0, 0.0, 0.01, read=lines, lines=lines)

    credit = ("Copyright © 2013 Brandon Castellano", "Copyright@ 2013 Brandon Castellano",
              "Copyright © 2013 Brandon Castelano")  # as OCR reads it frame by frame
    clips = [score(credit[0]), score(credit[1]), score(credit[2], credit[0]),
             score("I never said that, he whispered"), None]
    marked = mark_watermarks(clips, min_clips=3)
    assert [s.watermark for s in marked[:3]] == [1.0, 1.0, 1.0]
    assert [s.subtitles for s in marked[:3]] == [0.0, 0.0, 0.0]
    assert marked[3] == clips[3] and marked[4] is None  # dialogue stays subtitles
    dialogue = [score(line) for line in ("Where were you last night?", "Out. Why?",
                                         "You never said you were going out.",
                                         "I never said that, he whispered")]
    assert mark_watermarks(dialogue, min_clips=3) == dialogue
    assert mark_watermarks(clips[:2], min_clips=3) == clips[:2]  # too few to tell


@pytest.mark.skipif(not (MEDIA / "testvideo.mp4").is_file(), reason="shared media absent")
def test_the_real_copyright_line_on_every_shot_is_a_watermark(media):
    pytest.importorskip("rapidocr", reason="extra 'text' not installed")
    shots = []
    for first, last in ((40, 100), (200, 260), (420, 480)):
        shots.append(media / f"testvideo-{first}.mp4")
        ffmpeg("-i", str(MEDIA / "testvideo.mp4"), "-vf", f"trim=start_frame={first}:"
               f"end_frame={last},setpts=PTS-STARTPTS,scale=-2:360", "-an", "-c:v",
               "libx264", "-preset", "veryfast", str(shots[-1]))
    cfg = config_from_dict({"annotate": {"tagger": {"model": None},
                                         "captioner": {"model": None}}})
    for result in annotate_clips(shots, cfg):
        tags = result.hydrus_tags(cfg)
        assert {"quality:text", "quality:watermark", "quality:logo"} <= set(tags)
        assert "quality:subtitles" not in tags and result.scores()["watermark"] == 1.0
