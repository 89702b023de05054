"""What black-bar measuring and interlace detection add to a video's processing (issue 14).

    .venv/bin/python bench/picture.py [VIDEO ...]   (default: the shared testvideo.mp4)

Per video: scene detection without and with the bar meter (best of 3, wall and CPU
seconds, ours + ffmpeg's), and the idet sample `slice` runs (wall and ffmpeg CPU).
Also the meter's own cost per analysis frame (256 x 144). Figures: docs/BENCHMARKS.md.
"""

from __future__ import annotations

import os
import sys
import time
import timeit
from pathlib import Path

import numpy as np

from hydrus_motion.clips.fields import measure_scan
from hydrus_motion.config import ClipsConfig, Config
from hydrus_motion.probe import probe_video
from hydrus_motion.scenes.bars import frame_extent
from hydrus_motion.scenes.pyscenedetect import PySceneDetectDetector

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media" / "pyscenedetect"


def cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn) -> tuple[float, float, object]:
    wall, used = time.perf_counter(), cpu()
    result = fn()
    return time.perf_counter() - wall, cpu() - used, result


def main(videos: list[Path]) -> None:
    cfg = Config()
    image = np.random.default_rng(0).integers(0, 255, (144, 256, 3), dtype=np.uint8)
    per_frame = timeit.timeit(lambda: frame_extent(image, 12), number=2000) / 2000
    print(f"bar meter: {per_frame * 1e3:.3f} ms per 256x144 frame")
    for video in videos:
        info = probe_video(video, cfg.tools)
        for label, clips in (("detect, no bars", None), ("detect + bars", ClipsConfig())):
            detector = PySceneDetectDetector(cfg.scenes, cfg.tools, clips)
            runs = [timed(lambda d=detector, i=info: d.detect(i)) for _ in range(3)]
            wall, used, scenes = min(runs, key=lambda r: r[0])
            print(f"{video.name}: {label}: {wall:.2f} s wall, {used:.2f} s CPU "
                  f"({scenes.frames} frames)")
        wall, used, scan = timed(lambda i=info: measure_scan(i, cfg.tools))
        print(f"{video.name}: idet sample: {wall:.2f} s wall, {used:.2f} s CPU ({scan})")


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]] or [MEDIA / "testvideo.mp4"])
