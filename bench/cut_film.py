"""Benchmark: `slice` of a film-length source (2 hours, 2,000+ clips) vs one re-encode.

Run (from the repo root, after scripts/setup.sh; takes a while on 2 cores):

    .venv/bin/python bench/cut_film.py [--work /tmp/cutbench] [--preset veryfast --crf 18]
        [--hours 2] [--size 640x360] [--scene-s 3] [--clips-per-run 50]

Timed in one run, one after the other:
  slice     hydrus-motion slice FILM --out DIR --json, from a generated sidecar with one
            scene per `--scene-s` seconds (2,400 scenes for 2 hours at 3 s)
  reencode  ffmpeg -i FILM -an -c:v libx264 -preset P -crf C out.mp4 (the floor for
            producing the clips: one decode, one encode of every frame)
CPU seconds (user + system, children included) are given beside wall time: on a shared
machine they compare better than wall time. Peak memory is the largest sum of RSS over
the process tree (our process plus its ffmpeg/ffprobe children), sampled every 0.2 s
from /proc. The source is testsrc2 with a
red overlay switching every 3 s (x264 ultrafast, crf 23), generated once into --work.
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
import threading
import time
from fractions import Fraction
from pathlib import Path

BIN = Path(sys.executable).parent


def make_film(path: Path, hours: float, size: str) -> None:
    if path.exists():
        return
    graph = "drawbox=x=0:y=0:w=iw:h=ih:color=red@0.6:t=fill:enable='lt(mod(t\\,6)\\,3)'"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=s={size}:r=24:d={hours * 3600:g}",
                    "-vf", graph, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23",
                    "-pix_fmt", "yuv420p", str(path)], check=True)


def write_scenes(film: Path, frames: int, scene_frames: int) -> int:
    from hydrus_motion.records import Scene, SceneList
    from hydrus_motion.scenes.sidecar import default_sidecar_path, write_sidecar

    fps = Fraction(24)
    bounds = list(range(0, frames, scene_frames)) + [frames]
    scenes = tuple(Scene(i + 1, a, b, float(a / fps), float(b / fps))
                   for i, (a, b) in enumerate(zip(bounds, bounds[1:])))
    write_sidecar(SceneList(film, fps, frames, scenes, "bench"), default_sidecar_path(film))
    return len(scenes)


def tree_rss(pid: int) -> int:
    """Sum of VmRSS (bytes) of pid and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict | None = None) -> tuple[float, int, bytes]:
    """Wall seconds, peak tree RSS, stdout; CPU seconds (incl. grandchildren) go to CPU."""
    start, cpu = time.perf_counter(), children_cpu()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{argv[0]} failed with {proc.returncode}")
    CPU.append(children_cpu() - cpu)
    return time.perf_counter() - start, peak[0], out


CPU: list[float] = []  # CPU seconds of each timed run, in order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cutbench"))
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--scene-s", type=float, default=3.0)
    parser.add_argument("--clips-per-run", type=int, default=50)
    parser.add_argument("--skip-reencode", action="store_true")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    film = args.work / "film.mp4"
    make_film(film, args.hours, args.size)
    frames = round(args.hours * 3600 * 24)
    scenes = write_scenes(film, frames, round(args.scene_s * 24))
    config = args.work / "bench.yaml"
    config.write_text(f"encode:\n  preset: {args.preset}\n  crf: {args.crf}\n"
                      f"  clips_per_run: {args.clips_per_run}\n")
    out = args.work / "clips"
    shutil.rmtree(out, ignore_errors=True)
    argv = [str(BIN / "hydrus-motion"), "slice", str(film), "--out", str(out), "--json",
            "--config", str(config)]
    slice_s, slice_rss, stdout = timed(argv)
    clips = json.loads(stdout)["clips"]
    clip_bytes = sum(Path(c["path"]).stat().st_size for c in clips)
    rerun_s, _, _ = timed(argv)  # every clip finished: nothing is cut again
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "film": str(film),
              "frames": frames, "scenes": scenes, "clips": len(clips),
              "clip_frames": sum(c["frames"] for c in clips), "clip_gb": clip_bytes / 1e9,
              "preset": args.preset, "crf": args.crf, "clips_per_run": args.clips_per_run,
              "slice_s": round(slice_s, 1), "slice_cpu_s": round(CPU[0], 1),
              "slice_peak_rss_mb": round(slice_rss / 2**20),
              "rerun_all_finished_s": round(rerun_s, 2)}
    if not args.skip_reencode:
        ref = args.work / "reencode.mp4"
        reencode_s, reencode_rss, _ = timed(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(film),
             "-an", "-c:v", "libx264", "-preset", args.preset, "-crf", str(args.crf), str(ref)])
        ref.unlink()
        result.update(reencode_s=round(reencode_s, 1), reencode_cpu_s=round(CPU[2], 1),
                      reencode_peak_rss_mb=round(reencode_rss / 2**20),
                      slice_over_reencode=round(slice_s / reencode_s, 2),
                      slice_over_reencode_cpu=round(CPU[0] / CPU[2], 2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
