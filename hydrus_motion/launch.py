"""`python -m hydrus_motion.launch ARGS`: `accelerate launch ARGS` for the trainer child.

The same launcher, with its multi-line note on defaults it chose ("The following values
were not passed to `accelerate launch` ...") left out when HYDRUS_MOTION_QUIET is set
(hydrus_motion.quiet: without `-v`). Its choices, and `accelerate config`, still apply.
"""

from __future__ import annotations

import logging
import os
import sys


def main() -> None:
    if os.environ.get("HYDRUS_MOTION_QUIET"):
        logging.getLogger("accelerate.commands.launch").setLevel(logging.ERROR)
    from accelerate.commands.launch import main as launch

    sys.argv = ["accelerate launch", *sys.argv[1:]]
    launch()


if __name__ == "__main__":
    main()
