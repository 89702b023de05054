"""Which files the watch folder takes (daemon.include / exclude), and the side files that
go with a video into the archive."""

from __future__ import annotations

from hydrus_motion.config import config_from_dict
from hydrus_motion.ingest.dispose import finish_video, quarantine, side_files
from hydrus_motion.ingest.intake import Intake
from hydrus_motion.store import open_store
from hydrus_motion.store.queue import JobQueue

SIDE = ["film.srt", "film.en.ass", "film.vtt", "film.nfo", "film.info.json", "film.webp",
        "film.description"]
OTHERS = ["notes.txt", "folder.jpg", "cover.png", "Thumbs.db", "readme.md", "film2.srt"]


def taken_names(tmp_path, files: list[str], **daemon) -> set[str]:
    watch = tmp_path / "watch"
    for name in files:
        (watch / name).parent.mkdir(parents=True, exist_ok=True)
        (watch / name).write_bytes(name.encode())  # distinct content: no duplicates
    cfg = config_from_dict({"paths": {"state_dir": str(tmp_path / "state")},
                            "daemon": {"watch_dir": str(watch), "settle_s": 0, **daemon}})
    store = open_store(tmp_path / "state")
    intake = Intake(cfg, JobQueue(store))
    intake.pass_once()
    intake.pass_once()
    rows = store.conn.execute("SELECT name FROM sources").fetchall()
    return {r[0] for r in rows}


def test_the_default_takes_video_containers_only_and_leaves_the_rest(tmp_path):
    videos = ["film.mp4", "b.MKV", "c.webm", "d.mov", "e.avi", "f.ts", "g.m2ts", "h.mpg",
              "i.wmv", "j.flv", "k.m4v", "deeper/l.mp4"]
    names = taken_names(tmp_path, videos + SIDE + OTHERS)
    assert names == {v.rpartition("/")[2] for v in videos}
    left = {p.name for p in (tmp_path / "watch").iterdir() if p.is_file()}
    assert set(SIDE + OTHERS) <= left  # never moved, never quarantined
    assert not (tmp_path / "state" / "quarantine").exists()


def test_include_and_exclude_globs_by_name_or_relative_path(tmp_path):
    names = taken_names(tmp_path, ["a.mp4", "a.sample.mp4", "skip/b.mp4", "keep/c.mkv",
                                   "d.gif"],
                        include=["*.mp4", "*.MKV", "*.gif"],
                        exclude=["*.sample.*", "skip/*"])
    assert names == {"a.mp4", "c.mkv", "d.gif"}


def test_side_files_follow_their_video_into_the_archive_only(tmp_path):
    watch, archive = tmp_path / "watch", tmp_path / "archive"
    watch.mkdir()
    for name in ["film.mp4", "film.mp4.scenes.txt", *SIDE, *OTHERS]:
        (watch / name).write_text(name)
    assert [p.name for p in side_files(watch / "film.mp4")] == sorted(SIDE)
    (archive).mkdir()
    (archive / "film.mp4").write_text("an older film of the same name")
    moved = finish_video(watch / "film.mp4", "move", archive, "ab" * 32)
    assert moved == archive / f"film-{'ab' * 6}.mp4"  # the name was taken
    for name in SIDE:  # renamed with their video: film.en.ass -> film-<hash>.en.ass
        assert (archive / (moved.stem + name[len("film"):])).read_text() == name
    assert (archive / f"{moved.name}.scenes.txt").exists()
    assert sorted(p.name for p in watch.iterdir()) == sorted(OTHERS)

    (watch / "bad.mp4").write_text("x")
    (watch / "bad.srt").write_text("subtitles")
    quarantine(watch / "bad.mp4", tmp_path / "quarantine", "cd" * 32, "detect", "broken")
    assert (watch / "bad.srt").exists()  # a broken video's subtitles wait for the fixed one
