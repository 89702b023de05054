"""`hydrus-motion export` against the Hydrus test server: review decisions in, dataset out.

Each test plays a person reviewing in Hydrus (approve, reject, edit a tag or the caption,
un-approve, delete) and checks that the next export holds exactly that, that only new
clips are downloaded, and that a failed export leaves the previous dataset as it was.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ALL_KEY, start_fake_hydrus

from hydrus_motion.cli import main
from hydrus_motion.config import config_from_dict
from hydrus_motion.hydrus.gateway import connect_gateway

MY_TAGS = "6c6f63616c2074616773"
DOWNLOAD = ("GET", "/get_files/file")


@pytest.fixture()
def hydrus():
    fake = start_fake_hydrus()
    yield fake
    fake.stop()


def write_config(tmp_path: Path, fake, **dataset) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({
        "paths": {"state_dir": str(tmp_path / "state")},
        "hydrus": {"api_url": fake.url, "access_key": ALL_KEY, "backoff_s": 0, "retries": 1},
        "dataset": dataset}))
    return str(path)


def add_clip(fake, path: Path, tags: list[str], caption: str | None = None) -> str:
    """A clip as ingest leaves it in Hydrus: the file, our tags, our notes."""
    cfg = config_from_dict({"hydrus": {"api_url": fake.url, "access_key": ALL_KEY}})
    gateway = connect_gateway(cfg)
    file_hash = gateway.import_file(path).hash
    gateway.add_tags(file_hash, ["motion:clip", "motion:pending", "source:film", *tags])
    notes = {"hydrus-motion": json.dumps({"source": {"name": "film.mp4", "sha256": "ab" * 32},
                                          "clip": {"scene": 1, "fps": 10.0, "frames": 10}})}
    if caption:
        notes["caption"] = caption
    gateway.set_notes(file_hash, notes)
    return file_hash


def approve(fake, *hashes: str) -> None:
    for h in hashes:
        fake.person_edits_tags(h, add=["approved"])


def export(config: str, capsys, out: Path) -> tuple[int, dict | None, str]:
    code = main(["export", "--out", str(out), "--config", config, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else None, captured.err


def read_csv(out: Path) -> dict[str, str]:
    with (out / "metadata.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {row["videoid"]: row["name"] for row in rows}


def read_caption_files(out: Path) -> dict[str, str]:
    """videos/<id>.txt, as musubi-tuner / diffusion-pipe / kohya read them."""
    return {p.stem: p.read_text(encoding="utf-8") for p in (out / "videos").glob("*.txt")}


def downloads(fake) -> int:
    return sum(1 for r in fake.requests if r == DOWNLOAD)


@pytest.fixture()
def four_clips(hydrus, unique_mp4):
    return [
        add_clip(hydrus, unique_mp4(), ["cat", "rating:general", "long_hair"], "A cat runs."),
        add_clip(hydrus, unique_mp4(), ["dog", "character:pochi"], "A dog sits."),
        add_clip(hydrus, unique_mp4(), ["bird"], "A bird flies."),
        add_clip(hydrus, unique_mp4(), ["fish"]),
    ]


def test_each_export_reflects_exactly_what_people_decided_in_hydrus(
        tmp_path, hydrus, four_clips, capsys):
    a, b, c, d = four_clips
    config, out = write_config(tmp_path, hydrus), tmp_path / "dataset"

    approve(hydrus, a, b, c)
    code, result, _ = export(config, capsys, out)
    assert code == 0 and result["changed"]
    assert result["summary"] == {"new": 3, "kept": 0, "removed": 0, "skipped": 0}
    assert read_csv(out) == {
        a: "A cat runs., rating:general, cat, long hair",
        b: "A dog sits., pochi, dog",
        c: "A bird flies., bird"}
    for videoid in (a, b, c):  # every file whole and exactly the one Hydrus holds
        data = (out / "videos" / f"{videoid}.mp4").read_bytes()
        assert hashlib.sha256(data).hexdigest() == videoid
    assert downloads(hydrus) == 3
    assert read_caption_files(out) == read_csv(out)

    hydrus.person_edits_tags(b, add=["rejected"])  # rejected wins over approved
    code, result, _ = export(config, capsys, out)
    assert set(read_csv(out)) == {a, c}
    assert result["summary"] == {"new": 0, "kept": 2, "removed": 1, "skipped": 0}
    assert not (out / "videos" / f"{b}.mp4").exists()

    hydrus.person_edits_tags(a, add=["character:tama"], remove=["cat"])
    hydrus.person_sets_note(c, "caption", "A bird  lands\non a branch.")
    code, result, _ = export(config, capsys, out)
    assert read_csv(out) == {a: "A cat runs., rating:general, tama, long hair",
                             c: "A bird lands on a branch., bird"}
    assert read_caption_files(out) == read_csv(out)  # each clip's caption file follows
    assert downloads(hydrus) == 3  # captions changed, files did not: nothing downloaded

    hydrus.person_edits_tags(a, remove=["approved"])
    export(config, capsys, out)
    assert set(read_csv(out)) == {c}

    hydrus.person_deletes_file(c)
    approve(hydrus, d)
    code, result, _ = export(config, capsys, out)
    assert read_csv(out) == {d: "fish"}  # no caption note: its tags alone
    assert read_caption_files(out) == {d: "fish"}  # the removed clips' captions left too
    assert result["summary"] == {"new": 1, "kept": 0, "removed": 1, "skipped": 0}
    assert downloads(hydrus) == 4

    code, result, _ = export(config, capsys, out)
    assert code == 0 and not result["changed"] and downloads(hydrus) == 4
    (out / "videos" / f"{d}.txt").unlink()  # a build from before caption files
    export(config, capsys, out)
    assert read_caption_files(out) == {d: "fish"} and downloads(hydrus) == 4

    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert manifest == [{
        "videoid": d, "file": f"videos/{d}.mp4", "caption": "fish", "nl_caption": None,
        "tags": ["fish"], "frames": 10, "fps": 10.0, "width": 96, "height": 64,
        "hydrus_hash": d, "source": {"name": "film.mp4", "sha256": "ab" * 32, "scene": 1},
        "cadence": 1}]
    umask = os.umask(0)
    os.umask(umask)  # readable by a trainer or UI running as another user, as mkdir makes it
    assert out.resolve().stat().st_mode & 0o777 == 0o777 & ~umask
    info = json.loads((out / "dataset.json").read_text())
    assert info["format_version"] == 1 and info["dataset_id"] == result["dataset_id"]
    assert info["counts"]["clips"] == 1


def test_hydrus_gone_mid_export_leaves_the_previous_dataset_in_place(
        tmp_path, hydrus, four_clips, capsys):
    a, b, c, d = four_clips
    config, out = write_config(tmp_path, hydrus), tmp_path / "dataset"
    approve(hydrus, a, b)
    assert export(config, capsys, out)[0] == 0
    before = (out / "metadata.csv").read_bytes()

    approve(hydrus, c, d)
    seen_during_export = []

    def hydrus_dies_after_one_download(method: str, path: str) -> None:
        if (method, path) == DOWNLOAD:
            seen_during_export.append((out / "metadata.csv").read_bytes())
            if len(seen_during_export) == 2:
                hydrus.fail_next(100)

    hydrus.on_request = hydrus_dies_after_one_download
    code, result, err = export(config, capsys, out)
    hydrus.on_request = None
    assert code == 1 and result["ok"] is False  # --json: the failure as a JSON document
    assert "failed downloading" in result["error"]
    assert "failed downloading" in err and "after 2 tries" in err
    assert all(seen == before for seen in seen_during_export)  # never a half-built view
    assert (out / "metadata.csv").read_bytes() == before
    assert set(read_csv(out)) == {a, b}
    builds = out.parent / ".dataset.builds"
    assert not list(builds.glob(".building-*"))  # the half-built one is gone

    hydrus._failures.clear()
    code, result, _ = export(config, capsys, out)
    assert code == 0 and set(read_csv(out)) == {a, b, c, d}
    assert result["summary"]["new"] == 2


def test_a_damaged_file_fails_the_export_with_its_hash_and_keeps_the_previous(
        tmp_path, hydrus, four_clips, capsys):
    a, b, *_ = four_clips
    config, out = write_config(tmp_path, hydrus), tmp_path / "dataset"
    approve(hydrus, a)
    export(config, capsys, out)
    before = (out / "manifest.jsonl").read_bytes()

    approve(hydrus, b)
    hydrus.damage_file(b)
    code, _, err = export(config, capsys, out)
    assert code == 1
    assert f"file {b}" in err and "damaged" in err and "check file integrity" in err
    assert (out / "manifest.jsonl").read_bytes() == before
    assert not list(out.parent.glob(".dataset.builds/.building-*"))
    assert not list((out / "videos").glob(".*.part"))


def test_clips_without_a_caption(tmp_path, hydrus, unique_mp4, capsys, caplog):
    tagged = add_clip(hydrus, unique_mp4(), ["cat"])
    bare = add_clip(hydrus, unique_mp4(), [])  # only bookkeeping tags, no caption note
    approve(hydrus, tagged, bare)
    out = tmp_path / "dataset"

    code, result, err = export(write_config(tmp_path, hydrus), capsys, out)
    assert code == 0 and read_csv(out) == {tagged: "cat"}
    assert result["skipped"] == [{"videoid": bare,
                                  "reason": "no caption note and no caption tags"}]
    assert f"{bare} left out: no caption note" in caplog.text
    before = (out / "metadata.csv").read_bytes()

    code, result, err = export(write_config(tmp_path, hydrus, require_caption=True), capsys,
                               out)
    assert code == 1 and "2 approved clip(s) have no 'caption' note" in err
    assert (out / "metadata.csv").read_bytes() == before


def test_the_export_reads_as_animatediff_and_webdataset_read_it(
        tmp_path, hydrus, four_clips, capsys):
    wds = pytest.importorskip("webdataset")
    approve(hydrus, *four_clips)
    out = tmp_path / "dataset"
    code, _, _ = export(write_config(tmp_path, hydrus, shards=True, shard_max_clips=3),
                        capsys, out)
    assert code == 0

    # AnimateDiff's WebVid10M: csv.DictReader over metadata.csv, {videoid}.mp4 in one folder.
    with (out / "metadata.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [set(r) for r in rows] == [{"videoid", "name", "page_dir"}] * 4
    for row in rows:
        video = out / "videos" / f"{row['videoid']}.mp4"
        probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                                "stream=nb_read_frames", "-of", "csv=p=0", str(video)],
                               capture_output=True, text=True, check=True)
        assert int(probe.stdout.strip()) == 10 and row["name"]

    shards = sorted(str(p) for p in (out / "shards").glob("*.tar"))
    assert [Path(s).name for s in shards] == ["shard-000000.tar", "shard-000001.tar"]
    samples = list(wds.WebDataset(shards, shardshuffle=False))
    assert sorted(s["__key__"] for s in samples) == sorted(four_clips)
    captions = {r["videoid"]: r["name"] for r in rows}
    for sample in samples:
        assert hashlib.sha256(sample["mp4"]).hexdigest() == sample["__key__"]
        assert sample["txt"].decode() == captions[sample["__key__"]]
        assert json.loads(sample["json"])["videoid"] == sample["__key__"]


def test_the_trainer_reads_the_export_and_names_it_by_its_dataset_id(
        tmp_path, hydrus, four_clips, capsys):
    data = pytest.importorskip("trainer.data")
    approve(hydrus, *four_clips)
    out = tmp_path / "dataset"
    _, result, _ = export(write_config(tmp_path, hydrus), capsys, out)
    clips, problems = data.load_clips(out)
    assert problems == []
    assert {c.videoid: c.caption for c in clips} == read_csv(out)
    assert {(c.frames, c.width, c.height) for c in clips} == {(10, 96, 64)}
    assert data.dataset_id(out) == result["dataset_id"]


def test_report_and_contact_sheet(tmp_path, hydrus, four_clips, capsys):
    approve(hydrus, *four_clips)
    out = tmp_path / "dataset"
    export(write_config(tmp_path, hydrus), capsys, out)
    report = (out / "report.md").read_text()
    assert "- clips: 4" in report and "- frames: 40" in report and "- duration: 4.0 s" in report
    assert "- shorter than 61 frames (one 16-frame window at stride 4): 4" in report
    assert "| 0-2 | 4 | ####################" in report
    assert "| cat | 1 |" in report and "| rating:general | 1 |" in report
    size = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=width,height",
                           "-of", "csv=p=0", str(out / "contact_sheet.jpg")],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert size == "768,108"  # one 192x108 cell per clip, up to 8 in a row
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out / "contact_sheet.jpg"),
                          "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"],
                         capture_output=True, check=True).stdout
    sheet = np.frombuffer(raw, np.uint8).reshape(108, 768)
    for n in range(4):  # every cell holds a picture (testsrc2), not a flat placeholder
        assert sheet[:, n * 192:(n + 1) * 192].std() > 20


def test_builds_are_switched_atomically_and_old_ones_pruned(
        tmp_path, hydrus, four_clips, capsys):
    config, out = write_config(tmp_path, hydrus, keep_builds=1), tmp_path / "dataset"
    built = []
    for clip in four_clips[:3]:
        approve(hydrus, clip)
        built.append(export(config, capsys, out)[1]["build"])
    assert out.is_symlink() and out.resolve() == Path(built[-1])
    kept = {str(p) for p in (tmp_path / ".dataset.builds").iterdir()}
    assert kept == set(built[1:])  # the current one and the one before it


def test_where_links_cannot_be_made_the_folder_is_swapped_by_rename(
        tmp_path, hydrus, four_clips, capsys, monkeypatch):
    def no_symlinks(*args, **kwargs):
        raise OSError("symbolic link privilege not held")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    config, out = write_config(tmp_path, hydrus), tmp_path / "dataset"
    approve(hydrus, four_clips[0])
    export(config, capsys, out)
    approve(hydrus, four_clips[1])
    code, result, _ = export(config, capsys, out)
    assert code == 0 and result["summary"] == {"new": 1, "kept": 1, "removed": 0, "skipped": 0}
    assert out.is_dir() and not out.is_symlink()
    assert set(read_csv(out)) == set(four_clips[:2])


def test_a_folder_that_is_not_a_dataset_is_never_touched(tmp_path, hydrus, four_clips, capsys):
    out = tmp_path / "my documents"
    out.mkdir()
    (out / "thesis.txt").write_text("irreplaceable")
    approve(hydrus, four_clips[0])
    code, _, err = export(write_config(tmp_path, hydrus), capsys, out)
    assert code == 1 and "not a dataset hydrus-motion built" in err
    assert [p.name for p in out.iterdir()] == ["thesis.txt"]


def test_exclude_tags_leave_flagged_clips_out_and_cadence_reaches_the_manifest(
        tmp_path, hydrus, unique_mp4, capsys):
    texty = add_clip(hydrus, unique_mp4(), ["cat", "quality:text", "quality:subtitles"], "A cat.")
    twos = add_clip(hydrus, unique_mp4(), ["dog", "motion:on twos"], "A dog.")
    plain = add_clip(hydrus, unique_mp4(), ["bird"], "A bird.")
    approve(hydrus, texty, twos, plain)
    out = tmp_path / "dataset"
    code, result, _ = export(write_config(tmp_path, hydrus, exclude_tags=["Quality:Text"]),
                             capsys, out)
    assert code == 0 and result["summary"]["skipped"] == 1
    assert result["skipped"] == [{"videoid": texty,
                                  "reason": "tagged quality:text (dataset.exclude_tags)"}]
    manifest = {r["videoid"]: r for r in map(json.loads,
                                             (out / "manifest.jsonl").read_text().splitlines())}
    assert set(manifest) == {twos, plain}
    assert manifest[twos]["cadence"] == 2 and manifest[plain]["cadence"] == 1
    # a person removing the tag in Hydrus brings the clip back in the next export
    hydrus.person_edits_tags(texty, remove=["quality:text"])
    code, result, _ = export(write_config(tmp_path, hydrus, exclude_tags=["quality:text"]),
                             capsys, out)
    assert code == 0 and texty in read_csv(out)
