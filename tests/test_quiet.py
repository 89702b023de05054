"""Other libraries' notes stay out of our output unless -v: accelerate's launcher (the
trainer child's) and Python warnings in children."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hydrus_motion.quiet import QUIET_ENV

pytest.importorskip("accelerate")
NOTE = "were not passed to `accelerate launch`"


def launch(tmp_path, quiet: bool) -> subprocess.CompletedProcess:
    """`accelerate launch` (our launcher) of a child that also raises a Python warning."""
    child = tmp_path / "child.py"
    child.write_text("import warnings\nwarnings.warn('a library note', UserWarning)\n"
                     "print('child ran')\n")
    env = {k: v for k, v in os.environ.items() if k not in QUIET_ENV}
    env["HF_HOME"] = str(tmp_path / "hf")  # no `accelerate config` file: defaults chosen
    if quiet:
        env.update(QUIET_ENV)
    return subprocess.run([sys.executable, "-m", "hydrus_motion.launch", "--cpu",
                           str(child)], capture_output=True, text=True, env=env, timeout=300)


def test_accelerate_launch_notes_and_python_warnings_only_with_verbose(tmp_path):
    loud = launch(tmp_path, quiet=False)  # what -v shows: the library's own words
    assert loud.returncode == 0 and "child ran" in loud.stdout
    assert NOTE in loud.stderr and "a library note" in loud.stderr
    quiet = launch(tmp_path, quiet=True)
    assert quiet.returncode == 0 and "child ran" in quiet.stdout
    assert NOTE not in quiet.stderr and "a library note" not in quiet.stderr
