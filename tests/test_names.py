"""Names and sidecars people actually have (issue 18): a 250-byte name, a newline in the
name, a sidecar saved with a byte-order mark, a non-ASCII digit, a hand-made sidecar
older than its video; through `scenes`, `slice`, `ingest` and the daemon."""

from __future__ import annotations

import json
import logging
import os
import shutil
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import ALL_KEY, make_scenes_video, run_cli, start_fake_hydrus
from daemon_harness import DaemonUnderTest, stop_all

from hydrus_motion.errors import SidecarError
from hydrus_motion.files import NAME_MAX
from hydrus_motion.pipeline import keep_hand_made, sidecar_is_current
from hydrus_motion.records import Scene, SceneList
from hydrus_motion.scenes.sidecar import (
    default_sidecar_path,
    read_header,
    read_sidecar,
    render_sidecar,
    write_sidecar,
)

LONG = "é" * 100 + "x" * 46 + ".mp4"  # 250 bytes in UTF-8
NEWLINE = "two\nlines.mp4"
FPS = Fraction(30)


def names_fit(folder: Path) -> None:
    for path in folder.rglob("*"):
        assert len(path.name.encode()) <= NAME_MAX, path.name


def sample(name: str = "film.mp4") -> SceneList:
    scenes = (Scene(1, 0, 30, 0.0, 1.0), Scene(2, 30, 90, 1.0, 3.0))
    return SceneList(Path(name), FPS, 90, scenes, detector="adaptive x=1")


def test_a_name_with_a_newline_round_trips_through_the_header(tmp_path):
    path = tmp_path / "s.txt"
    write_sidecar(sample(NEWLINE), path, "123 bytes, fingerprint ab")
    assert read_header(path)["video"] == NEWLINE
    assert [s.end_frame for s in read_sidecar(path, Path(NEWLINE)).scenes] == [30, 90]


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "s.txt"
    path.write_bytes(b"\xef\xbb\xbf" + render_sidecar(sample()).replace("\n", "\r\n").encode())
    assert len(read_sidecar(path, Path("film.mp4")).scenes) == 2


def test_a_non_ascii_digit_is_a_line_error_naming_the_line(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text(render_sidecar(sample()) + "3 0 7²\n", encoding="utf-8")
    lines = path.read_text(encoding="utf-8").splitlines()
    with pytest.raises(SidecarError) as error:
        read_sidecar(path, Path("film.mp4"))
    assert f"{path}:{len(lines)}: expected" in str(error.value) and "7²" in str(error.value)
    frames = path.read_text(encoding="utf-8").replace("# frames: 90", "# frames: ９0")
    path.write_text(frames.replace("3 0 7²\n", ""), encoding="utf-8")
    with pytest.raises(SidecarError, match="frames: ...' is missing or invalid"):
        read_sidecar(path, Path("film.mp4"))


def test_a_long_name_gets_a_sidecar_name_that_fits_and_is_always_the_same(tmp_path):
    video = tmp_path / LONG
    sidecar = default_sidecar_path(video)
    assert len(sidecar.name.encode()) <= NAME_MAX - 20 and sidecar.name.endswith(".scenes.txt")
    assert default_sidecar_path(tmp_path / LONG) == sidecar
    assert default_sidecar_path(tmp_path / ("é" * 100 + "y" * 46 + ".mp4")) != sidecar
    short = tmp_path / "film.mp4"
    assert default_sidecar_path(short).name == "film.mp4.scenes.txt"  # old sidecars found


def test_freshness_is_judged_by_content_and_a_hand_made_sidecar_is_never_lost(
        tmp_path, caplog):
    from hydrus_motion.ingest.content import source_fingerprint

    video = tmp_path / "film.mp4"
    video.write_bytes(os.urandom(3 << 20))
    sidecar = default_sidecar_path(video)
    write_sidecar(sample(), sidecar, source_fingerprint(video))
    os.utime(sidecar, (1, 1))  # older than the video (a copy does that): still current
    assert sidecar_is_current(sidecar, video)
    with video.open("r+b") as fh:  # other content (same size): not current
        fh.seek(len(b"x") << 20)
        fh.write(b"changed")
    assert not sidecar_is_current(sidecar, video)
    assert keep_hand_made(sidecar, video) is None  # machine-made: replaced, nothing kept

    sidecar.write_text(render_sidecar(sample()))  # hand-made: no fingerprint
    assert sidecar_is_current(sidecar, video)  # newer than the video: used
    os.utime(sidecar, (1, 1))
    assert not sidecar_is_current(sidecar, video)
    caplog.set_level(logging.WARNING)
    kept = keep_hand_made(sidecar, video)
    assert kept == tmp_path / "film.mp4.scenes.txt.old" and not sidecar.exists()
    assert read_sidecar(kept, video).scenes  # the person's edits are all there
    assert "kept as film.mp4.scenes.txt.old" in caplog.text


@pytest.fixture(scope="module")
def small_video(tmp_path_factory) -> Path:
    scenes = [("testsrc2", 70), ("color=c=red", 70)]
    return make_scenes_video(tmp_path_factory.mktemp("names") / "v.mp4", scenes=scenes,
                             size="96x64")


@pytest.mark.parametrize("name", [LONG, NEWLINE], ids=["250 bytes", "newline"])
def test_odd_names_go_through_scenes_slice_and_ingest(tmp_path, small_video, name):
    hydrus = start_fake_hydrus()
    try:
        video = tmp_path / name
        shutil.copy(small_video, video)
        config = tmp_path / "c.json"
        config.write_text(json.dumps({
            "paths": {"state_dir": str(tmp_path / "state")}, "annotate": {"enabled": False},
            "encode": {"preset": "ultrafast"}, "clips": {"min_frames": 30},
            "hydrus": {"api_url": hydrus.url, "access_key": ALL_KEY, "retries": 0}}))
        for command in (["scenes", str(video)], ["slice", str(video), "--out",
                                                 str(tmp_path / "out")],
                        ["ingest", str(video)]):
            done = run_cli(*command, "--json", "--config", str(config))
            assert done.returncode == 0, done.stderr
            assert "Traceback" not in done.stderr
            if command[0] == "slice":
                # 4 scenes (the moving box wraps); short shots are kept whole
                assert len(json.loads(done.stdout)["clips"]) == 4
            if command[0] == "ingest":
                clips = json.loads(done.stdout)["videos"][0]["clips"]
                assert [c["push"] for c in clips] == ["imported"] * 4
        assert read_header(default_sidecar_path(video))["video"] == name
        names_fit(tmp_path)
    finally:
        hydrus.stop()


def test_odd_names_go_through_the_daemon(tmp_path, small_video):
    hydrus = start_fake_hydrus()
    try:
        daemon = DaemonUnderTest(tmp_path, hydrus, clips={"min_frames": 30}).start()
        other = make_scenes_video(tmp_path / "other.mp4", size="80x64",
                                  scenes=[("testsrc2", 70), ("color=c=blue", 70)])
        shutil.copy(small_video, daemon.watch / LONG)
        shutil.copy(other, daemon.watch / NEWLINE)
        daemon.wait_for(lambda: daemon.sources() == {LONG: "done", NEWLINE: "done"},
                        "both videos")
        # 4 scenes each (the moving box wraps); short shots are kept whole (clips.trim_frames)
        assert len(daemon.query("SELECT 1 FROM clips WHERE push_status = 'pushed'")) == 8
        assert daemon.stop() == 0
        assert "Traceback" not in daemon.log.read_text()
        names_fit(daemon.state)
    finally:
        stop_all()
        hydrus.stop()
