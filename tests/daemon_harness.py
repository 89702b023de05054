"""A `hydrus-motion daemon` under test: a real subprocess with its own watch folder,
state folder and log, configured with short intervals so each test takes seconds."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ALL_KEY

STARTED: list[subprocess.Popen] = []


def stop_all() -> None:
    """Kill every daemon a test started and left running (call after each test)."""
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class DaemonUnderTest:
    def __init__(self, tmp: Path, fake, key: str = ALL_KEY, **daemon: object):
        self.tmp = tmp
        self.watch = tmp / "watch"
        self.watch.mkdir(exist_ok=True)
        self.state = tmp / "state"
        self.log = tmp / "daemon.log"
        self.config = tmp / "config.yaml"
        nightly = daemon.pop("nightly", {"enabled": False})
        encode = daemon.pop("encode", {"preset": "ultrafast"})
        clips = daemon.pop("clips", {})
        sections = daemon.pop("sections", {})  # more top-level config (annotate, train)
        self.config.write_text(json.dumps({**sections,
            "paths": {"state_dir": str(self.state)}, "encode": encode, "clips": clips,
            "hydrus": {"api_url": fake.url, "access_key": key, "backoff_s": 0,
                       "retries": 0},
            "daemon": {"watch_dir": str(self.watch), "settle_s": 0.3, "rescan_s": 0.3,
                       "poll_s": 0.05, "hydrus_retry_s": 0.2, "reconcile_after_s": 0.2,
                       "retry_backoff_s": 0.1, **daemon},
            "nightly": nightly}))
        self.proc: subprocess.Popen | None = None

    def start(self) -> DaemonUnderTest:
        starts = self.log.read_text().count("daemon: watching") if self.log.exists() else 0
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hydrus_motion", "daemon", "--config", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT)
        STARTED.append(self.proc)
        self.wait_for(lambda: self.log.read_text().count("daemon: watching") > starts,
                      "start-up")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def query(self, sql: str, *params) -> list[tuple]:
        if not (self.state / "state.sqlite3").exists():
            return []
        conn = sqlite3.connect(f"file:{self.state / 'state.sqlite3'}?mode=ro", uri=True,
                               timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return []
        finally:
            conn.close()

    def sources(self) -> dict[str, str]:
        return dict(self.query("SELECT name, status FROM sources"))

    def wait_for(self, done, what: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"daemon exited ({self.proc.returncode}) waiting for {what}:\n"
                            + self.log.read_text()[-3000:])
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n" + self.log.read_text()[-3000:])
            time.sleep(0.05)

    def settled(self) -> bool:
        """Nothing queued or running, and every video finished one way or another."""
        busy = self.query("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')")
        active = self.query("SELECT COUNT(*) FROM sources WHERE status = 'active'")
        return bool(busy) and busy[0][0] == 0 and active[0][0] == 0
