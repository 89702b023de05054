"""The promotion gate: a finished run becomes `current` only when it is measurably no worse.

    decision = gate_decision(run, current, cfg.nightly)     # pure
    promote_run(root, run_dir, cfg.nightly, decision)  /  keep_candidate(run_dir, decision)

The figure compared is the held-out loss (trainer/evaluate.py). A full nightly run starts
from the current module and measures it on the run's own held-out set before step 1,
so `eval.before` *is* the current module's figure on the same clips, noise and
timesteps: like for like. A LoRA run starts from the fixed base instead and measures the
current module (a LoRA run's: base + its LoRA, merged) as `eval.reference`, on the same
set, before step 1: like for like again. A run that started elsewhere is compared with
the current run's own result when both used the same held-out set, else it cannot be
compared.

Each run's decision is kept in <run>/decision.json (the note and `status` read it), so a
person sees why a run was kept back and can promote it (`hydrus-motion promote RUN`);
promoting an older run is the rollback. The switch itself is the atomic link switch.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from hydrus_motion.config import NightlyConfig
from hydrus_motion.errors import UsageError
from hydrus_motion.files import atomic_write_text, read_json_object, usual_permissions
from hydrus_motion.training_runs import RUNS, current_run, make_current, read_run

log = logging.getLogger(__name__)
DECISION = "decision.json"
LORA_FILE = "motion_lora.safetensors"  # a LoRA run's ComfyUI-AnimateDiff-Evolved file


class Verdict(StrEnum):
    PROMOTED = "promoted"
    CANDIDATE = "kept as candidate"


@dataclass(frozen=True)
class GateDecision:
    verdict: Verdict
    reason: str
    current_loss: float | None = None  # the current module's held-out loss
    new_loss: float | None = None      # this run's
    by: str = "gate"                   # gate | hand

    @property
    def promoted(self) -> bool:
        return self.verdict is Verdict.PROMOTED

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": str(self.verdict), "promoted": self.promoted}


def _loss(figures: Any) -> float | None:
    value = figures.get("loss") if isinstance(figures, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def gate_decision(run: dict[str, Any], current: Path | None,
                  current_run_json: dict[str, Any] | None,
                  nightly: NightlyConfig) -> GateDecision:
    """Promote or keep back a finished run (its run.json) against the current module."""
    ev = run.get("eval") or {}
    new = _loss(ev.get("after"))
    if not nightly.gate:
        return GateDecision(Verdict.PROMOTED, "the gate is off (nightly.gate: false)",
                            new_loss=new)
    if current is None:
        return GateDecision(Verdict.PROMOTED, "there is no current module yet", new_loss=new)
    reference = ev.get("reference") or {}
    if f"{current}{os.sep}" in str(reference.get("module", "")):
        old = _loss(reference)  # the current module, measured beside a LoRA run's base
    elif f"{current}{os.sep}" in str(run.get("init_module", "")):
        old = _loss(ev.get("before"))  # measured on the current weights in this very run
    else:
        theirs = (current_run_json or {}).get("eval") or {}
        same_set = ev.get("set_id") and theirs.get("set_id") == ev.get("set_id")
        old = _loss(theirs.get("after")) if same_set else None
    if new is None or old is None:
        return GateDecision(Verdict.PROMOTED, "no held-out figure to compare (no held-out "
                            "clips yet, or a different held-out set); promoted unmeasured",
                            old, new)
    change = (new - old) / old if old else 0.0
    text = f"held-out loss {new:.5f} vs {old:.5f} for the current module ({change:+.1%})"
    if new <= old * (1 + nightly.gate_margin):
        return GateDecision(Verdict.PROMOTED, text, old, new)
    return GateDecision(Verdict.CANDIDATE, f"{text}: worse by more than nightly.gate_margin "
                        f"({nightly.gate_margin:.1%})", old, new)


def read_decision(run_dir: Path) -> dict[str, Any] | None:
    return read_json_object(run_dir / DECISION)


def record_decision(run_dir: Path, decision: GateDecision) -> None:
    atomic_write_text(run_dir / DECISION, json.dumps(
        {**decision.as_dict(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        sort_keys=True) + "\n")


def run_file_name(run_dir: Path, lora: bool = False) -> str:
    """The name UIs list the module (or motion LoRA) by; they pick models by file name."""
    return f"hydrus-motion-{'lora-' if lora else ''}{run_dir.name}.safetensors"


def name_run_files(run_dir: Path) -> Path | None:
    """<run>/hydrus-motion-<id>.safetensors beside motion_module.safetensors, and for a
    LoRA run <run>/hydrus-motion-lora-<id>.safetensors beside motion_lora.safetensors (hard
    links, or copies where links cannot be made). Returns the module's."""
    lora = run_dir / LORA_FILE
    if lora.is_file():
        _link_or_copy(lora, run_dir / run_file_name(run_dir, lora=True))
    source = run_dir / "motion_module.safetensors"
    if not source.is_file():
        return None
    return _link_or_copy(source, run_dir / run_file_name(run_dir))


def _link_or_copy(source: Path, named: Path) -> Path:
    if not named.is_file():
        tmp = named.with_name(f".{named.name}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, named)
    return named


def publish_copy(run_dir: Path, publish_dir: str | None, lora: bool = False) -> Path | None:
    """Copy the run's module (nightly.publish_dir), or its motion LoRA
    (nightly.publish_lora_dir; runs without one: nothing), into the user's models folder."""
    source = run_dir / (LORA_FILE if lora else "motion_module.safetensors")
    if not publish_dir or not source.is_file():
        return None
    folder = Path(publish_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / run_file_name(run_dir, lora)
    tmp = folder / f".{target.name}.tmp-{os.getpid()}"
    shutil.copyfile(source, tmp)
    usual_permissions(tmp)
    os.replace(tmp, target)
    return target


def promote_run(root: Path, run_dir: Path, nightly: NightlyConfig,
                decision: GateDecision) -> dict[str, Any]:
    """Make a finished run current (atomic link switch), name its files, copy them to the
    user's folders, and record why. Returns what changed, for the run history."""
    if read_run(run_dir) is None:
        raise UsageError(f"{run_dir}: not a finished training run (no run.json)",
                         hint="hydrus-motion status lists the runs")
    previous = current_run(root)
    named = name_run_files(run_dir)
    record_decision(run_dir, decision)
    make_current(root, run_dir, nightly.keep_runs)
    copied = publish_copy(run_dir, nightly.publish_dir)
    copied_lora = publish_copy(run_dir, nightly.publish_lora_dir, lora=True)
    log.info("training: run %s is current (%s)", run_dir.name, decision.reason)
    return {"run": run_dir.name, "previous": previous.name if previous else None,
            "named": str(named) if named else None,
            "published_to": str(copied) if copied else None,
            "lora_published_to": str(copied_lora) if copied_lora else None,
            **decision.as_dict()}


def keep_candidate(run_dir: Path, decision: GateDecision) -> dict[str, Any]:
    named = name_run_files(run_dir)
    record_decision(run_dir, decision)
    log.warning("training: run %s not promoted: %s (promote it by hand: hydrus-motion "
                "promote %s)", run_dir.name, decision.reason, run_dir.name)
    return {"run": run_dir.name, "named": str(named) if named else None,
            **decision.as_dict()}


def find_run(root: Path, spec: str) -> Path:
    """A run by id (its folder name under runs/) or by path."""
    path = Path(spec).expanduser()
    run_dir = path if path.is_dir() else root / RUNS / spec
    if not (run_dir / "run.json").is_file():
        known = sorted(p.name for p in (root / RUNS).iterdir()
                       if (p / "run.json").is_file()) if (root / RUNS).is_dir() else []
        raise UsageError(f"{spec}: no finished training run of that name in {root / RUNS}",
                         hint="finished runs: " + (", ".join(known) or "none"))
    return run_dir.resolve()


def candidates(root: Path) -> list[dict[str, Any]]:
    """Finished runs that are not current, newest first, with their decision."""
    current = current_run(root)
    runs = root / RUNS
    if not runs.is_dir():
        return []
    out = []
    for run_dir in sorted(runs.iterdir(), key=lambda p: p.name, reverse=True):
        if run_dir.resolve() == current or read_run(run_dir) is None:
            continue
        decision = read_decision(run_dir) or {}
        out.append({"run": run_dir.name, "verdict": decision.get("verdict"),
                    "reason": decision.get("reason")})
    return out


def promote_by_hand(cfg, spec: str) -> dict[str, Any]:
    """`hydrus-motion promote RUN`: make a finished run current whatever the gate said
    (also the rollback, to an older run), recorded in the run history."""
    from hydrus_motion.config import state_dir, training_dir
    from hydrus_motion.store import open_store
    from hydrus_motion.store.runs import RunLog
    from hydrus_motion.store.states import RunOutcome

    root = training_dir(cfg)
    run_dir = find_run(root, spec)
    earlier = (read_decision(run_dir) or {}).get("reason")
    reason = "promoted by hand" + (f" (the gate had said: {earlier})" if earlier else "")
    decision = GateDecision(Verdict.PROMOTED, reason, by="hand")
    store = open_store(state_dir(cfg))
    try:
        runs = RunLog(store)
        run_id = runs.start("promote")
        result = promote_run(root, run_dir, cfg.nightly, decision)
        runs.finish(run_id, RunOutcome.OK, details={"promotion": result})
    finally:
        store.close()
    return result
