"""Which scene detector should be the default? Measure each on known truth.

    .venv/bin/python bench/detectors.py

Truth: testvideo.mp4 hard cuts (30, 180, 394, 691; PySceneDetect goldens), fades.mp4
(a fade video with no hard cut), counter.mp4 (cut at 20), plus generated videos: four
lavfi scenes with hard cuts at 80/170/240, and a fast camera pan with no cut at all.
A missed cut lets a transition into a training clip (costly); an extra cut only
shortens a clip (cheap), so recall is weighed first.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import KNOWN_CUTS, MEDIA, make_scenes_video  # noqa: E402

from hydrus_motion.config import Config, ScenesConfig  # noqa: E402
from hydrus_motion.probe import probe_video  # noqa: E402
from hydrus_motion.scenes.pyscenedetect import PySceneDetectDetector  # noqa: E402

TOOLS = Config().tools


def pan_video(path: Path) -> Path:
    """A 320x240 window sliding fast across a 1280x720 test pattern: motion, no cut."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=1280x720:rate=30", "-frames:v", "150", "-vf",
                    "crop=320:240:x='mod(n*12,960)':y='mod(n*3,480)'", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "16", str(path)], check=True)
    return path


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    cases = [
        (make_scenes_video(tmp / "generated.mp4"), KNOWN_CUTS),
        (pan_video(tmp / "pan.mp4"), []),
    ]
    if MEDIA.exists():
        cases += [(MEDIA / "testvideo.mp4", [30, 180, 394, 691]),
                  (MEDIA / "fades.mp4", []), (MEDIA / "counter.mp4", [20])]
    print("| detector | " + " | ".join(v.name for v, _ in cases) + " | recall | precision |")
    print("|---" * (len(cases) + 3) + "|")
    for name in ("adaptive", "content", "hash", "histogram", "threshold"):
        hits = found_total = truth_total = 0
        cells = []
        for video, truth in cases:
            info = probe_video(video, TOOLS)
            found = PySceneDetectDetector(ScenesConfig(detector=name), TOOLS).detect(info)
            cuts = [s.start_frame for s in found.scenes[1:]]
            hit = len(set(cuts) & set(truth))
            hits, found_total, truth_total = hits + hit, found_total + len(cuts), \
                truth_total + len(truth)
            cells.append(f"{hit}/{len(truth)} hit, {len(cuts) - hit} extra")
        precision = hits / found_total if found_total else 1.0
        print(f"| {name} | " + " | ".join(cells)
              + f" | {hits / truth_total:.2f} | {precision:.2f} |")


if __name__ == "__main__":
    main()
