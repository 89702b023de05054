"""Ingest, push and reconcile against the Hydrus test server, with its faults.

The server rolls back to its last commit on `crash()` as a real client does on kill -9,
so these tests prove that nothing is lost or duplicated, and that a person's decisions
in Hydrus (a removed tag, an edited note, a deleted file) are never undone.
"""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
from conftest import ALL_KEY, SEARCH_ONLY_KEY, run_cli, start_fake_hydrus

from hydrus_motion.cli import main
from hydrus_motion.config import config_from_dict
from hydrus_motion.hydrus.gateway import connect_gateway
from hydrus_motion.hydrus.review import approved_clips
from hydrus_motion.store import open_store

NO_COMMIT_KEY = "d4" * 32  # may import, tag, search and note, but not force a commit
EXPECTED_CLIPS = 4  # scenes_video: four scenes, each long enough after trimming


@pytest.fixture()
def hydrus():
    fake = start_fake_hydrus()
    fake.keys[NO_COMMIT_KEY] = ("no commit", (1, 2, 3, 7))
    yield fake
    fake.stop()


@pytest.fixture()
def video(tmp_path, scenes_video):
    """A private copy: ingest writes the sidecar beside the video."""
    path = tmp_path / "My Film.mp4"
    path.write_bytes(scenes_video.read_bytes())
    return path


def write_config(tmp_path, fake, key=ALL_KEY, **hydrus) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({
        "paths": {"state_dir": str(tmp_path / "state")},
        "encode": {"preset": "ultrafast"},  # the push is under test, not the encoder
        "annotate": {"enabled": False},  # ... nor the annotator (test_annotate_ingest.py)
        "hydrus": {"api_url": fake.url, "access_key": key, "backoff_s": 0, "retries": 1,
                   **hydrus}}))
    return str(path)


def ingest(config: str, *videos, capsys, extra=()) -> tuple[int, dict]:
    code = main(["ingest", *map(str, videos), "--config", config, "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def reconcile(config: str, capsys) -> tuple[int, dict]:
    code = main(["reconcile", "--config", config, "--json"])
    return code, json.loads(capsys.readouterr().out)


def clip_hashes(result: dict) -> list[str]:
    return [c["sha256"] for v in result["videos"] for c in v["clips"]]


def assert_complete_in_hydrus(fake, hashes, source="my film"):
    assert len(hashes) == EXPECTED_CLIPS
    for n, file_hash in enumerate(hashes, start=1):
        assert file_hash in fake.db.files
        assert fake.current_tags(file_hash) == {"motion:clip", "motion:pending",
                                                f"source:{source}", f"scene:{n}"}
        provenance = json.loads(fake.db.notes[file_hash]["hydrus-motion"])
        assert provenance["clip"]["scene"] == n
        assert provenance["source"]["name"] == "My Film.mp4"


def test_ingest_pushes_every_clip_once_and_ingesting_again_adds_nothing(
        tmp_path, hydrus, video, capsys):
    config = write_config(tmp_path, hydrus)
    code, first = ingest(config, video, capsys=capsys)
    assert code == 0, first
    hashes = clip_hashes(first)
    assert_complete_in_hydrus(hydrus, hashes)
    assert first["summary"]["imported"] == EXPECTED_CLIPS
    assert {c["push"] for c in first["videos"][0]["clips"]} == {"imported"}
    assert ("POST", "/manage_database/force_commit") in hydrus.requests
    imports = hydrus.writes().count(("POST", "/add_files/add_file"))
    assert imports == EXPECTED_CLIPS

    writes_before = len(hydrus.writes())
    code, again = ingest(config, video, capsys=capsys)
    assert code == 0
    assert clip_hashes(again) == hashes
    assert {c["push"] for c in again["videos"][0]["clips"]} == {"unchanged"}
    assert len(hydrus.writes()) == writes_before  # not one write: a true no-op


def test_clips_already_in_hydrus_are_not_uploaded_again(tmp_path, hydrus, video, capsys):
    """A lost local state (new machine): the hash check finds the files in Hydrus."""
    code, first = ingest(write_config(tmp_path, hydrus), video, capsys=capsys)
    fresh_state = tmp_path / "again"
    fresh_state.mkdir()
    code, second = ingest(write_config(fresh_state, hydrus), video, capsys=capsys)
    assert code == 0
    assert clip_hashes(second) == clip_hashes(first)
    assert second["summary"]["already in hydrus"] == EXPECTED_CLIPS
    assert hydrus.writes().count(("POST", "/add_files/add_file")) == EXPECTED_CLIPS


def test_crash_before_hydrus_commits_then_reconcile_restores_everything(
        tmp_path, hydrus, video, capsys):
    config = write_config(tmp_path, hydrus, key=NO_COMMIT_KEY)  # no force_commit possible
    code, result = ingest(config, video, capsys=capsys)
    assert code == 0
    hashes = clip_hashes(result)
    assert ("POST", "/manage_database/force_commit") not in hydrus.requests
    hydrus.crash()  # kill -9 within the 30 s commit period: every write is gone
    assert not hydrus.db.files and not hydrus.db.notes

    code, repaired = reconcile(config, capsys)
    assert code == 0
    assert repaired["summary"]["repaired"] == EXPECTED_CLIPS
    assert_complete_in_hydrus(hydrus, hashes)

    code, again = reconcile(config, capsys)
    assert again["summary"] == {"checked": EXPECTED_CLIPS, "unchanged": EXPECTED_CLIPS}


def test_crash_after_a_forced_commit_loses_nothing(tmp_path, hydrus, video, capsys):
    code, result = ingest(write_config(tmp_path, hydrus), video, capsys=capsys)
    hydrus.crash()
    assert_complete_in_hydrus(hydrus, clip_hashes(result))


def test_crash_between_file_and_tags_is_repaired(tmp_path, hydrus, video, capsys):
    """Hydrus committed the files, then lost the tags and notes."""
    config = write_config(tmp_path, hydrus, key=NO_COMMIT_KEY)
    ingest(config, video, capsys=capsys, extra=["--no-push"])
    store = open_store(tmp_path / "state")
    records = store.due(pushed_since=0)
    gateway = connect_gateway(config_from_dict(json.loads(open(config).read())))
    for r in records:
        gateway.import_file(r.path)
    hydrus.commit()
    for r in records:
        gateway.add_tags(r.sha256, r.tags)
    hydrus.crash()
    code, result = reconcile(config, capsys)
    assert code == 0 and result["summary"]["already in hydrus"] == EXPECTED_CLIPS
    assert_complete_in_hydrus(hydrus, [r.sha256 for r in records])


def test_reconcile_never_undoes_what_a_person_decided(tmp_path, hydrus, video, capsys):
    config = write_config(tmp_path, hydrus)
    _, result = ingest(config, video, capsys=capsys)
    first, second, third, fourth = clip_hashes(result)
    hydrus.person_edits_tags(first, add=["approved"], remove=["motion:pending"])
    hydrus.person_sets_note(second, "hydrus-motion", "my own words")
    hydrus.person_deletes_file(third)
    hydrus.person_edits_tags(fourth, remove=["scene:4"])
    writes = len(hydrus.writes())

    code, outcome = reconcile(config, capsys)
    assert code == 0
    results = {c["sha256"]: c["result"] for c in outcome["clips"]}
    assert results == {first: "unchanged", second: "unchanged", third: "deleted",
                       fourth: "unchanged"}
    assert len(hydrus.writes()) == writes  # nothing re-added, nothing re-imported
    assert hydrus.current_tags(first) >= {"approved"}
    assert "motion:pending" not in hydrus.current_tags(first)
    assert hydrus.db.notes[second]["hydrus-motion"] == "my own words"
    assert third in hydrus.db.trashed
    assert open_store(tmp_path / "state").clip(third).push_status == "deleted"


@pytest.mark.expect_error_log  # ingest logs "Hydrus unreachable" as an ERROR line
def test_hydrus_down_keeps_clips_queued_until_it_is_back(tmp_path, hydrus, video, capsys):
    config = write_config(tmp_path, hydrus)
    hydrus.stop()
    code, result = ingest(config, video, capsys=capsys)
    assert code == 1
    assert "connection refused" in result["hydrus_error"]
    assert {c["push"] for c in result["videos"][0]["clips"]} == {"queued"}
    assert "connection refused" in result["videos"][0]["clips"][0]["error"]
    assert open_store(tmp_path / "state").counts() == {"queued": EXPECTED_CLIPS}

    hydrus.start()  # same port
    code, pushed = reconcile(config, capsys)
    assert code == 0 and pushed["summary"]["imported"] == EXPECTED_CLIPS
    assert_complete_in_hydrus(hydrus, clip_hashes(result))


@pytest.mark.expect_error_log  # ingest logs the refusal as an ERROR line
@pytest.mark.parametrize("problem, settings, message", [
    ("wrong key", {"key": "e5" * 32}, "Did not find an entry for that access key"),
    ("no tag permission", {"key": SEARCH_ONLY_KEY}, "lacks permission to: import and "
                                                    "delete files, edit file tags"),
    ("unknown tag service", {"tag_service": "ai tags"}, "no tag service named 'ai tags'"),
])
def test_access_problems_are_explained_and_lose_no_clip(tmp_path, hydrus, video, capsys,
                                                        caplog, problem, settings, message):
    code, result = ingest(write_config(tmp_path, hydrus, **settings), video, capsys=capsys)
    assert code == 1
    assert message in result["hydrus_error"]
    assert message in caplog.text
    assert open_store(tmp_path / "state").counts() == {"queued": EXPECTED_CLIPS}
    assert not hydrus.db.files

    code, fixed = reconcile(write_config(tmp_path, hydrus), capsys)
    assert code == 0 and fixed["summary"]["imported"] == EXPECTED_CLIPS


def test_database_busy_is_retried(tmp_path, hydrus, video, capsys):
    hydrus.fail_next(2, status=503)
    code, result = ingest(write_config(tmp_path, hydrus, retries=3), video, capsys=capsys)
    assert code == 0 and result["summary"]["imported"] == EXPECTED_CLIPS


def test_a_clip_hydrus_cannot_import_is_recorded_with_its_reason(
        tmp_path, hydrus, video, capsys):
    config = write_config(tmp_path, hydrus)
    _, result = ingest(config, video, capsys=capsys, extra=["--no-push"])
    broken = result["videos"][0]["clips"][0]
    with open(broken["path"], "r+b") as fh:  # corrupted on disk after it was recorded
        fh.seek(4)
        fh.write(b"junk")
    code, outcome = reconcile(config, capsys)
    assert code == 1
    failed = [c for c in outcome["clips"] if c["result"] == "failed"]
    assert len(failed) == 1 and "status 4" in failed[0]["detail"]
    assert "Unknown filetype" in failed[0]["detail"]
    assert outcome["summary"]["imported"] == EXPECTED_CLIPS - 1
    record = open_store(tmp_path / "state").clip(broken["sha256"])
    assert record.push_status == "failed" and "status 4" in record.last_error


def test_upload_falls_back_to_bytes_when_hydrus_cannot_read_our_folder(
        tmp_path, hydrus, video, capsys):
    hydrus.can_read_paths = False  # e.g. Hydrus in a container without our folder
    code, result = ingest(write_config(tmp_path, hydrus), video, capsys=capsys)
    assert code == 0
    assert_complete_in_hydrus(hydrus, clip_hashes(result))


def test_approved_clips_minus_rejected_with_current_tags_and_notes(
        tmp_path, hydrus, video, capsys):
    config = write_config(tmp_path, hydrus, metadata_chunk=1)
    _, result = ingest(config, video, capsys=capsys)
    first, second, third, _ = clip_hashes(result)
    hydrus.person_edits_tags(first, add=["approved", "a cat"], remove=["motion:pending"])
    hydrus.person_edits_tags(second, add=["approved", "rejected"])
    hydrus.person_edits_tags(third, add=["approved"], service="646f776e6c6f616465722074616773")
    hydrus.person_sets_note(first, "caption", "a cat walks left")

    cfg = config_from_dict(json.loads(open(config).read()))
    clips = approved_clips(connect_gateway(cfg), cfg)
    assert [c.hash for c in clips] == [first, third]  # approval in any tag service counts
    one = clips[0]
    assert set(one.tags) == {"motion:clip", "source:my film", "scene:1", "approved", "a cat"}
    assert one.caption == "a cat walks left"
    assert one.provenance["clip"]["scene"] == 1 and one.metadata["mime"] == "video/mp4"


def test_the_access_key_never_appears_in_output_logs_or_files(tmp_path, hydrus, video):
    config = write_config(tmp_path, hydrus, key=None, tag_service="wrong service")
    env = {**os.environ, "HYDRUS_MOTION_ACCESS_KEY": ALL_KEY}
    failed = run_cli("ingest", str(video), "--config", config, "-v", env=env)
    assert failed.returncode == 1 and "no tag service named" in failed.stderr
    good = write_config(tmp_path, hydrus, key=None)
    runs = [failed, run_cli("ingest", str(video), "--config", good, "-v", env=env),
            run_cli("doctor", "--config", good, "--json", env=env)]
    assert runs[1].returncode == 0, runs[1].stderr
    assert json.loads(runs[2].stdout)["config"]["hydrus"]["access_key"] is None
    for run in runs:
        assert ALL_KEY not in run.stdout + run.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert ALL_KEY.encode() not in path.read_bytes(), path


def test_doctor_checks_hydrus_key_and_tag_service(tmp_path, hydrus, capsys):
    assert main(["doctor", "--config", write_config(tmp_path, hydrus), "--json"]) == 0
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["hydrus"]["ok"] and "Client API 95" in checks["hydrus"]["detail"]
    assert checks["hydrus tag service"]["ok"]
    assert json.loads(capsys.readouterr().out or "{}") == {}

    config = write_config(tmp_path, hydrus, key=NO_COMMIT_KEY, tag_service="ai tags")
    assert main(["doctor", "--config", config, "--json"]) == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["hydrus key"]["ok"]
    assert not checks["hydrus tag service"]["ok"]

    hydrus.stop()
    assert main(["doctor", "--config", config, "--json"]) == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert not checks["hydrus"]["ok"] and "connection refused" in checks["hydrus"]["detail"]


def test_store_schema_is_migrated_once_and_kept(tmp_path):
    open_store(tmp_path).close()
    open_store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "state.sqlite3")
    from hydrus_motion.store.db import MIGRATIONS

    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
