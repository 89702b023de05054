"""An in-process Hydrus Client API that behaves as ../shared/reference/hydrus_client_api_facts.md
says a real client (v682, API 95) does, for the endpoints hydrus-motion uses.

What it copies, because our code must cope with it: status codes and the error JSON
shape, empty 200 bodies on writes, HTML 404 for unknown paths, import statuses 1-4
reported inside a 200, tag cleaning, deleted tags kept under "2", the unknown-hash stub,
namespaced/negated/OR search, notes, permissions per key, and durability: writes are
committed every `commit_period` seconds or on force_commit, and `crash()` rolls back to
the last commit exactly as `kill -9` does to a real client.

Test controls: `crash()`, `commit()`, `fail_next(n, status)`, `stop()`/`start()` (same
port), `can_read_paths`, `requests` (the log of (method, path)), and `person_*` helpers
that act as a reviewer in the Hydrus GUI would.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

API_VERSION, HYDRUS_VERSION = 95, 682
MY_TAGS = "6c6f63616c2074616773"
DOWNLOADER_TAGS = "646f776e6c6f616465722074616773"
ALL_KNOWN_TAGS = "616c6c206b6e6f776e2074616773"
MY_FILES = "6c6f63616c2066696c6573"
ALL_LOCAL_FILES = "616c6c206c6f63616c2066696c6573"
TRASH = "7472617368"
SERVICES = [
    ("my tags", MY_TAGS, 5, "local tag domain", "local_tags"),
    ("downloader tags", DOWNLOADER_TAGS, 5, "local tag domain", "local_tags"),
    ("all known tags", ALL_KNOWN_TAGS, 10, "virtual combined tag domain", "all_known_tags"),
    ("my files", MY_FILES, 2, "local file domain", "local_files"),
    ("hydrus local file storage", ALL_LOCAL_FILES, 15, "hydrus local file storage",
     "all_local_files"),
    ("trash", TRASH, 14, "trash", "trash"),
]
PERMISSION_TEXT = {0: "import urls", 1: "import and delete files", 2: "edit file tags",
                   3: "search for and fetch files", 6: "manage database", 7: "edit file notes",
                   8: "manage file relationships", 10: "manage popups"}
ENDPOINTS = {
    "/api_version": "GET", "/verify_access_key": "GET", "/get_services": "GET",
    "/get_service": "GET", "/add_files/add_file": "POST", "/add_files/delete_files": "POST",
    "/add_files/clear_file_deletion_record": "POST", "/add_tags/add_tags": "POST",
    "/add_tags/clean_tags": "GET", "/add_notes/set_notes": "POST",
    "/get_files/search_files": "GET", "/get_files/file_metadata": "GET",
    "/get_files/file": "GET", "/manage_database/force_commit": "POST",
    "/manage_popups/add_popup": "POST",
    "/manage_file_relationships/set_file_relationships": "POST",
    "/manage_file_relationships/get_file_relationships": "GET",
}
NEEDS = {"/add_files/add_file": 1, "/add_files/delete_files": 1,
         "/add_files/clear_file_deletion_record": 1, "/add_tags/add_tags": 2,
         "/get_files/search_files": 3, "/get_files/file_metadata": 3, "/get_files/file": 3,
         "/add_notes/set_notes": 7, "/manage_database/force_commit": 6,
         "/manage_popups/add_popup": 10,
         "/manage_file_relationships/set_file_relationships": 8,
         "/manage_file_relationships/get_file_relationships": 8}
ALL_PERMISSIONS = tuple(range(14))


class ApiError(Exception):
    def __init__(self, status: int, message: str, exception_type: str = "BadRequestException"):
        super().__init__(message)
        self.status, self.message, self.exception_type = status, message, exception_type


def clean_tag(tag: str) -> str:
    tag = re.sub(r"\s+", " ", tag).strip().lower()
    while tag.startswith("-"):
        tag = tag[1:].strip()
    if tag.startswith("system:"):
        tag = tag[len("system:"):].strip()
    if tag.startswith(":"):
        tag = ":" + tag
    return tag


@dataclass
class Db:
    """Everything a crash can lose. Files' bytes live outside it, as on a real disk."""

    next_id: int = 1
    hash_ids: dict[str, int] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # hash -> metadata
    deleted: dict[str, str] = field(default_factory=dict)  # hash -> reason (deletion record)
    trashed: set[str] = field(default_factory=set)
    tags: dict[tuple[str, str], dict[str, set[str]]] = field(default_factory=dict)
    notes: dict[str, dict[str, str]] = field(default_factory=dict)
    potential_duplicates: set[frozenset[str]] = field(default_factory=set)

    def file_id(self, file_hash: str) -> int:
        if file_hash not in self.hash_ids:
            self.hash_ids[file_hash] = self.next_id
            self.next_id += 1
        return self.hash_ids[file_hash]


class FakeHydrus:
    def __init__(self, permissions: dict[str, tuple[int, ...]] | None = None,
                 commit_period: float = 30.0, can_read_paths: bool = True):
        self.keys = {k: ("all permissions" if p == ALL_PERMISSIONS else "limited", p)
                     for k, p in (permissions or {}).items()}
        self.commit_period = commit_period
        self.can_read_paths = can_read_paths
        self.db = Db()
        self.committed = copy.deepcopy(self.db)
        self.last_commit = time.monotonic()
        self.blobs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.popups: list[dict[str, Any]] = []  # what a person would see pop up
        self.lock = threading.RLock()
        self._failures: list[int] = []
        # Called with (method, path) as each request arrives: lets a test act mid-run.
        self.on_request: Callable[[str, str], None] | None = None
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    # -- lifecycle and test controls ---------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> FakeHydrus:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def crash(self) -> None:
        """kill -9 and restart: everything since the last commit is gone."""
        with self.lock:
            self.db = copy.deepcopy(self.committed)

    def commit(self) -> None:
        with self.lock:
            self.committed = copy.deepcopy(self.db)
            self.last_commit = time.monotonic()

    def fail_next(self, count: int, status: int = 503) -> None:
        self._failures.extend([status] * count)

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] == "POST"]

    def person_deletes_file(self, file_hash: str) -> None:
        with self.lock:
            self._delete(file_hash, "person", physically=False)

    def person_edits_tags(self, file_hash: str, add: list[str] = (), remove: list[str] = (),
                          service: str = MY_TAGS) -> None:
        with self.lock:
            self._add_tags([file_hash], service, {"0": list(add), "1": list(remove)})

    def person_sets_note(self, file_hash: str, name: str, text: str) -> None:
        with self.lock:
            self.db.notes.setdefault(file_hash, {})[name] = text

    def damage_file(self, file_hash: str) -> None:
        """Bit rot in Hydrus' file store: the bytes no longer match the hash."""
        with self.lock:
            blob = bytearray(self.blobs[file_hash])
            blob[len(blob) // 2] ^= 0xFF
            self.blobs[file_hash] = bytes(blob)

    def current_tags(self, file_hash: str, service: str = MY_TAGS) -> set[str]:
        return set(self.db.tags.get((service, file_hash), {}).get("0", set()))

    # -- request handling --------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: Any,
               body: bytes) -> tuple[int, bytes, str | None]:
        """(status, body, content type); None content type means an empty 200."""
        with self.lock:
            self.requests.append((method, path))
            if self.on_request is not None:
                self.on_request(method, path)
            if time.monotonic() - self.last_commit >= self.commit_period:
                self.commit()
            if path not in ENDPOINTS:
                return 404, b"<html><body><h1>No Such Resource</h1></body></html>", "text/html"
            try:
                if self._failures:
                    status = self._failures.pop(0)
                    raise ApiError(status, "This is a simulated failure.",
                                   "DBException" if status == 503 else "ServerException")
                if ENDPOINTS[path] != method:
                    raise ApiError(404, "This service does not support that request!",
                                   "NotFoundException")
                args = self._arguments(method, query, headers, body)
                if path != "/api_version":
                    self._authorise(path, headers, query, args)
                result = getattr(self, "ep_" + path.strip("/").replace("/", "_"))(args)
            except ApiError as exc:
                reply = {"error": exc.message, "exception_type": exc.exception_type,
                         "status_code": exc.status, "version": API_VERSION,
                         "hydrus_version": HYDRUS_VERSION}
                return exc.status, json.dumps(reply).encode(), "application/json"
            if result is None:
                return 200, b"", None
            if isinstance(result, tuple):  # raw file
                return 200, result[0], result[1]
            result.update(version=API_VERSION, hydrus_version=HYDRUS_VERSION)
            return 200, json.dumps(result).encode(), "application/json"

    def _arguments(self, method: str, query: dict[str, str], headers: Any,
                   body: bytes) -> dict[str, Any]:
        if method == "GET":
            return dict(query)
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype in ("", "application/json"):
            if not ctype or not body:
                return {}
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise ApiError(400, f"Sorry, did not understand the JSON you gave me: {exc}") \
                    from None
            return data if isinstance(data, dict) else {}
        if ctype in ("application/octet-stream", "video/mp4", "video/webm", "image/png"):
            return {"__bytes__": body}
        raise ApiError(400, "Did not recognise Content-Type header!")

    def _authorise(self, path: str, headers: Any, query: dict[str, str],
                   args: dict[str, Any]) -> None:
        key = (headers.get("Hydrus-Client-API-Access-Key")
               or query.get("Hydrus-Client-API-Access-Key")
               or args.get("Hydrus-Client-API-Access-Key"))
        if not key:
            raise ApiError(401, "No access key or session key provided!",
                           "MissingCredentialsException")
        if not re.fullmatch(r"[0-9a-fA-F]+", key):
            raise ApiError(400, "Problem parsing Hydrus-Client-API-Access-Key!")
        if key.lower() not in self.keys:
            raise ApiError(403, "Did not find an entry for that access key!",
                           "InsufficientCredentialsException")
        needed = NEEDS.get(path)
        if needed is not None and needed not in self.keys[key.lower()][1]:
            raise ApiError(403, f"You do not have permission to: {PERMISSION_TEXT[needed]}",
                           "InsufficientCredentialsException")
        args["__key__"] = key.lower()

    # -- endpoints ---------------------------------------------------------------------

    def ep_api_version(self, args: dict) -> dict:
        return {}

    def ep_verify_access_key(self, args: dict) -> dict:
        name, perms = self.keys[args["__key__"]]
        everything = perms == ALL_PERMISSIONS
        return {"name": name, "permits_everything": everything,
                "basic_permissions": list(perms),
                "human_description": f"API Permissions ({name})"}

    def ep_get_services(self, args: dict) -> dict:
        reply: dict[str, Any] = {}
        for name, key, kind, pretty, group in SERVICES:
            reply.setdefault(group, []).append(
                {"name": name, "type": kind, "type_pretty": pretty, "service_key": key})
        return reply

    def ep_get_service(self, args: dict) -> dict:
        name, key = args.get("service_name"), args.get("service_key")
        if not name and not key:
            raise ApiError(400, "Sorry, you need to give a service_key or service_name!")
        for s_name, s_key, kind, pretty, _ in SERVICES:
            if (name and s_name == name) or (key and s_key == key):
                return {"service": {"name": s_name, "type": kind, "type_pretty": pretty,
                                    "service_key": s_key}}
        what = f'name "{name}"' if name else f'key "{key}"'
        raise ApiError(404, f"Sorry, did not find a service with {what}!", "NotFoundException")

    def ep_add_files_add_file(self, args: dict) -> dict:
        if "__bytes__" in args:
            data = args["__bytes__"]
        elif "path" in args:
            path = Path(args["path"])
            if not self.can_read_paths or not path.is_absolute() or not path.exists():
                raise ApiError(400, f'Path "{args["path"]}" does not exist!')
            if not path.is_file():
                raise ApiError(400, f'Path "{args["path"]}" is not a file!')
            data = path.read_bytes()
        else:
            raise ApiError(400, 'The required parameter "path" was missing!')
        file_hash = hashlib.sha256(data).hexdigest()
        db = self.db
        if file_hash in db.trashed:
            return _import(3, file_hash, "file recognised: Currently in trash.")
        if file_hash in db.deleted:
            return _import(3, file_hash, f"file recognised: Deleted from the client "
                                         f"({db.deleted[file_hash]}).")
        if file_hash in db.files:
            return _import(2, file_hash, "file recognised: Imported before this check.")
        if not data:
            return _import(4, file_hash, "File is of zero length!", traceback=True)
        info = _probe(data)
        if isinstance(info, str):
            return _import(4, file_hash, info, traceback=True)
        db.file_id(file_hash)
        db.files[file_hash] = {**info, "size": len(data), "time_imported": int(time.time())}
        self.blobs[file_hash] = data
        return _import(1, file_hash, "")

    def ep_add_files_delete_files(self, args: dict) -> None:
        for file_hash in self._hashes(args):
            self._delete(file_hash, args.get("reason", "Deleted via Client API."),
                         physically=args.get("file_service_key") == ALL_LOCAL_FILES)

    def ep_add_files_clear_file_deletion_record(self, args: dict) -> None:
        for file_hash in self._hashes(args):
            self.db.deleted.pop(file_hash, None)

    def ep_add_tags_add_tags(self, args: dict) -> None:
        hashes = self._hashes(args)
        simple = args.get("service_keys_to_tags")
        actions = args.get("service_keys_to_actions_to_tags")
        if simple is None and actions is None:
            raise ApiError(400, "Need a service_keys_to_tags or "
                                "service_keys_to_actions_to_tags parameter!")
        work = {k: {"0": v} for k, v in (simple or {}).items()}
        for key, by_action in (actions or {}).items():
            work.setdefault(key, {}).update(by_action)
        for key, by_action in work.items():
            if key not in (MY_TAGS, DOWNLOADER_TAGS):
                raise ApiError(400, f'Could not find the tag service "{key}"!')
            for action, tags in by_action.items():
                if not isinstance(tags, list):
                    raise ApiError(400, f'The parameter "tags in service_keys_to_tags", with '
                                        f'value "{tags}", was not the expected type: list!')
                if action not in ("0", "1"):
                    raise ApiError(400, f'Sorry, you submitted a content action of "{action}" '
                                        f'for service "{key}", but you can only add/delete on '
                                        "a local tag domain!")
            self._add_tags(hashes, key, by_action)

    def ep_add_tags_clean_tags(self, args: dict) -> dict:
        tags = _json_param(args, "tags", list)
        return {"tags": sorted({clean_tag(t) for t in tags} - {""})}

    def ep_add_notes_set_notes(self, args: dict) -> dict:
        if "notes" not in args:
            raise ApiError(400, 'The required parameter "notes" was missing!')
        (file_hash,) = self._hashes(args)
        self.db.file_id(file_hash)
        self.db.notes.setdefault(file_hash, {}).update(args["notes"])
        return {"notes": args["notes"]}

    def ep_manage_file_relationships_set_file_relationships(self, args: dict) -> None:
        rels = _json_param(args, "relationships", list)
        for rel in rels:
            if not isinstance(rel, dict) or "hash_a" not in rel or "hash_b" not in rel:
                raise ApiError(400, 'The required parameter "hash_a" was missing!')
            if "relationship" not in rel or "do_default_content_merge" not in rel:
                raise ApiError(400, "The required parameter \"relationship\" or "
                                    "\"do_default_content_merge\" was missing!")
            hashes = self._hashes({"hashes": [rel["hash_a"], rel["hash_b"]]})
            for h in hashes:
                if h not in self.db.hash_ids:
                    raise ApiError(404, f"Could not find the file {h}!", "NotFoundException")
            # a real client keeps potential pairs only for files in its similar-files
            # system (still images); a pair of videos is taken with 200 and dropped
            if rel["relationship"] == 0 and all(
                    self.db.files[h]["mime"] == "image/png" for h in hashes):
                self.db.potential_duplicates.add(frozenset(hashes))
        return None

    def ep_manage_file_relationships_get_file_relationships(self, args: dict) -> dict:
        out = {}
        for h in self._hashes(args):
            others = sorted(o for pair in self.db.potential_duplicates if h in pair
                            for o in pair if o != h)
            out[h] = {"is_king": True, "king": h, "0": others, "1": [], "3": [], "8": []}
        return {"file_relationships": out}

    def ep_get_files_search_files(self, args: dict) -> dict:
        if "tags" not in args:
            return {"file_ids": []}
        tags = _json_param(args, "tags", (list, str))
        return_hashes = _bool_param(args, "return_hashes", False)
        if not isinstance(tags, list) or not tags:
            return {"file_ids": []}
        service = args.get("tag_service_key", ALL_KNOWN_TAGS)
        limit = None
        matches = [h for h in self.db.files if h not in self.db.trashed]
        for predicate in tags:
            if isinstance(predicate, list):  # OR group
                matches = [h for h in matches
                           if any(self._matches(h, p, service) for p in predicate)]
            elif predicate.lower().startswith("system:"):
                limit = self._system(predicate, limit)
            else:
                matches = [h for h in matches if self._matches(h, predicate, service)]
        matches.sort(key=lambda h: self.db.hash_ids[h])
        matches = matches[:limit] if limit is not None else matches
        reply: dict[str, Any] = {"file_ids": [self.db.hash_ids[h] for h in matches]}
        if return_hashes:
            reply["hashes"] = matches
        return reply

    def ep_get_files_file_metadata(self, args: dict) -> dict:
        create = _bool_param(args, "create_new_file_ids", True)
        identifiers_only = _bool_param(args, "only_return_identifiers", False)
        include_notes = _bool_param(args, "include_notes", False)
        if "file_ids" in args or "file_id" in args:
            ids = _json_param(args, "file_ids", list) if "file_ids" in args else \
                [_int_param(args, "file_id")]
            by_id = {v: k for k, v in self.db.hash_ids.items()}
            novel = [i for i in ids if i not in by_id]
            if novel:
                raise ApiError(404, "It seems you gave a file_id that does not exist! Was asked "
                                    f"about these novel hash_ids: {novel}", "NotFoundException")
            hashes = [by_id[i] for i in ids]
        else:
            hashes = self._hashes(args)
        entries = []
        for file_hash in hashes:
            if file_hash not in self.db.hash_ids and not create:
                entries.append({"file_id": None, "hash": file_hash})
                continue
            entry = {"file_id": self.db.file_id(file_hash), "hash": file_hash}
            if not identifiers_only:
                entry.update(self._metadata(file_hash, include_notes))
            entries.append(entry)
        return {"metadata": entries}

    def ep_get_files_file(self, args: dict) -> tuple[bytes, str]:
        file_hash = args.get("hash")
        if not file_hash:
            raise ApiError(400, "Please include a file_id or hash parameter!")
        if file_hash not in self.db.files or file_hash in self.db.trashed:
            raise ApiError(404, "The client does not have this file!", "FileMissingException")
        return self.blobs[file_hash], self.db.files[file_hash]["mime"]

    def ep_manage_popups_add_popup(self, args: dict) -> dict:
        hashes = args.get("hashes") or []
        for h in hashes:
            if not isinstance(h, str) or len(h) != 64:
                raise ApiError(400, "Sorry, one of the given hashes was the wrong length! "
                                    f"sha256 hashes should be 32 bytes long, but {h} is not")
        if hashes and not args.get("files_label"):
            raise ApiError(400, "\"files_label\" is required to add files to a popup!")
        popup = {k: v for k, v in args.items() if not k.startswith("__")}
        self.popups.append(popup)
        job = {"key": hashlib.sha256(json.dumps(popup).encode()).hexdigest(), "is_done": True,
               "status_title": args.get("status_title"),
               "status_text_1": args.get("status_text_1")}
        if hashes:
            job["files"] = {"hashes": hashes, "label": args["files_label"]}
        return {"job_status": job}

    def ep_manage_database_force_commit(self, args: dict) -> None:
        self.commit()

    # -- helpers -----------------------------------------------------------------------

    def _hashes(self, args: dict) -> list[str]:
        if "hash" in args:
            hashes = [args["hash"]]
        elif "hashes" in args:
            hashes = _json_param(args, "hashes", list)
        else:
            raise ApiError(400, "Please include some files in your request--file_id or hash "
                                "based!")
        for h in hashes:
            if not isinstance(h, str) or not re.fullmatch(r"[0-9a-f]*", h):
                raise ApiError(400, "I was expecting to parse 'hash' as a hex string, but it "
                                    "failed.")
            if len(h) != 64:
                raise ApiError(400, "Sorry, one of the given hashes was the wrong length! "
                                    f"sha256 hashes should be 32 bytes long, but {h} is "
                                    f"{len(h) // 2} bytes long!")
        return hashes

    def _add_tags(self, hashes: list[str], service: str, by_action: dict[str, list]) -> None:
        for file_hash in hashes:
            self.db.file_id(file_hash)  # tags on an unknown hash: a stub record, silently
            store = self.db.tags.setdefault((service, file_hash), {"0": set(), "2": set()})
            for tag in filter(None, map(clean_tag, by_action.get("0", []))):
                store["0"].add(tag)
                store["2"].discard(tag)
            for tag in filter(None, map(clean_tag, by_action.get("1", []))):
                if tag in store["0"]:
                    store["0"].discard(tag)
                    store["2"].add(tag)

    def _delete(self, file_hash: str, reason: str, physically: bool) -> None:
        if file_hash not in self.db.files:
            return
        if physically or file_hash in self.db.trashed:
            self.db.trashed.discard(file_hash)
            del self.db.files[file_hash]
            self.db.deleted[file_hash] = reason
        else:
            self.db.trashed.add(file_hash)

    def _tags_of(self, file_hash: str, service: str, status: str) -> set[str]:
        services = (MY_TAGS, DOWNLOADER_TAGS) if service == ALL_KNOWN_TAGS else (service,)
        return set().union(*(self.db.tags.get((s, file_hash), {}).get(status, set())
                             for s in services))

    def _matches(self, file_hash: str, predicate: str, service: str) -> bool:
        negated = predicate.startswith("-")
        tag = clean_tag(predicate)
        current = self._tags_of(file_hash, service, "0")
        if tag.endswith(":*"):
            found = any(t.startswith(tag[:-1]) for t in current)
        else:
            found = tag in current
        return found != negated

    def _system(self, predicate: str, limit: int | None) -> int | None:
        text = predicate.lower()[len("system:"):].strip()
        if text == "everything":
            return limit
        match = re.fullmatch(r"limit\s*=\s*(\d+)", text)
        if match:
            return int(match.group(1))
        raise ApiError(400, f'Could not parse system predicate "{predicate}"!')

    def _metadata(self, file_hash: str, include_notes: bool) -> dict[str, Any]:
        info = self.db.files.get(file_hash)
        trashed = file_hash in self.db.trashed
        entry: dict[str, Any] = {
            "size": None, "mime": "unknown filetype", "filetype_enum": 101, "width": None,
            "height": None, "duration": None, "num_frames": None, "has_audio": False,
            "is_inbox": False, "is_local": info is not None, "is_trashed": trashed,
            "is_deleted": trashed or file_hash in self.db.deleted,
            "file_services": {"current": {}, "deleted": {}},
        }
        if info:
            entry.update({k: v for k, v in info.items() if k != "time_imported"})
            entry["is_inbox"] = True
            where = TRASH if trashed else MY_FILES
            entry["file_services"]["current"][where] = {"time_imported": info["time_imported"]}
        tags = {}
        for name, key, kind, pretty, _ in SERVICES:
            if kind not in (5, 10):
                continue
            by_status = {s: sorted(self._tags_of(file_hash, key, s)) for s in ("0", "2")}
            by_status = {s: v for s, v in by_status.items() if v}
            tags[key] = {"name": name, "type": kind, "type_pretty": pretty,
                         "storage_tags": by_status, "display_tags": copy.deepcopy(by_status)}
        entry["tags"] = tags
        if include_notes:
            entry["notes"] = dict(self.db.notes.get(file_hash, {}))
        return entry


def _import(status: int, file_hash: str, note: str, traceback: bool = False) -> dict:
    reply = {"status": status, "hash": file_hash, "note": note}
    if traceback:
        reply["traceback"] = f"Traceback (most recent call last):\n  ...\nException: {note}"
    return reply


def _probe(data: bytes) -> dict[str, Any] | str:
    """Video metadata the way Hydrus gets it (ffmpeg), or the import failure note."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":  # HydrusConstants.IMAGE_PNG; a still image
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return {"mime": "image/png", "filetype_enum": 2, "width": width, "height": height,
                "duration": None, "num_frames": None, "has_audio": False}
    if data[:4] == b"GIF8":
        mime, enum = "image/gif", 3  # HydrusConstants.ANIMATION_GIF
    elif data[4:8] == b"ftyp":
        mime, enum = "video/mp4", 14
    else:
        return "Unknown filetype!"
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
         "-show_entries", "stream=width,height,nb_read_packets:format=duration", "-of", "json",
         "-"], input=data, capture_output=True, timeout=60)
    try:
        probe = json.loads(proc.stdout)
        stream = probe["streams"][0]
        return {"mime": mime, "filetype_enum": enum, "width": stream["width"],
                "height": stream["height"],
                "duration": round(float(probe["format"]["duration"]) * 1000),
                "num_frames": int(stream["nb_read_packets"]), "has_audio": False}
    except (ValueError, KeyError, IndexError):
        return "FFMPEG could not parse."


def _json_param(args: dict, name: str, kind: type | tuple) -> Any:
    value = args.get(name)
    if isinstance(value, str):  # GET: lists and objects arrive JSON-encoded
        try:
            value = json.loads(value)
        except ValueError:
            raise ApiError(400, f"I was expecting to parse '{name}' as a json-encoded string, "
                                "but it failed.") from None
    if not isinstance(value, kind):
        raise ApiError(400, f'The parameter "{name}", with value "{value}", was not the '
                            f"expected type: {getattr(kind, '__name__', 'list')}!")
    return value


def _bool_param(args: dict, name: str, default: bool) -> bool:
    if name not in args:
        return default
    value = args[name]
    if isinstance(value, bool):
        return value
    if value not in ("true", "false"):
        raise ApiError(400, f'The parameter "{name}", with value "{value}", was not the '
                            "expected type: boolean!")
    return value == "true"


def _int_param(args: dict, name: str) -> int:
    try:
        return int(args[name])
    except ValueError:
        raise ApiError(400, f"I was expecting to parse '{name}' as an integer, but it "
                            "failed.") from None


def _handler(fake: FakeHydrus) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _serve(self, method: str) -> None:
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload, ctype = fake.handle(method, url.path, query, self.headers, body)
            self.send_response(status)
            self.send_header("Server", f"client api/{API_VERSION} ({HYDRUS_VERSION})")
            if ctype:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler
