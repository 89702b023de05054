"""Benchmark: our detection + cutting against its peers on one 60 s 1080p H.264 video.

Run (from the repo root, after scripts/setup.sh):

    .venv/bin/python bench/scenes_slice.py [--preset veryfast --crf 22] [--repeat 1]

Timed side by side in one run, interleaved round by round, so the ratios hold even on a
noisy machine. Like for like: every scene whole (no minimum, no trim, no split), the
source size out, the same x264 preset and crf, PySceneDetect's min_scene_len:
  one pass       hydrus-motion ingest --no-push V      (a new video: one decode, issue 17)
  two pass       hydrus-motion scenes V && hydrus-motion slice V --out DIR
  pyscenedetect  scenedetect -i V detect-adaptive --min-scene-len 0.6s split-video
  decode         ffmpeg -i V -f null -            (the floor for any detector)
  reencode       ffmpeg -i V -c:v libx264 ...     (the floor for producing the clips)

The video is testvideo.mp4 from shared/media (real footage with real cuts) scaled to
1920x1080 and looped to 60 s, or a lavfi composition when that file is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media" / "pyscenedetect" / "testvideo.mp4"
BIN = Path(sys.executable).parent


def children_cpu() -> float:
    # RUSAGE_CHILDREN counts every waited-for descendant: our ffmpeg runs under
    # hydrus-motion count too, once hydrus-motion has been waited for
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   **kwargs)
    return time.perf_counter() - start


def make_video(path: Path, preset: str) -> None:
    if path.exists():
        return
    if MEDIA.exists():
        source = ["-stream_loop", "-1", "-i", str(MEDIA)]
        graph = "scale=1920:1080:flags=lanczos,format=yuv420p"
    else:
        source = ["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30"]
        graph = "format=yuv420p"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *source, "-t", "60",
                    "-vf", graph, "-an", "-c:v", "libx264", "-preset", preset, "-crf", "18",
                    str(path)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--crf", type=int, default=22)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--max-short-side", type=int, default=0,
                        help="our output cap (0 = source size, like the peers)")
    args = parser.parse_args()

    work = ROOT / "bench" / "out"
    work.mkdir(parents=True, exist_ok=True)
    video = work / "bench-1080p-60s.mp4"
    make_video(video, "medium")
    config = work / "bench.yaml"
    config.write_text(
        f"encode:\n  preset: {args.preset}\n  crf: {args.crf}\n"
        f"  max_short_side: {args.max_short_side}\n"
        # PySceneDetect's split-video: every scene whole, from its first frame to its last
        "clips:\n  min_frames: 1\n  max_frames: 1000000\n  trim_frames: 0\n"
        f"annotate:\n  enabled: false\npaths:\n  state_dir: {work / 'state'}\n")
    hm = str(BIN / "hydrus-motion")
    sidecar = video.with_name(video.name + ".scenes.txt")

    def one_pass() -> float:
        shutil.rmtree(work / "state", ignore_errors=True)
        sidecar.unlink(missing_ok=True)  # a new video: no sidecar yet
        return run([hm, "ingest", "--no-push", "--config", str(config), str(video)])

    def two_pass() -> float:
        out = work / "ours"
        shutil.rmtree(out, ignore_errors=True)
        return (run([hm, "scenes", "--config", str(config), str(video)])
                + run([hm, "slice", "--config", str(config), "--out", str(out), str(video)]))

    def pyscenedetect() -> float:
        out = work / "pyscenedetect"
        shutil.rmtree(out, ignore_errors=True)
        return run([str(BIN / "scenedetect"), "-i", str(video), "-o", str(out),
                    "detect-adaptive", "--min-scene-len", "0.6s", "split-video", "-q",
                    "-crf", str(args.crf), "-p", args.preset])

    def decode() -> float:
        return run(["ffmpeg", "-hide_banner", "-nostdin", "-i", str(video), "-f", "null", "-"])

    def reencode() -> float:
        return run(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-i", str(video), "-an",
                    "-c:v", "libx264", "-preset", args.preset, "-crf", str(args.crf),
                    "-pix_fmt", "yuv420p", str(work / "reencode.mp4")])

    runs = {"one_pass": one_pass, "two_pass": two_pass, "pyscenedetect": pyscenedetect,
            "decode": decode, "reencode": reencode}
    times: dict[str, float] = {name: float("inf") for name in runs}
    cpu: dict[str, float] = {name: float("inf") for name in runs}
    for round_ in range(args.repeat):
        for name, fn in runs.items():
            before = children_cpu()
            seconds = fn()
            used = children_cpu() - before
            times[name], cpu[name] = min(times[name], seconds), min(cpu[name], used)
            print(f"round {round_ + 1}: {name:14s} {seconds:8.2f} s wall {used:8.2f} s CPU "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    one_clips = len(list((work / "state" / "clips").glob("*/*.mp4")))
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}, "
                   f"load average {os.getloadavg()[0]:.1f}",
        "x264": {"preset": args.preset, "crf": args.crf},
        "ours_max_short_side": args.max_short_side,
        "seconds": {k: round(v, 2) for k, v in times.items()},
        "one_pass_vs_reencode": round(times["one_pass"] / times["reencode"], 3),
        "one_pass_vs_pyscenedetect": round(times["one_pass"] / times["pyscenedetect"], 3),
        "two_pass_vs_reencode": round(times["two_pass"] / times["reencode"], 3),
        "two_pass_vs_pyscenedetect": round(times["two_pass"] / times["pyscenedetect"], 3),
        # CPU time barely moves with other jobs' load, wall time does: both are shown
        "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
        "cpu_one_pass_vs_reencode": round(cpu["one_pass"] / cpu["reencode"], 3),
        "cpu_one_pass_vs_pyscenedetect": round(cpu["one_pass"] / cpu["pyscenedetect"], 3),
        "cpu_two_pass_vs_reencode": round(cpu["two_pass"] / cpu["reencode"], 3),
        "clips": {"one_pass": one_clips,
                  "two_pass": len(list((work / "ours").glob("*.mp4"))),
                  "pyscenedetect": len(list((work / "pyscenedetect").glob("*.mp4")))},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
