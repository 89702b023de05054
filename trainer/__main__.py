"""`accelerate launch -m trainer --config RUN.yaml [--resume latest|DIR]` (or python -m trainer).

Exit codes: 0 done (run.json written), 1 the run failed, 2 bad config or arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer",
                                     description="Finetune an AnimateDiff motion module.")
    parser.add_argument("--config", required=True, type=Path, metavar="RUN.yaml")
    parser.add_argument("--resume", metavar="latest|DIR",
                        help="continue from the newest checkpoint (latest; a fresh start when "
                             "there is none) or from one checkpoint-<step> folder")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per save is ours
    from trainer.config import RunConfigError, load_run_config

    try:
        cfg = load_run_config(args.config)
    except RunConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from trainer.data import DatasetError
    from trainer.export import ExportError
    from trainer.loop import train
    from trainer.models import ModelLoadError

    try:
        run = train(cfg, resume=args.resume)
    except RunConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DatasetError, ModelLoadError, ExportError, FileNotFoundError,
            FloatingPointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if run:  # the main process prints the summary; others return quietly
        print(json.dumps({"run_json": str(Path(cfg.output_dir) / "run.json"),
                          "steps": run["steps"], "final_loss": run["final_loss"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
