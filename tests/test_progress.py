"""Progress bars: drawn on a terminal (a pseudo-terminal here), never under --json and
never when stderr is a pipe or a file."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios

import pytest
from conftest import ffmpeg, run_cli

from hydrus_motion.progress_bar import progress_bar


def run_on_terminal(*args: str, timeout: float = 120) -> tuple[int, str, str]:
    """The CLI with stderr on a pseudo-terminal (stdout a pipe): (code, stdout, terminal)."""
    master, slave = pty.openpty()
    # a terminal has a size (a bare pty has 0 x 0, where tqdm draws nothing)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "hydrus_motion", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                proc.kill()
                pytest.fail("the CLI hung:\n" + seen.decode(errors="replace"))
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal has gone
                break
            if not data:
                break
            seen += data
    finally:
        os.close(master)
    out = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(timeout=30), out, seen.decode(errors="replace")


def redraws(text: str) -> bool:
    """A carriage return that is not a terminal's line end: a bar redrawing its line."""
    return re.search(r"\r(?!\n)", text) is not None


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("progress") / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10", "-frames:v", "20",
           "-pix_fmt", "yuv420p", "-c:v", "libx264", str(path))
    return path


def test_scenes_and_tag_draw_a_bar_on_a_terminal_and_none_under_json(scenes_video, clip,
                                                                     tmp_path):
    video = tmp_path / "v.mp4"
    shutil.copy(scenes_video, video)
    code, out, terminal = run_on_terminal("scenes", str(video))
    assert code == 0, terminal
    assert "scenes:" in terminal and "frame/s" in terminal  # tqdm's bar, by unit
    assert "4 scenes in 315 frames" in out

    code, out, terminal = run_on_terminal("scenes", str(video), "--json")
    assert code == 0, terminal
    assert json.loads(out)["frames"] == 315
    assert "frame/s" not in terminal and not redraws(terminal)

    models = ("--tagger-model", "none", "--captioner-model", "none")
    code, _, terminal = run_on_terminal("tag", str(clip), *models)
    assert code == 0 and "tag:" in terminal and "clip/s" in terminal, terminal


def test_no_bar_when_stderr_is_a_pipe(clip):
    done = run_cli("tag", str(clip), "--tagger-model", "none", "--captioner-model", "none")
    assert done.returncode == 0
    assert "clip/s" not in done.stderr and not redraws(done.stderr)
    assert "clip.mp4: annotated" in done.stderr  # our own line, once
    assert done.stderr.count("clip.mp4: annotated") == 1


def test_a_disabled_bar_reports_nothing(capsys):
    with progress_bar("x", "thing", enabled=False) as progress:
        progress(1, 2)
    assert capsys.readouterr() == ("", "")
