"""Other libraries' chatter kept out of our terminal output unless `-v`.

Our own log lines are one per event; around them transformers' processor fallbacks,
diffusers' dtype notes, accelerate's notes on launch defaults and Python warnings would
fill the screen. Without `-v` they are turned down here, in this process, and through the
environment in every child (the trainer, the daemon's nightly run). A variable the user
set already is left as it is.
"""

from __future__ import annotations

import logging
import os
import warnings

QUIET_ENV = {
    "PYTHONWARNINGS": "ignore",  # children: Python warnings (deprecations, UserWarnings)
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DIFFUSERS_VERBOSITY": "error",
    # not ACCELERATE_LOG_LEVEL: accelerate's get_logger sets the ROOT logger to it on
    # import, which silenced every INFO/WARNING line of ours (daemon, trainer) once the
    # captioner or the trainer imported accelerate; its logger is turned down by name
    "HYDRUS_MOTION_QUIET": "1",  # our accelerate launcher (hydrus_motion.launch)
}
LIBRARY_LOGGERS = ("transformers", "diffusers", "accelerate", "huggingface_hub", "torch",
                   "PIL", "urllib3", "onnxruntime")


def quiet_third_parties(verbose: bool) -> None:
    if verbose:
        return
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"hydrus_motion\b")  # ours, should we warn
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
