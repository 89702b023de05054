"""Benchmark: the daemon end to end, minutes of video per minute of wall time, peak memory.

Run (from the repo root, after scripts/setup.sh dev):

    .venv/bin/python bench/daemon.py [--videos 8] [--seconds 30] [--preset medium]

What it does: makes N different videos of S seconds each (real footage with real cuts:
shared/media testvideo.mp4, 1280x720 at 29.97 fps, looped from a different start each,
so every video and every clip is new content; a lavfi composition when that file is
absent), starts the Hydrus test server and `hydrus-motion daemon` as a subprocess with
the default config except the paths (and `--preset`), drops all N videos into the watch
folder at once and waits until every one is done: detected, cut, annotated (the tiny
WD-format ONNX tagger the tests build, plus quality scores; no captioner), pushed into
Hydrus and archived. Memory is sampled every 0.2 s from /proc: the
daemon's own peak (VmHWM) and the peak of the daemon plus all its children (ffmpeg).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media" / "pyscenedetect" / "testvideo.mp4"
sys.path.insert(0, str(ROOT / "tests"))


def make_videos(folder: Path, count: int, seconds: float) -> list[Path]:
    videos = []
    for n in range(count):
        out = folder / f"video{n:02d}.mp4"
        if MEDIA.exists():
            source = ["-stream_loop", "-1", "-ss", f"{n * 3.7:.2f}", "-i", str(MEDIA)]
        else:
            source = ["-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30,hue=h={n * 30}"]
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *source,
                        "-t", str(seconds), "-an", "-c:v", "libx264", "-preset", "veryfast",
                        "-crf", "20", str(out)], check=True)
        videos.append(out)
    return videos


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
    return pids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--cpu-workers", type=int, default=1)
    args = parser.parse_args()

    from hydrus_server import ALL_PERMISSIONS, FakeHydrus
    from tiny_models import build_wd_tagger

    key = "a1" * 32
    hydrus = FakeHydrus(permissions={key: ALL_PERMISSIONS}).start()
    work = Path(tempfile.mkdtemp(prefix="bench-daemon-"))
    try:
        videos = make_videos(work, args.videos, args.seconds)
        watch = work / "watch"
        watch.mkdir()
        config = work / "config.yaml"
        tagger = build_wd_tagger(work / "wd-tagger")
        config.write_text(json.dumps({
            "paths": {"state_dir": str(work / "state")},
            "annotate": {"tagger": {"model": str(tagger)}, "captioner": {"model": None}},
            "encode": {"preset": args.preset},
            "hydrus": {"api_url": hydrus.url, "access_key": key},
            "daemon": {"watch_dir": str(watch), "settle_s": 1.0, "rescan_s": 1.0,
                       "cpu_workers": args.cpu_workers},
            "nightly": {"enabled": False}}))
        log = (work / "daemon.log").open("w")
        daemon = subprocess.Popen([sys.executable, "-m", "hydrus_motion", "daemon",
                                   "--config", str(config)], stdout=log,
                                  stderr=subprocess.STDOUT, cwd=ROOT)
        time.sleep(2.0)
        start = time.perf_counter()
        for video in videos:
            shutil.copy(video, watch / video.name)
        db = work / "state" / "state.sqlite3"
        peak_tree = 0
        while True:
            peak_tree = max(peak_tree, sum(rss_kib(p) for p in tree(daemon.pid)))
            done = 0
            if db.exists():
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                    try:
                        done = conn.execute("SELECT COUNT(*) FROM sources WHERE status != "
                                            "'active'").fetchone()[0]
                    except sqlite3.OperationalError:
                        pass
            if done == len(videos):
                break
            if daemon.poll() is not None:
                raise SystemExit(f"daemon died: see {work / 'daemon.log'}")
            time.sleep(0.2)
        wall = time.perf_counter() - start
        hwm = next(int(line.split()[1]) for line in
                   Path(f"/proc/{daemon.pid}/status").read_text().splitlines()
                   if line.startswith("VmHWM:"))
        daemon.terminate()
        daemon.wait(timeout=60)
        with sqlite3.connect(db) as conn:
            statuses = dict(conn.execute("SELECT status, COUNT(*) FROM sources GROUP BY 1"))
            clips = conn.execute("SELECT COUNT(*) FROM clips WHERE push_status = 'pushed'"
                                 ).fetchone()[0]
        minutes = len(videos) * args.seconds / 60
        print(json.dumps({
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
            "python": platform.python_version(), "videos": len(videos),
            "video_minutes": round(minutes, 2), "wall_minutes": round(wall / 60, 2),
            "video_minutes_per_minute": round(minutes / (wall / 60), 2),
            "peak_rss_daemon_mib": round(hwm / 1024, 1),
            "peak_rss_with_children_mib": round(peak_tree / 1024, 1),
            "sources": statuses, "clips_pushed": clips, "hydrus_files": len(hydrus.db.files),
            "preset": args.preset, "cpu_workers": args.cpu_workers}, indent=2))
    finally:
        hydrus.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
