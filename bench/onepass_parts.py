"""Where the one pass's CPU goes: its pieces measured one by one on bench/scenes_slice.py's
video (run that first: it makes bench/out/bench-1080p-60s.mp4).

    .venv/bin/python bench/onepass_parts.py            # the ffmpeg pieces
    .venv/bin/python bench/onepass_parts.py --pyav     # + decode and encode with PyAV

CPU is user + system seconds of the child processes (and, for --pyav, of this process).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT / "bench" / "out" / "bench-1080p-60s.mp4"
X264 = ["-c:v", "libx264", "-crf", "22", "-preset", "veryfast"]
CHAIN = "scale=1920:1080:flags=lanczos,setsar=1,format=yuv420p"  # the one pass's encoder
OUT = ROOT / "bench" / "out" / "parts.mp4"


def cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def ffmpeg(*args: str) -> list[str]:
    return ["ffmpeg", "-v", "error", "-nostdin", "-y", *args]


def reencode() -> None:
    subprocess.run(ffmpeg("-i", str(VIDEO), *X264, "-pix_fmt", "yuv420p", str(OUT)), check=True)


def through_pipe(chain: str | None) -> None:
    """Decode to a raw pipe, encode from it: the one pass's shape, without detection."""
    decode = subprocess.Popen(ffmpeg("-i", str(VIDEO), "-f", "rawvideo", "-pix_fmt", "yuv420p",
                                     "-"), stdout=subprocess.PIPE)
    encode = subprocess.Popen(ffmpeg("-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "1920x1080",
                                     "-framerate", "30", "-i", "pipe:0",
                                     *(["-vf", chain] if chain else []), *X264, str(OUT)),
                              stdin=decode.stdout)
    decode.stdout.close()
    if encode.wait() or decode.wait():
        raise SystemExit("ffmpeg failed")


def decode_outputs(full: bool) -> None:
    """The one pass's decode: the analysis output, and with `full` the full-size one."""
    analysis = "scale=256:144:flags=neighbor,setsar=1,showinfo"
    graph = f"[0:v:0]split=2[a][b];[a]{analysis}[an];[b]null[full]" if full else \
        f"[0:v:0]{analysis}[an]"
    args = ["-i", str(VIDEO), "-filter_complex", graph,
            "-map", "[an]", "-pix_fmt", "bgr24", "-f", "rawvideo", "/dev/null"]
    if full:
        args += ["-map", "[full]", "-pix_fmt", "yuv420p", "-f", "rawvideo", "/dev/null"]
    subprocess.run(ffmpeg(*args), check=True, stderr=subprocess.DEVNULL)


def pyav(analysis: bool) -> None:
    """Decode and encode in this process (PyAV's bundled FFmpeg and libx264)."""
    import av

    with av.open(str(VIDEO)) as source, av.open(str(OUT), "w") as sink:
        stream = source.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate
        out = sink.add_stream("libx264", rate=rate, options={"crf": "22", "preset": "veryfast"})
        out.width, out.height, out.pix_fmt = stream.width, stream.height, "yuv420p"
        time_base = Fraction(rate.denominator, rate.numerator)
        for n, frame in enumerate(source.decode(stream)):
            if analysis:
                frame.reformat(256, 144, "bgr24", interpolation="POINT").to_ndarray()
            frame.pts, frame.time_base = n, time_base
            sink.mux(out.encode(frame))
        sink.mux(out.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyav", action="store_true", help="also the in-process prototype")
    args = parser.parse_args()
    if not VIDEO.exists():
        raise SystemExit(f"{VIDEO} is missing: run bench/scenes_slice.py first")
    pieces = {"re-encode": reencode,
              "decode, analysis output": lambda: decode_outputs(False),
              "decode, analysis + full outputs": lambda: decode_outputs(True),
              "decode -> raw pipe -> encode": lambda: through_pipe(None),
              "... with the one pass's chain": lambda: through_pipe(CHAIN)}
    if args.pyav:
        pieces |= {"PyAV in-process": lambda: pyav(False),
                   "PyAV in-process + analysis": lambda: pyav(True)}
    for name, run in pieces.items():
        start = time.perf_counter()
        before = cpu(resource.RUSAGE_CHILDREN) + cpu(resource.RUSAGE_SELF)
        run()
        used = cpu(resource.RUSAGE_CHILDREN) + cpu(resource.RUSAGE_SELF) - before
        print(f"{name:34s} wall {time.perf_counter() - start:6.2f} s  CPU {used:6.2f} s",
              flush=True)


if __name__ == "__main__":
    main()
