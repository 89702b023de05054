"""Contract tests: the gateway against a Hydrus Client API.

They run against tests/hydrus_server.py in CI, and against a real client when
HYDRUS_TEST_API_URL and HYDRUS_TEST_ACCESS_KEY are set (HYDRUS_TEST_LIMITED_KEY, a key
that may only search, enables the permission test). Start one with
../shared/tools/real-hydrus/start.sh. Every test uses files never seen before, so a real
client's database may be reused.
"""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from conftest import HydrusTarget

from hydrus_motion.hydrus.gateway import (
    ApiGateway,
    HydrusAccessError,
    HydrusError,
    HydrusServiceError,
    HydrusUnreachable,
    connect_gateway,
)

MY_TAGS = "6c6f63616c2074616773"


@pytest.fixture()
def gateway(hydrus_target: HydrusTarget, tmp_path) -> ApiGateway:
    return connect_gateway(hydrus_target.config(tmp_path))


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_connect_checks_the_key_and_resolves_the_tag_service_by_name(gateway):
    assert gateway.tag_service_key == MY_TAGS  # the same on every fresh client
    assert gateway.key_name
    assert gateway.commit() is True  # an all-permissions key may force a commit


def test_unknown_tag_service_is_named_with_the_ones_that_exist(hydrus_target, tmp_path):
    cfg = hydrus_target.config(tmp_path, tag_service="no such service")
    with pytest.raises(HydrusServiceError) as err:
        connect_gateway(cfg)
    assert "no tag service named 'no such service'" in str(err.value)
    assert "my tags" in str(err.value.hint)


def test_a_file_service_is_not_a_tag_service(hydrus_target, tmp_path):
    with pytest.raises(HydrusServiceError, match="not a local tag service"):
        connect_gateway(hydrus_target.config(tmp_path, tag_service="my files"))


def test_unknown_key_is_refused_without_echoing_it(hydrus_target, tmp_path):
    wrong = uuid.uuid4().hex * 2
    with pytest.raises(HydrusAccessError) as err:
        connect_gateway(hydrus_target.config(tmp_path, access_key=wrong))
    assert "HTTP 403" in str(err.value) and "access key" in str(err.value)
    assert wrong not in str(err.value) and hydrus_target.key not in str(err.value)


def test_missing_key_says_how_to_set_one(hydrus_target, tmp_path, monkeypatch):
    monkeypatch.delenv("HYDRUS_MOTION_ACCESS_KEY", raising=False)
    with pytest.raises(HydrusAccessError, match="no Hydrus access key configured"):
        connect_gateway(hydrus_target.config(tmp_path, access_key=None))


def test_key_without_tag_permission_names_what_is_missing(hydrus_target, tmp_path):
    if not hydrus_target.limited_key:
        pytest.skip("set HYDRUS_TEST_LIMITED_KEY (a search-only key) for this check")
    with pytest.raises(HydrusAccessError) as err:
        connect_gateway(hydrus_target.config(tmp_path, access_key=hydrus_target.limited_key))
    message = str(err.value)
    for permission in ("import and delete files", "edit file tags", "edit file notes"):
        assert permission in message
    assert "search for and fetch files" not in message


def test_unreachable_hydrus_is_retried_then_reported(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = HydrusTarget(f"http://127.0.0.1:{port}/", "c3" * 32, None, None).config(
        tmp_path, retries=3, backoff_s=0.5)
    waits: list[float] = []
    gateway = ApiGateway(cfg.hydrus, "c3" * 32, sleep=waits.append)
    with pytest.raises(HydrusUnreachable) as err:
        gateway.connect()
    assert waits == [0.5, 1.0, 2.0]  # doubling
    assert "connection refused" in str(err.value) and "after 4 tries" in str(err.value)
    assert err.value.retryable


def test_a_url_that_is_not_the_client_api_says_so(hydrus_target, tmp_path):
    cfg = hydrus_target.config(tmp_path, api_url=hydrus_target.url + "not/the/api/")
    with pytest.raises(HydrusError, match="not a Client API answer"):
        connect_gateway(cfg)


def test_import_statuses_new_existing_and_deleted(gateway, unique_mp4, hydrus_target):
    clip = unique_mp4()
    first = gateway.import_file(clip)
    assert (first.status, first.hash) == (1, _sha(clip))
    assert gateway.import_file(clip).status == 2
    state = gateway.files([first.hash])[first.hash]
    assert state.present and not state.deleted
    assert state.metadata["mime"] == "video/mp4" and state.metadata["num_frames"] == 10
    assert state.metadata["duration"] == 1000  # integer milliseconds

    gateway._api.delete_files(hashes=[first.hash])  # a person sends it to the trash
    trashed = gateway.files([first.hash])[first.hash]
    assert trashed.deleted and not trashed.present
    again = gateway.import_file(clip)
    assert again.status == 3 and "trash" in again.note.lower()


def test_garbage_is_status_4_with_a_reason(gateway, tmp_path):
    junk = tmp_path / f"{uuid.uuid4().hex}.mp4"
    junk.write_bytes(uuid.uuid4().bytes * 64)
    result = gateway.import_file(junk)
    assert result.status == 4 and result.note
    assert not gateway.files([result.hash])[result.hash].present


def test_upload_by_bytes_gives_the_same_hash(hydrus_target, tmp_path, unique_mp4):
    gateway = connect_gateway(hydrus_target.config(tmp_path, import_by="bytes"))
    clip = unique_mp4()
    assert gateway.import_file(clip).hash == _sha(clip)
    assert gateway.files([_sha(clip)])[_sha(clip)].present


def test_unknown_hash_is_absent_and_leaves_no_record(gateway):
    unknown = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    state = gateway.files([unknown])[unknown]
    assert not state.present and not state.deleted and not state.tags


def test_tags_are_cleaned_and_deleted_tags_move_to_status_2(gateway, unique_mp4):
    file_hash = gateway.import_file(unique_mp4()).hash
    gateway.add_tags(file_hash, ["Test  Tag ", "creator:Some Body", "motion:pending"])
    state = gateway.files([file_hash])[file_hash]
    assert state.tags == {"test tag", "creator:some body", "motion:pending"}
    gateway._api.add_tags(hashes=[file_hash],
                          service_keys_to_actions_to_tags={MY_TAGS: {"1": ["motion:pending"]}})
    state = gateway.files([file_hash])[file_hash]
    assert "motion:pending" not in state.tags and "motion:pending" in state.deleted_tags
    assert "motion:pending" not in state.display_tags


def test_notes_are_set_and_read_back(gateway, unique_mp4):
    file_hash = gateway.import_file(unique_mp4()).hash
    gateway.set_notes(file_hash, {"caption": "a cat jumps", "hydrus-motion": '{"a": 1}'})
    gateway.set_notes(file_hash, {"caption": "a cat jumps high"})  # overwrite by name
    notes = gateway.files([file_hash])[file_hash].notes
    assert notes == {"caption": "a cat jumps high", "hydrus-motion": '{"a": 1}'}


def test_download_streams_the_exact_bytes_and_unknown_hashes_are_404(
        gateway, unique_mp4, tmp_path):
    path = unique_mp4()
    file_hash = gateway.import_file(path).hash
    dest = tmp_path / "copy.mp4"
    assert gateway.download(file_hash, dest) == path.stat().st_size
    assert dest.read_bytes() == path.read_bytes()
    with pytest.raises(HydrusError) as err:
        gateway.download(uuid.uuid4().hex * 2, tmp_path / "missing.mp4")
    assert err.value.status == 404
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.mp4"]  # no partial file


def test_popup_with_attached_files(gateway, unique_mp4):
    file_hash = gateway.import_file(unique_mp4()).hash
    assert gateway.popup("hydrus-motion", "contract test: a popup with one file", [file_hash])


def test_hydrus_drops_potential_duplicate_pairs_of_videos(gateway, unique_mp4, hydrus_target):
    """Why near duplicates are group tags, not file relationships (hydrus/push.py): the
    client answers 200 to a pair of videos and keeps nothing (its potential pairs need
    an image hash). Should a Hydrus version keep them, this fails: use them then."""
    a, b = (gateway.import_file(unique_mp4()).hash for _ in range(2))
    resp = _raw(hydrus_target, "POST", "/manage_file_relationships/set_file_relationships",
                json={"relationships": [{"hash_a": a, "hash_b": b, "relationship": 0,
                                         "do_default_content_merge": False}]})
    assert resp.status_code == 200, resp.text
    resp = _raw(hydrus_target, "GET", "/manage_file_relationships/get_file_relationships",
                params={"hashes": json.dumps([a, b])})
    rels = resp.json()["file_relationships"]
    assert rels[a]["0"] == [] and rels[b]["0"] == []  # "0": potential duplicates


def test_search_namespaced_negated_and_after_tag_removal(gateway, unique_mp4):
    run = uuid.uuid4().hex[:12]
    a = gateway.import_file(unique_mp4()).hash
    b = gateway.import_file(unique_mp4()).hash
    gateway.add_tags(a, [f"motiontest:{run}", "approved"])
    gateway.add_tags(b, [f"motiontest:{run}", "approved", f"rejected{run}"])
    assert gateway.search([f"MotionTest:{run.upper()}"]) == [a, b]
    assert gateway.search([f"motiontest:{run}", "approved", f"-rejected{run}"]) == [a]
    gateway._api.add_tags(hashes=[a],
                          service_keys_to_actions_to_tags={MY_TAGS: {"1": ["approved"]}})
    assert gateway.search([f"motiontest:{run}", "approved"]) == [b]


def test_metadata_is_fetched_in_chunks(hydrus_target, tmp_path, unique_mp4):
    gateway = connect_gateway(hydrus_target.config(tmp_path, metadata_chunk=2))
    hashes = [gateway.import_file(unique_mp4()).hash for _ in range(5)]
    states = gateway.files(hashes)
    assert set(states) == set(hashes) and all(s.present for s in states.values())
    if hydrus_target.fake:
        reads = [r for r in hydrus_target.fake.requests[-3:]]
        assert reads == [("GET", "/get_files/file_metadata")] * 3


# -- quirks the test server must share with a real client (raw requests) ----------------

def _raw(hydrus_target, method, path, **kwargs):
    import requests

    headers = {"Hydrus-Client-API-Access-Key": hydrus_target.key, **kwargs.pop("headers", {})}
    return requests.request(method, hydrus_target.url.rstrip("/") + path, headers=headers,
                            timeout=30, **kwargs)


def test_quirk_writes_answer_200_with_an_empty_body(hydrus_target):
    unknown = hashlib.sha256(uuid.uuid4().bytes).hexdigest()  # tags on a missing file: 200
    reply = _raw(hydrus_target, "POST", "/add_tags/add_tags",
                 json={"hash": unknown, "service_keys_to_tags": {MY_TAGS: ["x"]}})
    assert (reply.status_code, reply.content) == (200, b"")


def test_quirk_errors_share_one_json_shape_and_unknown_paths_are_html(hydrus_target):
    reply = _raw(hydrus_target, "GET", "/get_files/search_files",
                 params={"tags": '["a"]', "return_hashes": "1"})
    body = reply.json()
    assert reply.status_code == 400 and body["exception_type"] == "BadRequestException"
    assert "boolean" in body["error"] and body["status_code"] == 400
    reply = _raw(hydrus_target, "GET", "/no/such/path")
    assert reply.status_code == 404 and "html" in reply.headers["Content-Type"]
    reply = _raw(hydrus_target, "GET", "/add_tags/add_tags")
    assert reply.status_code == 404 and reply.json()["exception_type"] == "NotFoundException"


def test_quirk_empty_search_has_no_hashes_key(hydrus_target):
    reply = _raw(hydrus_target, "GET", "/get_files/search_files",
                 params={"tags": "[]", "return_hashes": "true"})
    assert reply.json()["file_ids"] == [] and "hashes" not in reply.json()


def test_quirk_raw_upload_without_content_type_is_parsed_as_json(hydrus_target, unique_mp4):
    reply = _raw(hydrus_target, "POST", "/add_files/add_file",
                 data=unique_mp4().read_bytes())
    assert reply.status_code == 400 and "path" in reply.json()["error"]
