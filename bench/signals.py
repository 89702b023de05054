"""The figures behind annotate.motion's and annotate.text's thresholds (docs/CURATION.md):
flow magnitude, camera fit and cadence on generated clips of known motion, and the same
plus the text detector on shots cut from the real media in ../shared/media/pyscenedetect.

Run (from the repo root, extras tag + text installed):

    .venv/bin/python bench/signals.py            # prints a Markdown table
    .venv/bin/python bench/signals.py --no-verify   # text from the detector alone

Generated clips (tests/signal_media.py): 320x180, 24 fps, 48 frames; a still picture
(blurred noise under testsrc2) panned/tilted at 2 px of 320 per frame (0.15 widths/s, or
0.27 heights/s), a slow pan at a quarter of that, zoomed at 1 % of scale per frame, faded
out, flickered (brightness +-0.2 at 6 Hz); testsrc2 held for 2 and 3 frames.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from signal_media import MOVES, moving_clip, on_twos_clip, plain_clip, text_clip  # noqa: E402

from hydrus_motion.annotate import annotate_clips  # noqa: E402
from hydrus_motion.config import config_from_dict  # noqa: E402

MEDIA = ROOT.parent / "shared" / "media" / "pyscenedetect"
# (file, first frame, last frame): shots inside the goldens' cuts, scaled to 360p
REAL = [("testvideo.mp4", 35, 175), ("testvideo.mp4", 185, 389), ("testvideo.mp4", 399, 686),
        ("fades.mp4", 0, 249), ("issue-134-rotate.mp4", 0, 239),
        ("issue-195-aspect-ratio.mp4", 0, 627), ("counter.mp4", 0, 29)]


def cut(folder: Path, name: str, first: int, last: int) -> Path:
    out = folder / f"real-{Path(name).stem}-{first}.mp4"
    if not out.exists():
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                        "-i", str(MEDIA / name), "-vf",
                        f"select=between(n\\,{first}\\,{last}),setpts=N/FRAME_RATE/TB,"
                        "scale=-2:360", "-an", "-c:v", "libx264", "-crf", "18", "-preset",
                        "veryfast", str(out)], check=True)
    return out


def fractal(folder: Path) -> Path:
    """A Mandelbrot zoom: texture the text detector alone takes for text."""
    out = folder / "mandelbrot.mp4"
    if not out.exists():
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                        "-f", "lavfi", "-i", "mandelbrot=size=320x180:rate=24", "-frames:v",
                        "48", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-crf", "18",
                        "-preset", "veryfast", str(out)], check=True)
    return out


def main() -> None:
    folder = ROOT / "bench" / "out" / "signals"
    folder.mkdir(parents=True, exist_ok=True)
    clips = [moving_clip(folder, n) for n in MOVES] + [on_twos_clip(folder, 2),
                                                        on_twos_clip(folder, 3)]
    clips += [plain_clip(folder), text_clip(folder, "subtitles"), text_clip(folder, "logo"),
              fractal(folder)]
    if MEDIA.is_dir():
        clips += [cut(folder, *r) for r in REAL]
    verify = "--no-verify" not in sys.argv  # the detector alone, for comparison
    cfg = config_from_dict({"annotate": {"tagger": {"model": None},
                                         "captioner": {"model": None},
                                         "text": {"verify": verify},
                                         "duplicates": {"enabled": False}}})
    print("| clip | flow w/s | pan w/s | tilt h/s | zoom log/s | held | cadence | text | "
          "subs | logo | tags | read |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in annotate_clips(clips, cfg):
        m, t = r.motion, r.text
        tags = [x for x in r.hydrus_tags(cfg) if x.split(":")[0] in ("motion", "camera")
                or x.startswith("quality:text") or x in ("quality:subtitles", "quality:logo")]
        print(f"| {r.path.stem} | {m.magnitude:.3f} | {m.pan:+.3f} | {m.tilt:+.3f} | "
              f"{m.zoom:+.3f} | {m.held_fraction:.2f} | {m.cadence} | "
              f"{t.text:.2f} | {t.subtitles:.2f} | {t.logo:.2f} | {', '.join(tags)} | "
              f"{'; '.join(t.read)[:60]} |")


if __name__ == "__main__":
    main()
