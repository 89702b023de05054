"""The README's main command: `scripts/run.sh` ends in `hydrus-motion start`. Run here as
that entry point (a real subprocess) with a temp home folder (HOME and XDG_*) and the
Hydrus test server: first with nothing set up, then with a video, its subtitles and a
folder .nfo dropped into the default watch folder, without a key and then with one."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ALL_KEY, start_fake_hydrus
from daemon_harness import STARTED, stop_all

RUN_SH = Path(__file__).resolve().parents[1] / "scripts" / "run.sh"


@pytest.fixture(autouse=True)
def no_daemon_outlives_its_test():
    yield
    stop_all()


class Home:
    def __init__(self, root: Path):
        self.root = root
        self.env = {**os.environ, "HOME": str(root / "home"),
                    "XDG_CONFIG_HOME": str(root / "config"),
                    "XDG_STATE_HOME": str(root / "state"), "XDG_DATA_HOME": str(root / "data")}
        for var in ("HYDRUS_MOTION_CONFIG", "HYDRUS_MOTION_ACCESS_KEY"):
            self.env.pop(var, None)
        self.config = root / "config" / "hydrus-motion" / "config.yaml"
        self.watch = root / "data" / "hydrus-motion" / "watch"
        self.state = root / "state" / "hydrus-motion"
        self.log = root / "start.log"
        self.proc: subprocess.Popen | None = None

    def start(self, **env: str) -> str:
        before = self.log.read_text() if self.log.exists() else ""
        with self.log.open("a") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "hydrus_motion", "start"],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         env={**self.env, **env})
        STARTED.append(self.proc)
        self.wait_for(lambda: "daemon: watching" in self.log.read_text()[len(before):],
                      "start-up")
        return self.log.read_text()[len(before):]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0

    def query(self, sql: str) -> list[tuple]:
        try:
            conn = sqlite3.connect(f"file:{self.state / 'state.sqlite3'}?mode=ro", uri=True)
            try:
                return conn.execute(sql).fetchall()
            finally:
                conn.close()
        except sqlite3.OperationalError:
            return []

    def wait_for(self, done, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"waiting for {what}:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)


def test_run_sh_ends_in_the_start_command():
    assert RUN_SH.read_text().rstrip().endswith('hydrus-motion" start "$@"')


def test_start_sets_up_watches_the_default_folder_and_leaves_side_files_alone(
        tmp_path, scenes_video):
    home = Home(tmp_path)
    out = home.start()  # nothing set up: no config, no key, no watch folder
    assert f"hydrus-motion: watching {home.watch}" in out and home.watch.is_dir()
    assert f"config: {home.config} (from user config file)  (just written" in out
    assert "hydrus: no access key yet: clips are cut and queued" in out
    assert "services > review services > client api > add" in out
    assert "HYDRUS_MOTION_ACCESS_KEY" in out
    home.stop()
    assert home.config.read_text().startswith("# Written by `hydrus-motion config init`")

    hydrus = start_fake_hydrus()
    try:
        settings = {  # the user edits the starter config
            "hydrus": {"api_url": hydrus.url, "retries": 0, "backoff_s": 0},
            "encode": {"preset": "ultrafast"}, "annotate": {"enabled": False},
            "nightly": {"enabled": False},
            "daemon": {"settle_s": 0.3, "rescan_s": 0.3, "poll_s": 0.05,
                       "hydrus_retry_s": 0.2, "reconcile_after_s": 0.2}}
        home.config.write_text(yaml.safe_dump(settings))
        sides = {"film.srt": "1\n00:00:00,000 --> 00:00:01,000\nhello\n",
                 "tvshow.nfo": "<tvshow><title>film</title></tvshow>\n"}
        for name, text in sides.items():
            (home.watch / name).write_text(text)
        stamps = {name: (home.watch / name).stat().st_mtime_ns for name in sides}
        shutil.copy(scenes_video, home.watch / "film.mp4")

        out = home.start()  # still no key: cut and queued, the side files untouched
        assert "hydrus: no access key yet" in out
        home.wait_for(lambda: [r[0] for r in home.query("SELECT push_status FROM clips")]
                      == ["queued"] * 4, "four clips cut and queued")
        time.sleep(0.5)  # a few more rescans: nothing else is taken, nothing moved
        assert (home.watch / "film.mp4").exists() and not hydrus.db.files
        for name, text in sides.items():
            assert (home.watch / name).read_text() == text
            assert (home.watch / name).stat().st_mtime_ns == stamps[name]
        assert home.query("SELECT name FROM sources") == [("film.mp4",)]

        settings["hydrus"]["access_key"] = ALL_KEY  # saved while it runs: the queue drains
        home.config.write_text(yaml.safe_dump(settings))
        home.wait_for(lambda: home.query("SELECT status FROM sources") == [("done",)],
                      "the video done")
        home.stop()
        assert "hydrus: an access key is now in" in home.log.read_text()
        pushed = {r[0] for r in home.query("SELECT sha256 FROM clips")}
        assert len(pushed) == 4 and pushed <= set(hydrus.db.files)
        archive = home.state / "archive"
        assert (archive / "film.mp4").exists()
        assert (archive / "film.srt").read_text() == sides["film.srt"]  # went with it
        assert sorted(p.name for p in home.watch.iterdir()) == ["tvshow.nfo"]  # stayed
        assert (home.watch / "tvshow.nfo").stat().st_mtime_ns == stamps["tvshow.nfo"]

        settings["hydrus"].pop("access_key")
        home.config.write_text(yaml.safe_dump(settings))
        out = home.start(HYDRUS_MOTION_ACCESS_KEY=ALL_KEY)  # the key from the environment
        assert f"hydrus: {hydrus.url}: clips arrive tagged 'motion:pending'" in out
        home.stop()
    finally:
        hydrus.stop()
