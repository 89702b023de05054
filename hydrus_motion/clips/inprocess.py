"""Decoding and encoding inside our own process with PyAV, for the one pass (issue 17).

    for frame, picture in decode_in_process(info, long_side=256, chain=None):
        frame  # frames.Frame: what `scenes` sees, byte for byte (see below)
        picture  # the same decoded frame at its stored size, deinterlaced by `chain`
    writer = ClipWriter(path, enc, rate, steps, size)  # one clip: filters, encoder, MP4
    writer.write(picture); writer.close()              # or writer.abort()

Why in-process: a raw frame pipe to an encoder process, and each frame carried through
Python on the way, cost about as much as a second decode (docs/BENCHMARKS.md). Here a
decoded frame is handed from the decoder to the clip's filters and encoder by reference.

The analysis frames come from the chain `frames.decode_frames` gives the ffmpeg CLI
(the player's rotation, `scale=WxH:flags=neighbor`, `setsar=1`, bgr24) and each frame's
time from its timestamp less the container's start, as the CLI counts it; so detection,
and the sidecar, are those of `scenes`. test_onepass.py checks that on every media file
we have. PyAV raises on a packet the CLI would skip with a warning: any decode error
gives up the one pass (`GiveUp`), and the two-pass path makes the same sidecar and clips
or reports the error the way it always has.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from hydrus_motion.frames import Frame, analysis_size
from hydrus_motion.records import VideoInfo

_TIME_BASE = Fraction(1, 1_000_000)  # AV_TIME_BASE: the container's start_time
# the ffmpeg CLI's autorotate filters for the degrees the player rotates by
_ROTATE = {90: [("transpose", "clock")], 180: [("hflip", None), ("vflip", None)],
           270: [("transpose", "cclock")]}


class GiveUp(Exception):
    """The one pass cannot do this video; the two passes can, or say why not."""


def available() -> str | None:
    """Why the in-process path cannot run here (None: it can)."""
    try:
        import av  # noqa: F401
    except ImportError as exc:
        return f"PyAV (the av package) does not load: {exc}"
    return None


def encoder_available(codec_name: str) -> bool:
    import av

    return codec_name in av.codecs_available


def parse_chain(chain: str | None) -> list[tuple[str, str | None]]:
    """An ffmpeg filter chain ("a=x:y,b") as (name, options) pairs for Graph.add."""
    steps = []
    for part in (chain or "").split(","):
        if part:
            name, _, args = part.partition("=")
            steps.append((name, args or None))
    return steps


def _rescale(value: int, source: Fraction, target: Fraction) -> int:
    """av_rescale_q: round to nearest, halves away from zero."""
    exact = value * source / target
    whole = abs(exact.numerator) * 2 + exact.denominator
    rounded = whole // (2 * exact.denominator)
    return rounded if exact >= 0 else -rounded


def _link(graph, source, steps: list[tuple[str, str | None]]):
    node = source
    for name, args in steps:
        nxt = graph.add(name, args) if args else graph.add(name)
        node.link_to(nxt)
        node = nxt
    sink = graph.add("buffersink")
    node.link_to(sink)
    return sink


def _pull_all(graph_sink, into: deque) -> None:
    import av

    while True:
        try:
            into.append(graph_sink.pull())
        except (av.BlockingIOError, av.EOFError):
            return


def decode_in_process(info: VideoInfo, *, long_side: int, chain: str | None
                      ) -> Iterator[tuple[Frame, object]]:
    """Every decoded frame: the analysis frame (`decode_frames`' frames) and the frame
    for the clips, after `chain` (filters that output one frame per frame in)."""
    import av
    import numpy as np

    width, height = analysis_size(info, long_side)
    try:
        container = av.open(str(info.path))
    except av.FFmpegError as exc:
        raise GiveUp(f"PyAV cannot open it ({exc})") from None
    with container:
        if not container.streams.video:
            raise GiveUp("PyAV finds no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = Fraction(stream.time_base)
        start = container.start_time
        offset = _rescale(start, _TIME_BASE, time_base) if start is not None else 0

        graph = av.filter.Graph()
        source = graph.add_buffer(template=stream)
        node = source
        for name, args in _ROTATE.get(info.rotation, []):
            nxt = graph.add(name, args) if args else graph.add(name)
            node.link_to(nxt)
            node = nxt
        split = graph.add("split", "2")
        node.link_to(split)
        analysis = graph.add("scale", f"{width}:{height}:flags=neighbor")
        split.link_to(analysis, 0, 0)
        analysed = _link(graph, analysis, [("setsar", "1"), ("format", "bgr24")])
        full_head = graph.add("null")
        split.link_to(full_head, 1, 0)
        full = _link(graph, full_head, parse_chain(chain))
        graph.configure()

        times: deque[float] = deque()
        small: deque = deque()
        large: deque = deque()
        index = 0

        def ready() -> Iterator[tuple[Frame, object]]:
            nonlocal index
            _pull_all(analysed, small)
            _pull_all(full, large)
            while small and large:
                image = small.popleft().to_ndarray()
                assert image.shape == (height, width, 3) and image.dtype == np.uint8
                yield Frame(index, times.popleft(), image), large.popleft()
                index += 1

        try:
            for decoded in container.decode(stream):
                if decoded.pts is None:
                    raise GiveUp(f"frame {index + len(times)} has no timestamp")
                times.append(float((decoded.pts - offset) * time_base))
                graph.push(decoded)
                yield from ready()
            graph.push(None)
            yield from ready()
        except av.FFmpegError as exc:
            raise GiveUp(f"PyAV stopped decoding it near frame {index} ({exc})") from None
        if small or large or times:
            raise GiveUp(f"the analysis and full-size frames differ in number after {index}")


class ClipWriter:
    """One clip: the two-pass cutter's filters after the decode (crop, lanczos scale,
    setsar, yuv420p), `encode.codec` at `rate`, into an MP4 at `path`."""

    def __init__(self, path: Path, codec: dict[str, object], rate: Fraction,
                 steps: list[tuple[str, str | None]], size: tuple[int, int]):
        self.path, self.rate, self.steps, self.size = path, rate, steps, size
        options = {key: str(value) for key, value in codec.items()}
        self.codec_name = options.pop("c:v")
        self.bit_rate = int(options.pop("b:v", "-1"))
        self.options = options
        self.frames = 0
        self._graph = self._sink = self._stream = self._out = None

    def _open(self, picture) -> None:
        """MP4, filters and encoder at the first frame (its format, size and colour)."""
        import av.filter

        self._out = av.open(str(self.path), "w", format="mp4",
                            options={"movflags": "+faststart"})
        graph = av.filter.Graph()
        source = graph.add_buffer(width=picture.width, height=picture.height,
                                  format=picture.format.name, time_base=1 / self.rate)
        self._sink = _link(graph, source, self.steps)
        graph.configure()
        self._graph = graph
        stream = self._out.add_stream(self.codec_name, rate=self.rate, options=self.options)
        stream.width, stream.height = self.size
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / self.rate
        context = stream.codec_context
        context.thread_count = 0  # auto, as the ffmpeg CLI sets it
        if self.bit_rate >= 0:
            context.bit_rate = self.bit_rate
        # the VUI comes from the encoder's settings, not the frames: as the CLI copies them
        context.color_range = picture.color_range
        context.colorspace = picture.colorspace
        context.color_primaries = picture.color_primaries
        context.color_trc = picture.color_trc
        self._stream = stream

    def write(self, picture) -> None:
        if self._graph is None:
            self._open(picture)
        picture.pts, picture.time_base = self.frames, 1 / self.rate
        self.frames += 1
        self._graph.push(picture)
        self._encode()

    def _encode(self) -> None:
        out: deque = deque()
        _pull_all(self._sink, out)
        for filtered in out:
            self._out.mux(self._stream.encode(filtered))

    def close(self) -> None:
        """Flush the encoder and finish the MP4 (its index written: faststart)."""
        try:
            if self._graph is not None:
                self._graph.push(None)
                self._encode()
                self._out.mux(self._stream.encode(None))
        finally:
            if self._out is not None:
                self._out.close()

    def abort(self) -> None:
        try:
            if self._out is not None:
                self._out.close()
        except Exception:  # noqa: BLE001 - the file is deleted next
            pass
        self.path.unlink(missing_ok=True)

