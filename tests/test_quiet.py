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


def test_quieting_accelerate_leaves_our_own_log_lines_on(monkeypatch):
    import logging
    import os
    import warnings

    pytest.importorskip("accelerate")
    from hydrus_motion.quiet import quiet_third_parties

    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items()
                                        if k != "ACCELERATE_LOG_LEVEL"})
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", logging.INFO)
    with warnings.catch_warnings():
        quiet_third_parties(verbose=False)
        from accelerate.logging import get_logger  # what accelerate's modules call

        get_logger("accelerate.utils.other")
    assert root.level == logging.INFO  # accelerate set it to ERROR from its env variable
    assert logging.getLogger("hydrus_motion.daemon").isEnabledFor(logging.INFO)
    assert not logging.getLogger("accelerate").isEnabledFor(logging.WARNING)
