"""The seams of the orchestration layer that belong to no leaf package.

    Clock    where time decides: the queue's backoff (store/queue.py), the run history
             (store/runs.py) and the nightly training plan (nightly.nightly_steps). Tests pass
             a clock they move by hand (tests/fakes.py).
    Trainer  what the nightly job calls to train one run. `SubprocessTrainer` (train.py)
             runs the trainer package under `accelerate launch`; tests pass a fake.

Like scenes/base.py and clips/base.py, nothing here imports a heavy library.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hydrus_motion.config import Config


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch, as time.time() counts them."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


SYSTEM_CLOCK = SystemClock()


class Trainer(Protocol):
    def train(self, cfg: Config, dataset_dir: Path, run_dir: Path, *, resume: bool,
              init_module: Path | None, sample_prompts: int) -> dict[str, Any]:
        """Train one nightly run into `run_dir` (resuming its last checkpoint when
        `resume`, starting from `init_module`'s weights when given) on the dataset in
        `dataset_dir`. Returns the run's record (RUN.json: steps, final_loss, eval, outputs);
        raises HydrusMotionError when the run fails, leaving the current module as it is."""
        ...
