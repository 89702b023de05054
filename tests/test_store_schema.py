"""Schema migrations when two processes open an old state file at once, and a state file
newer than the code; the missed-run rule that the schedule follows."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from hydrus_motion.store import open_store
from hydrus_motion.store.db import MIGRATIONS, SchemaTooNew, _statements


def _old_state(tmp_path, version: int) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "state.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for number, script in enumerate(MIGRATIONS[:version], start=1):
        for statement in _statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    return conn


def test_a_migration_another_process_is_running_is_not_run_twice(tmp_path):
    other = _old_state(tmp_path, 1)  # after an upgrade: the daemon and a timer run start
    other.execute("BEGIN IMMEDIATE")  # the other process is migrating right now
    result: dict[str, object] = {}

    def open_it() -> None:
        try:
            store = open_store(tmp_path)
            result["version"] = store.conn.execute("PRAGMA user_version").fetchone()[0]
            store.close()
        except Exception as exc:  # what the test reports
            result["error"] = exc

    thread = threading.Thread(target=open_it)
    thread.start()
    time.sleep(0.5)  # it has read the old version and waits for the write lock
    for number, script in enumerate(MIGRATIONS[1:], start=2):
        for statement in _statements(script):
            other.execute(statement)
        other.execute(f"PRAGMA user_version = {number}")
    other.execute("COMMIT")
    thread.join(timeout=40)
    assert "error" not in result, result.get("error")
    assert result["version"] == len(MIGRATIONS)


def test_a_state_file_newer_than_the_code_is_refused_and_left_alone(tmp_path):
    conn = _old_state(tmp_path, len(MIGRATIONS))
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew) as refused:
        open_store(tmp_path)
    assert f"schema {len(MIGRATIONS) + 1}, newer than this hydrus-motion" in str(refused.value)
    assert "upgrade hydrus-motion" in refused.value.hint
    check = sqlite3.connect(tmp_path / "state.sqlite3")
    assert check.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 1


def test_the_cli_says_so_without_a_traceback(tmp_path):
    from conftest import run_cli

    conn = _old_state(tmp_path, len(MIGRATIONS))
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    config = tmp_path / "c.yaml"
    config.write_text(f"paths:\n  state_dir: {tmp_path}\n")
    done = run_cli("status", "--json", "--config", str(config))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "schema 99" in done.stderr
