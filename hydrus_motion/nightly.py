"""The nightly flow (`hydrus-motion nightly`, or the daemon at nightly.cron):

    push queued + re-check recent pushes                             (`reconcile`)
    search approved ─▶ tags + caption as they are now ─▶ download new clips
        (hash-checked) ─▶ build beside the current dataset ─▶ switch  (`export`)
    dataset changed (or a run was interrupted) ─▶ trainer as a child process   (`train`)
        ─▶ run.json ─▶ gate on the held-out loss ─▶ `current` (or a candidate)
        ─▶ samples + popup into Hydrus

Every step's result goes into NightlyDetails for the run history; a failed step raises
NightlyFailed with what was done before it, and the previous checkpoint stays current.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from hydrus_motion.base import SYSTEM_CLOCK, Clock, Trainer
from hydrus_motion.config import Config, dataset_dir, training_dir
from hydrus_motion.dataset.manifest import read_dataset_json
from hydrus_motion.errors import HydrusMotionError
from hydrus_motion.hydrus.gateway import HydrusGateway
from hydrus_motion.hydrus.push import summarise
from hydrus_motion.hydrus.samples import announce, publish_samples
from hydrus_motion.pipeline import export, reconcile
from hydrus_motion.promotion import gate_decision, keep_candidate, promote_run, read_decision
from hydrus_motion.reports import ExportReport, NightlyDetails, TrainReport
from hydrus_motion.store.db import Store
from hydrus_motion.train import SubprocessTrainer
from hydrus_motion.training_runs import (
    TrainingPlan,
    current_run,
    latest_finished,
    mark_published,
    plan_training,
    read_run,
    samples_published,
)

log = logging.getLogger(__name__)


class NightlyFailed(HydrusMotionError):
    """A nightly step failed; `details` holds what was done before it (run history)."""

    def __init__(self, message: str, details: NightlyDetails, hint: str | None = None):
        super().__init__(message, hint)
        self.details = details


def nightly_steps(cfg: Config, store: Store, gateway: HydrusGateway, *,
            trainer: Trainer | None = None, clock: Clock = SYSTEM_CLOCK) -> NightlyDetails:
    """The nightly job (`hydrus-motion nightly`, the daemon's schedule). Returns what it
    did for the run history; raises NightlyFailed with the same, and the previous
    checkpoint stays current. `trainer`: SubprocessTrainer unless given."""
    details = NightlyDetails()
    outcomes = reconcile(gateway, store, cfg)
    details.reconcile = {"checked": len(outcomes), **summarise(outcomes)}
    try:
        exported = export(gateway, cfg, dataset_dir(cfg))
    except HydrusMotionError as exc:
        raise NightlyFailed(f"export failed: {exc.message}", details, exc.hint) from None
    details.export = ExportReport(
        dataset_id=exported.dataset_id, changed=exported.changed, clips=len(exported.entries),
        new=exported.new, removed=exported.removed, skipped=len(exported.skipped),
        frames=sum(e.frames or 0 for e in exported.entries))
    root = training_dir(cfg)
    plan = plan_training(root, exported.dataset_id, cfg.nightly.train, clock.now())
    if plan.action != "skip" and not exported.entries:
        plan = TrainingPlan("skip", "no approved clips yet")
    if plan.action != "skip" and not cfg.train.pretrained_model:
        plan = TrainingPlan("skip", "train.pretrained_model is not set")
    details.train = TrainReport(plan.action, plan.reason, plan.run_id)
    log.info("nightly: training: %s (%s)", plan.action, plan.reason)
    if plan.action != "skip":
        started = time.monotonic()
        try:
            run = (trainer or SubprocessTrainer()).train(
                cfg, exported.build, plan.run_dir, resume=plan.action == "resume",
                init_module=plan.init_module, sample_prompts=cfg.nightly.sample_prompts)
        except HydrusMotionError as exc:
            details.train.outcome, details.train.error = "failed", exc.message
            raise NightlyFailed(f"training run {plan.run_id} failed: {exc.message}", details,
                                hint="the previous checkpoint stays current; an interrupted "
                                     "run is resumed by the next nightly run") from None
        details.train = dataclasses.replace(
            details.train, outcome="trained", steps=run["steps"], final_loss=run["final_loss"],
            seconds=round(time.monotonic() - started, 1), dataset_clips=len(exported.entries),
            eval=eval_summary(run))
        details.promotion = gate_and_promote(cfg, root, plan.run_dir, run)
    newest, current = latest_finished(root), current_run(root)
    for shown in dict.fromkeys(r for r in (newest, current) if r is not None):
        if samples_published(shown):
            continue  # also retries a failed try
        try:
            details.samples = publish_run_to_hydrus(gateway, cfg, shown)
        except HydrusMotionError as exc:
            raise NightlyFailed(f"the samples of run {shown.name} could not be put into "
                                f"Hydrus: {exc.message}", details,
                                hint="the checkpoints are in place; the next nightly run "
                                     "tries the samples again") from None
    return details


def gate_and_promote(cfg: Config, root: Path, run_dir: Path, run: dict[str, Any]) -> dict:
    """The promotion gate: current only when the held-out loss is no worse than the
    current module's by more than nightly.gate_margin; else kept as a candidate."""
    current = current_run(root)
    decision = gate_decision(run, current, read_run(current), cfg.nightly)
    if decision.promoted:
        return promote_run(root, run_dir, cfg.nightly, decision)
    return keep_candidate(run_dir, decision)


def eval_summary(run: dict[str, Any]) -> dict[str, Any]:
    ev = run.get("eval") or {}
    return {"before": (ev.get("before") or {}).get("loss"),
            "after": (ev.get("after") or {}).get("loss"),
            "reference": (ev.get("reference") or {}).get("loss"),
            "clips": len(ev.get("measured") or [])}


def publish_run_to_hydrus(gateway: HydrusGateway, cfg: Config, run_dir: Path) -> dict[str, Any]:
    """The current run's samples into Hydrus, and a popup saying what finished."""
    run = read_run(run_dir) or {}
    trained_on = read_dataset_json(Path(run.get("dataset") or run_dir)) or {}
    run = {**run, "clips": trained_on.get("counts", {}).get("clips", "?"),
           "decision": read_decision(run_dir)}
    outputs = run.get("outputs", {})
    files = [Path(s[kind]) for s in outputs.get("compare") or outputs.get("samples") or []
             for kind in ("mp4", "gif")]
    if outputs.get("loss_curve"):
        files.append(Path(outputs["loss_curve"]))
    published = publish_samples(gateway, cfg, run, run_dir.name, files)
    hashes = [p.hash for p in published if p.result.wrote]
    mark_published(run_dir, hashes)
    loss = run.get("final_loss")
    loss_text = f", loss {loss:.4f}" if isinstance(loss, (int, float)) else ""
    decision = run["decision"] or {}
    verdict = "" if decision.get("promoted", True) else \
        f"; NOT promoted ({decision.get('reason')}): hydrus-motion promote {run_dir.name}"
    text = (f"motion module run {run_dir.name} finished: {run.get('steps')} steps{loss_text}; "
            f"{len(hashes)} sample(s){verdict}")
    popup = cfg.nightly.popup and announce(gateway, text, hashes)
    return {"files": len(files), "in_hydrus": len(hashes), "popup": bool(popup)}
