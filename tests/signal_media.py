"""Generated clips of known motion, cadence and text (ffmpeg lavfi), for the signal tests
and bench/signals.py.

A still picture (1280x720: blurred noise, blobs and edges everywhere, under testsrc2's
pattern) is
panned, tilted and zoomed by a known amount; a fade and a flicker change only its
brightness; a source on twos repeats each drawing twice.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

SIZE = (320, 180)  # clip size
FPS = 24
FRAMES = 48


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
                   check=True)


def still(folder: Path) -> Path:
    out = folder / "still.png"
    if not out.exists():
        ffmpeg("-f", "lavfi", "-i", "color=gray:size=1280x720:rate=1", "-f", "lavfi", "-i",
               "testsrc2=size=1280x720:rate=1", "-filter_complex",
               "[0]noise=alls=100:allf=0,gblur=sigma=3,eq=contrast=3[n];"
               "[n][1]blend=all_mode=average", "-frames:v", "1", str(out))
    return out


# name -> filter on the looped 1280x720 still, giving SIZE at FPS; speeds in px/frame of
# the 640x360 crop (= 2 x clip pixels), so a pan of 4 moves 2/320 widths per frame.
MOVES = {
    "static": "crop=640:360:320:180",
    "pan_right": "crop=640:360:x='100+4*n':y=180",  # content moves left: camera pans right
    "pan_left": "crop=640:360:x='500-4*n':y=180",
    "tilt_down": "crop=640:360:x=320:y='60+4*n'",  # content moves up: camera tilts down
    "tilt_up": "crop=640:360:x=320:y='300-4*n'",
    "slow_pan": "crop=640:360:x='300+1*n':y=180",
    "zoom_in": "zoompan=z='1+0.01*on':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':d=1:s=640x360",
    "zoom_out": "zoompan=z='1.6-0.01*on':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':d=1:s=640x360",
    "fade": "crop=640:360:320:180,fade=t=out:st=0:d=2",
    "flicker": "crop=640:360:320:180,eq=brightness='0.2*sin(2*PI*t*6)':eval=frame",
}


def moving_clip(folder: Path, name: str, crf: int = 18) -> Path:
    out = folder / f"{name}.mp4"
    if not out.exists():
        ffmpeg("-loop", "1", "-framerate", str(FPS), "-i", str(still(folder)),
               "-vf", f"{MOVES[name]},scale={SIZE[0]}:{SIZE[1]}:flags=area,format=yuv420p",
               "-frames:v", str(FRAMES), "-r", str(FPS), "-c:v", "libx264", "-preset",
               "veryfast", "-crf", str(crf), str(out))
    return out


def on_twos_clip(folder: Path, hold: int = 2) -> Path:
    """testsrc2 (a new picture every frame) with each drawing shown `hold` times."""
    out = folder / f"on-{hold}.mp4"
    if not out.exists():
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={FPS / hold}",
               "-vf", f"fps={FPS},format=yuv420p", "-frames:v", str(FRAMES),
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", str(out))
    return out


FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def plain_clip(folder: Path) -> Path:
    """The noise picture alone, panning: no text anywhere."""
    out = folder / "plain.mp4"
    if not out.exists():
        noise = folder / "noise.png"
        ffmpeg("-f", "lavfi", "-i", "color=gray:size=1280x720:rate=1", "-vf",
               "noise=alls=100:allf=0,gblur=sigma=3,eq=contrast=3", "-frames:v", "1",
               str(noise))
        ffmpeg("-loop", "1", "-framerate", str(FPS), "-i", str(noise), "-vf",
               f"crop=640:360:x='100+4*n':y=180,scale={SIZE[0]}:{SIZE[1]},format=yuv420p",
               "-frames:v", str(FRAMES), "-c:v", "libx264", "-preset", "veryfast", "-crf",
               "18", str(out))
    return out


def text_clip(folder: Path, kind: str) -> Path:
    """plain_clip with a subtitle line (bottom centre) or a small logo (top right)."""
    out = folder / f"text-{kind}.mp4"
    draw = {"subtitles": "text='I never said that, he whispered':fontsize=16:"
                         "x=(w-tw)/2:y=h-th-12:borderw=2",
            "logo": "text='TV5':fontsize=14:x=w-tw-8:y=8:borderw=1"}[kind]
    if not out.exists():
        ffmpeg("-i", str(plain_clip(folder)), "-vf",
               f"drawtext=fontfile={FONT}:fontcolor=white:{draw}", "-c:v", "libx264",
               "-preset", "veryfast", "-crf", "18", str(out))
    return out


def duplicate_sources(folder: Path) -> tuple[Path, Path]:
    """Two source videos: A is one shot (the still picture panning, 90 frames); B is an
    unrelated shot, then a re-encoded copy of A's shot at another size and quality."""
    a, b = folder / "source-a.mp4", folder / "source-b.mp4"
    ffmpeg("-loop", "1", "-framerate", str(FPS), "-i", str(still(folder)), "-vf",
           "crop=640:360:x='40+3*n':y=180,scale=320:180,format=yuv420p", "-frames:v", "90",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", str(a))
    ffmpeg("-f", "lavfi", "-i", f"mandelbrot=size=256x144:rate={FPS}", "-i", str(a),
           "-filter_complex", "[0]trim=end_frame=90,setpts=PTS-STARTPTS,format=yuv420p[m];"
           "[1]scale=256:144,setpts=PTS-STARTPTS,format=yuv420p[c];[m][c]concat=n=2:v=1[v]",
           "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "30", str(b))
    return a, b
