import dataclasses
import os
from fractions import Fraction
from pathlib import Path

import pytest

from hydrus_motion.errors import SidecarError
from hydrus_motion.records import CropBox, Scene, SceneList
from hydrus_motion.scenes.sidecar import (
    format_timecode,
    read_sidecar,
    render_sidecar,
    sidecar_unedited,
    write_sidecar,
)

FPS = Fraction(30000, 1001)


def sample() -> SceneList:
    bounds = [0, 30, 180, 720]
    scenes = tuple(Scene(i + 1, a, b, float(a / FPS), float(b / FPS))
                   for i, (a, b) in enumerate(zip(bounds, bounds[1:])))
    return SceneList(Path("film.mp4"), FPS, 720, scenes, detector="adaptive x=1")


def test_round_trip(tmp_path):
    path = tmp_path / "film.mp4.scenes.txt"
    write_sidecar(sample(), path)
    back = read_sidecar(path, Path("film.mp4"))
    assert back.fps == FPS and back.frames == 720 and back.detector == "adaptive x=1"
    assert [(s.index, s.start_frame, s.end_frame) for s in back.scenes] == [
        (1, 0, 30), (2, 30, 180), (3, 180, 720)]
    assert back.scenes[1].start == pytest.approx(1.001, abs=1e-3)
    assert not list(tmp_path.glob("*.part"))
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def test_an_edit_of_the_scene_lines_is_told_from_our_own_file(tmp_path):
    """ingest cuts an unedited sidecar of ours again in one pass (a lost state gives the
    same clips), an edited one in two passes (pipeline.cut_again_in_one_pass)."""
    path = tmp_path / "film.mp4.scenes.txt"
    write_sidecar(sample(), path)
    assert sidecar_unedited(path)
    text = path.read_text()
    path.write_text(text.replace("# One scene per line.", "# my note. One scene per line."))
    assert sidecar_unedited(path)  # a comment is not an edit
    path.write_text(text.replace("      2           30", "      2           40"))
    assert not sidecar_unedited(path)  # a cut moved
    path.write_text("\n".join(line for line in text.splitlines()
                              if not line.startswith("      3")) + "\n")
    assert not sidecar_unedited(path)  # a scene dropped
    path.write_text("\n".join(line for line in text.splitlines()
                              if not line.startswith("# written:")) + "\n")
    assert not sidecar_unedited(path)  # not known to be ours


def test_readable_by_a_person():
    text = render_sidecar(sample())
    assert "# fps: 30000/1001 (29.970)" in text
    assert "      2           30        180  00:00:01.001  00:00:06.006" in text


def test_hand_edits_are_honoured(tmp_path):
    path = tmp_path / "s.txt"
    lines = render_sidecar(sample()).splitlines()
    body = [ln for ln in lines if not ln.startswith("#")]
    head = [ln for ln in lines if ln.startswith("#")]
    # split scene 3 at frame 400 (times removed), delete scene 1
    edited = head + [body[1], "3 180 400", "4 400 720"]
    path.write_text("\n".join(edited) + "\n")
    scenes = read_sidecar(path, Path("film.mp4")).scenes
    assert [(s.index, s.start_frame, s.end_frame) for s in scenes] == [
        (1, 30, 180), (2, 180, 400), (3, 400, 720)]


@pytest.mark.parametrize("line,message", [
    ("1 50 40", "start_frame 50 must be below end_frame 40"),
    ("1 0 800", "end_frame 800 is past the video's last frame"),
    ("1 a b", "expected 'scene start_frame end_frame"),
    ("1 0 30 00:00:09.000 00:00:01.001", "start time 00:00:09.000 does not match frame 0"),
    ("1 0 30 soon later", "'soon' is not a time"),
])
def test_bad_lines_name_file_line_and_reason(tmp_path, line, message):
    path = tmp_path / "bad.scenes.txt"
    head = [ln for ln in render_sidecar(sample()).splitlines() if ln.startswith("#")]
    path.write_text("\n".join(head + [line]) + "\n")
    with pytest.raises(SidecarError) as err:
        read_sidecar(path, Path("film.mp4"))
    assert f"bad.scenes.txt:{len(head) + 1}:" in str(err.value)
    assert message in str(err.value)


def test_overlap_and_foreign_files_are_rejected(tmp_path):
    path = tmp_path / "o.txt"
    head = [ln for ln in render_sidecar(sample()).splitlines() if ln.startswith("#")]
    path.write_text("\n".join(head + ["1 0 100", "2 90 200"]) + "\n")
    with pytest.raises(SidecarError, match="overlap the scene on line"):
        read_sidecar(path, Path("film.mp4"))
    path.write_text("Scene Number,Start Frame\n")
    with pytest.raises(SidecarError, match="not a hydrus-motion scenes file"):
        read_sidecar(path, Path("film.mp4"))
    with pytest.raises(SidecarError, match="sidecar not found"):
        read_sidecar(tmp_path / "none.txt", Path("film.mp4"))


def test_timecode_format():
    assert format_timecode(3723.4567) == "01:02:03.457"


def test_crop_column_round_trip_and_hand_edits(tmp_path):
    box = CropBox(x=0, y=92, width=1280, height=536)
    scenes = sample()
    scenes = dataclasses.replace(scenes, bars_measured=True, scenes=(
        dataclasses.replace(scenes.scenes[0], crop=box), *scenes.scenes[1:]))
    path = tmp_path / "film.mp4.scenes.txt"
    write_sidecar(scenes, path)
    text = path.read_text()
    assert "# bars: measured" in text and "1280x536+0+92" in text
    back = read_sidecar(path, Path("film.mp4"))
    assert back.bars_measured and [s.crop for s in back.scenes] == [box, None, None]
    # a person: drops the times but keeps a crop, writes one, and clears one
    head = [ln for ln in text.splitlines() if ln.startswith("#")]
    path.write_text("\n".join(head + ["1 0 30 -", "2 30 180 640x360+320+180",
                                        "3 180 720 00:00:06.006 00:00:24.024 -"]) + "\n")
    back = read_sidecar(path, Path("film.mp4"))
    assert [s.crop for s in back.scenes] == [None, CropBox(320, 180, 640, 360), None]
    path.write_text("\n".join(head + ["1 0 720 0x360+0+0"]) + "\n")
    with pytest.raises(SidecarError, match="crop 0x360\\+0\\+0 keeps no picture"):
        read_sidecar(path, Path("film.mp4"))


def test_old_sidecar_without_crops_still_reads(tmp_path):
    path = tmp_path / "old.scenes.txt"
    path.write_text("# hydrus-motion scenes 1\n# fps: 30/1\n# frames: 90\n"
                    "# scene  start_frame  end_frame  start         end\n"
                    "      1            0         90  00:00:00.000  00:00:03.000\n")
    back = read_sidecar(path, Path("old.mp4"))
    assert not back.bars_measured and back.scenes[0].crop is None
