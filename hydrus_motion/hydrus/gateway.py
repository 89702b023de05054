"""The one door to Hydrus: the `hydrus-api` package with timeouts, retries and checks.

Everything that talks to Hydrus goes through `HydrusGateway`; stages depend on the
Protocol, tests can hand in a double, and `ApiGateway` is the production one. It adds
what the package leaves out: a timeout on every request, retries with doubling waits on
connection errors and 503, the access key and its permissions checked once up front
(with a message that names what is missing), and the tag service resolved by name.

The access key is only ever put in the request header; no message we build contains it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlparse

from hydrus_motion.config import Config, HydrusConfig, access_key
from hydrus_motion.errors import HydrusMotionError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Client API permission numbers (hydrus_api.Permission) and what Hydrus calls them.
IMPORT_FILES, ADD_TAGS, SEARCH_FILES, MANAGE_DATABASE, ADD_NOTES = 1, 2, 3, 6, 7
MANAGE_POPUPS = 10
PERMISSION_NAMES = {IMPORT_FILES: "import and delete files", ADD_TAGS: "edit file tags",
                    SEARCH_FILES: "search for and fetch files",
                    MANAGE_DATABASE: "manage database", ADD_NOTES: "edit file notes",
                    MANAGE_POPUPS: "manage popups"}
REQUIRED_PERMISSIONS = (IMPORT_FILES, ADD_TAGS, SEARCH_FILES, ADD_NOTES)
LOCAL_TAG_SERVICE = 5
MAX_BACKOFF_S = 60.0


class HydrusError(HydrusMotionError):
    """Hydrus refused or failed a request. `retryable`: trying later may work."""

    retryable = False
    status: int | None = None  # the HTTP status, when Hydrus answered


class HydrusUnreachable(HydrusError):
    """No answer (down, wrong address, timed out) or busy (503) after every retry."""

    retryable = True


class HydrusAccessError(HydrusError):
    """The access key is missing, unknown, or lacks a permission we need."""


class HydrusServiceError(HydrusError):
    """The configured tag service does not exist or is not a local tag service."""


class HydrusDamagedFile(HydrusError):
    """Hydrus sent bytes whose sha256 is not the file's hash: its copy is damaged."""


# /add_files/add_file statuses (hydrus_api.ImportStatus); 4 failed and 7 vetoed otherwise.
NEWLY_IMPORTED, ALREADY_THERE, DELETED_BEFORE = 1, 2, 3


@dataclass(frozen=True)
class ImportResult:
    status: int  # 1 imported, 2 already there, 3 deleted before, 4 failed, 7 vetoed
    hash: str
    note: str


@dataclass(frozen=True)
class FileState:
    """What Hydrus holds for one hash, as far as our tag service is concerned."""

    hash: str
    present: bool  # the file is in Hydrus and not in the trash
    deleted: bool  # a person trashed or deleted it: their decision, never undone by us
    tags: frozenset[str] = frozenset()  # current ("0") storage tags on our service
    deleted_tags: frozenset[str] = frozenset()  # removed ("2"): a person's decision too
    display_tags: frozenset[str] = frozenset()  # current, after siblings and parents
    notes: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)  # mime, size, width, duration...


class HydrusGateway(Protocol):
    def connect(self) -> None: ...
    def files(self, hashes: Sequence[str]) -> dict[str, FileState]: ...
    def import_file(self, path: Path) -> ImportResult: ...
    def add_tags(self, file_hash: str, tags: Sequence[str]) -> None: ...
    def set_notes(self, file_hash: str, notes: dict[str, str]) -> None: ...
    def search(self, tags: Sequence[str]) -> list[str]: ...
    def download(self, file_hash: str, dest: Path) -> int: ...
    def commit(self) -> bool: ...
    def popup(self, title: str, text: str, hashes: Sequence[str] = ()) -> bool: ...


def connect_gateway(cfg: Config, **kwargs: Any) -> ApiGateway:
    """An ApiGateway for `cfg`, its key, permissions and tag service already checked."""
    gateway = ApiGateway(cfg.hydrus, access_key(cfg), **kwargs)
    gateway.connect()
    return gateway


class ApiGateway:
    """`HydrusGateway` over the hydrus-api package. Call `connect()` before anything else."""

    def __init__(self, cfg: HydrusConfig, access_key: str | None,
                 sleep: Callable[[float], None] = time.sleep):
        try:
            import hydrus_api
        except ImportError:  # a base dependency; only a broken install lands here
            raise HydrusMotionError("the Python package 'hydrus-api' is not installed",
                                    hint="reinstall hydrus-motion (pip install -e .)") from None
        self._hapi = hydrus_api
        self.cfg = cfg
        self._has_key = bool(access_key)
        self._sleep = sleep
        self._api = hydrus_api.Client(access_key, cfg.api_url, _session(cfg.timeout_s))
        self._upload_api = hydrus_api.Client(
            access_key, cfg.api_url, _session((cfg.timeout_s, cfg.upload_timeout_s)))
        self._by_path = cfg.import_by == "path" or (
            cfg.import_by == "auto" and _is_loopback(cfg.api_url))
        self.tag_service_key: str | None = None
        self.permissions: frozenset[int] = frozenset()
        self.key_name = ""

    # -- setup ---------------------------------------------------------------------

    def api_version(self) -> str:
        """'Client API 95 (hydrus 682)'; needs no key, so it tests reachability alone."""
        reply = self._call("answering /api_version", self._api.get_api_version)
        return f"Client API {reply.get('version')} (hydrus {reply.get('hydrus_version')})"

    def connect(self) -> None:
        """Check the key and its permissions and resolve the tag service; raise if unfit."""
        if not self._has_key:
            raise HydrusAccessError(
                "no Hydrus access key configured",
                hint="set HYDRUS_MOTION_ACCESS_KEY or hydrus.access_key; make a key in Hydrus "
                     "under services > review services > client api > add")
        info = self._call("checking the access key", self._api.verify_access_key)
        self.key_name = info.get("name", "")
        granted = set(info.get("basic_permissions") or [])
        if info.get("permits_everything"):
            granted = set(PERMISSION_NAMES)
        self.permissions = frozenset(granted)
        missing = [PERMISSION_NAMES[p] for p in REQUIRED_PERMISSIONS if p not in granted]
        if missing:
            raise HydrusAccessError(
                f"Hydrus access key '{self.key_name}' lacks permission to: "
                f"{', '.join(missing)}",
                hint="in Hydrus: services > review services > client api > edit the key "
                     "and tick those permissions")
        self.tag_service_key = self._resolve_tag_service(self.cfg.tag_service)
        log.debug("hydrus: key '%s' ok, tag service '%s' is %s", self.key_name,
                  self.cfg.tag_service, self.tag_service_key)

    def _resolve_tag_service(self, name: str) -> str:
        try:
            service = self._call("looking up the tag service",
                                 self._api.get_service, service_name=name)["service"]
        except HydrusError as exc:
            if exc.status != 404:
                raise
            services = self._call("listing services", self._api.get_services)
            names = [s["name"] for s in services.get("local_tags", [])]
            raise HydrusServiceError(
                f"Hydrus has no tag service named '{name}'",
                hint=f"set hydrus.tag_service to one of: {', '.join(names) or '(none)'}, "
                     "or add a local tag service in Hydrus (services > manage services)",
            ) from None
        if service.get("type") != LOCAL_TAG_SERVICE:
            raise HydrusServiceError(
                f"Hydrus service '{name}' is a {service.get('type_pretty', 'non-tag')} "
                "service, not a local tag service",
                hint="hydrus.tag_service must name a local tag service, such as 'my tags'")
        return service["service_key"]

    # -- reads -------------------------------------------------------------------------

    def files(self, hashes: Sequence[str]) -> dict[str, FileState]:
        """State of each hash, fetched in chunks so the URL stays short."""
        states: dict[str, FileState] = {}
        for start in range(0, len(hashes), self.cfg.metadata_chunk):
            chunk = list(hashes[start:start + self.cfg.metadata_chunk])
            reply = self._call(f"reading metadata of {len(chunk)} files",
                               self._api.get_file_metadata, hashes=chunk,
                               create_new_file_ids=False, include_notes=True,
                               include_services_object=False)
            for entry in reply.get("metadata", []):
                state = self._file_state(entry)
                states[state.hash] = state
        for missing in set(hashes) - states.keys():  # never happens with a real client
            states[missing] = FileState(missing, present=False, deleted=False)
        return states

    def _file_state(self, entry: dict[str, Any]) -> FileState:
        trashed = bool(entry.get("is_trashed"))
        present = bool(entry.get("is_local")) and not trashed
        deleted = trashed or (bool(entry.get("is_deleted")) and not present)
        ours = (entry.get("tags") or {}).get(self.tag_service_key) or {}
        storage = ours.get("storage_tags") or {}
        display = ours.get("display_tags") or {}
        basics = ("file_id", "size", "mime", "width", "height", "duration", "num_frames",
                  "has_audio")
        return FileState(
            hash=entry["hash"], present=present, deleted=deleted,
            tags=frozenset(storage.get("0", [])), deleted_tags=frozenset(storage.get("2", [])),
            display_tags=frozenset(display.get("0", [])), notes=dict(entry.get("notes") or {}),
            metadata={k: entry.get(k) for k in basics})

    def search(self, tags: Sequence[str]) -> list[str]:
        """Hashes of files matching every tag (`-tag` excludes), oldest import first."""
        reply = self._call("searching files", self._api.search_files, list(tags),
                           return_hashes=True)
        return list(reply.get("hashes", []))

    def download(self, file_hash: str, dest: Path) -> int:
        """Stream a file into `dest`, checked against its hash; returns its size in bytes.

        `dest` appears whole and verified, or not at all. A dropped connection restarts
        the download (with the usual retries).
        """
        part = dest.with_name(f".{dest.name}.part")

        def fetch() -> tuple[str, int]:
            import requests

            digest, size = hashlib.sha256(), 0
            try:
                with self._upload_api.get_file(hash_=file_hash) as response, \
                        part.open("wb") as fh:
                    for chunk in response.iter_content(1 << 20):
                        digest.update(chunk)
                        fh.write(chunk)
                        size += len(chunk)
            except requests.RequestException as exc:  # dropped mid-stream: start over
                raise self._hapi.ConnectionError(None) from exc
            return digest.hexdigest(), size

        try:
            got, size = self._call(f"downloading {file_hash}", fetch)
            if got != file_hash:
                raise HydrusDamagedFile(
                    f"Hydrus sent {size} bytes for file {file_hash} whose sha256 is {got}: "
                    "its copy of the file is damaged",
                    hint="in Hydrus run database > file maintenance > 'check file integrity', "
                         "or remove the file's approval")
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)
        return size

    # -- writes ------------------------------------------------------------------------

    def import_file(self, path: Path) -> ImportResult:
        if self._by_path:
            try:
                reply = self._call(f"importing {path.name}", self._upload_api.add_file,
                                   str(path.resolve()))
                return _import_result(reply)
            except HydrusError as exc:
                cannot_read = exc.status == 400 and "Path" in str(exc)
                if not (cannot_read and self.cfg.import_by == "auto"):
                    raise
                log.info("hydrus cannot read %s from its side; uploading bytes from now on",
                         path.parent)
                self._by_path = False

        def upload() -> dict[str, Any]:
            with path.open("rb") as fh:  # reopened per try: a retry must resend every byte
                return self._upload_api.add_file(fh)

        return _import_result(self._call(f"uploading {path.name}", upload))

    def add_tags(self, file_hash: str, tags: Sequence[str]) -> None:
        self._call("adding tags", self._api.add_tags, hashes=[file_hash],
                   service_keys_to_tags={self.tag_service_key: list(tags)})

    def set_notes(self, file_hash: str, notes: dict[str, str]) -> None:
        self._call("setting notes", self._api.set_notes, notes, hash_=file_hash)

    @property
    def commit_permitted(self) -> bool:
        return MANAGE_DATABASE in self.permissions

    def commit(self) -> bool:
        """Make recent writes durable now (Hydrus commits only every 30 s otherwise).

        False when the key may not manage the database; writes then rely on Hydrus'
        own commit, and reconcile repairs what a crash loses.
        """
        if not self.commit_permitted:
            return False
        self._call("committing the Hydrus database", self._api.force_commit)
        return True

    def popup(self, title: str, text: str, hashes: Sequence[str] = ()) -> bool:
        """A finished-job popup in the Hydrus client, files attached; False if not permitted."""
        if MANAGE_POPUPS not in self.permissions:
            return False
        files = {"files_label": "hydrus-motion", "hashes": list(hashes)} if hashes else {}
        self._call("showing a popup", self._api.add_popup, status_title=title,
                   status_text_1=text, **files)
        return True

    # -- the one place requests are made -----------------------------------------------

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        hapi = self._hapi
        attempts = self.cfg.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return fn(*args, **kwargs)
            except (hapi.ConnectionError, hapi.DatabaseLocked) as exc:
                reason = _reason(exc)
                if attempt == attempts:
                    raise HydrusUnreachable(
                        f"Hydrus at {self.cfg.api_url} failed {what} after {attempts} "
                        f"tries: {reason}",
                        hint="is the Hydrus client running with its Client API on? "
                             "(services > manage services > client api); work stays "
                             "queued and is retried") from None
                wait = min(self.cfg.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
                log.warning("hydrus: %s failed (%s); retry %d/%d in %.1f s", what, reason,
                            attempt, attempts - 1, wait)
                self._sleep(wait)
            except hapi.InsufficientAccess as exc:
                raise HydrusAccessError(f"Hydrus refused {what}: {_reason(exc)}",
                                        hint=_access_hint(exc)) from None
            except hapi.APIError as exc:
                error = HydrusError(f"Hydrus failed {what}: {_reason(exc)}")
                error.status = exc.response.status_code
                raise error from None
        raise AssertionError("unreachable")


def _session(timeout: float | tuple[float, float]) -> Any:
    import requests

    class TimeoutSession(requests.Session):
        """hydrus-api sets no timeout; a daemon must never hang on a silent socket."""

        def request(self, method: str, url: str, **kwargs: Any) -> Any:  # type: ignore[override]
            kwargs.setdefault("timeout", timeout)
            return super().request(method, url, **kwargs)

    return TimeoutSession()


def _import_result(reply: dict[str, Any]) -> ImportResult:
    return ImportResult(int(reply.get("status", 4)), str(reply.get("hash", "")),
                        str(reply.get("note", "")))


def _is_loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def _reason(exc: Exception) -> str:
    """A short, key-free reason from a hydrus-api exception."""
    response = getattr(exc, "response", None)
    if response is not None and response.status_code >= 400:
        try:
            text = json.loads(response.text)["error"]
        except (ValueError, KeyError, TypeError):
            text = "not a Client API answer (is that URL a Hydrus client?)" \
                if "html" in response.headers.get("Content-Type", "") else response.text[:200]
        return f"HTTP {response.status_code}: {text}"
    cause = exc.__cause__ or exc
    text = str(cause)
    if "Read timed out" in text or "ReadTimeout" in type(cause).__name__:
        return "no answer before the timeout"
    if "refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "getaddrinfo" in text:
        return "host name not found"
    return type(cause).__name__


def _access_hint(exc: Exception) -> str:
    code = getattr(getattr(exc, "response", None), "status_code", None)
    if code == 401:
        return "set HYDRUS_MOTION_ACCESS_KEY or hydrus.access_key"
    return ("check the key in Hydrus under services > review services > client api "
            "(a key made for another client, or since deleted, is refused)")

