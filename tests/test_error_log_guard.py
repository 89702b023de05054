"""The suite's guard (conftest.no_unexpected_error_log): an ERROR log line fails a test
unless the test is marked as logging one on purpose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBE = '''
import logging
import pytest

def test_unmarked_error():
    logging.getLogger("hydrus_motion.x").error("the disk caught fire")

@pytest.mark.expect_error_log
def test_marked_error():
    logging.getLogger("hydrus_motion.x").error("an error it expects")

def test_a_warning_is_fine():
    logging.getLogger("hydrus_motion.x").warning("just a warning")
'''


def test_an_unexpected_error_line_fails_the_test_and_a_marked_one_does_not(tmp_path):
    (tmp_path / "test_probe.py").write_text(PROBE)
    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent)])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "conftest", "-c", str(tests.parent / "pyproject.toml"),
                           "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "3 passed, 1 error" in out, out  # the call passed; its teardown failed it
    assert "ERROR at teardown of test_unmarked_error" in out
    assert "ERROR hydrus_motion.x: the disk caught fire" in out
    assert "an error it expects" not in out
