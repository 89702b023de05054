"""A training run's validation samples back into Hydrus, where a person judges them.

Each sample is imported with `motion:sample` and `motion run:<id>` and a `motion run`
note a person can read (dataset, steps, loss, models), plus our JSON provenance note. A
popup says what finished when the key may show one. A sample a person deleted before
(the same bytes) is not imported again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydrus_motion import __version__
from hydrus_motion.config import Config
from hydrus_motion.hydrus.gateway import (
    ALREADY_THERE,
    DELETED_BEFORE,
    NEWLY_IMPORTED,
    HydrusGateway,
)
from hydrus_motion.hydrus.push import PushResult
from hydrus_motion.hydrus.scheme import clean_tag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishedSample:
    path: Path
    hash: str
    result: PushResult  # imported, already in hydrus, deleted or failed
    detail: str = ""


def sample_tags(cfg: Config, run_id: str) -> list[str]:
    t = cfg.hydrus.tags
    return [clean_tag(t.sample), clean_tag(f"{t.run_namespace}:{run_id}")]


def run_summary(run: Mapping[str, Any], run_id: str) -> str:
    """The run.json a person wants to read, as lines of text."""
    loss = run.get("final_loss")
    loss_text = f"{loss:.4f}" if isinstance(loss, (int, float)) else "?"
    lines = [f"run: {run_id}",
             f"dataset: {str(run.get('dataset_id', '?'))[:12]} ({run.get('clips', '?')} clips)",
             f"steps: {run.get('steps', '?')}, final loss: {loss_text}",
             f"base model: {run.get('base_model', '?')}",
             f"started from: {run.get('init_module', '?')}",
             f"finished: {run.get('finished_at', '?')}",
             _heldout_line(run.get("eval") or {})]
    if run.get("method") == "lora":
        t = (run.get("hyperparameters") or {}).get("train") or {}
        lines.append(f"motion LoRA: rank {t.get('lora_rank', '?')}, alpha "
                     f"{t.get('lora_alpha', '?')}, over the fixed base it started from "
                     "(motion_lora.safetensors; motion_module.safetensors has it merged in)")
    decision = run.get("decision")
    if decision:
        lines.append(f"promoted: {decision.get('reason')}" if decision.get("promoted") else
                     f"NOT promoted: {decision.get('reason')}; to use it anyway: "
                     f"hydrus-motion promote {run_id}")
    outputs = run.get("outputs") or {}
    if outputs.get("compare"):
        left = outputs.get("compare_left") or "the module it started from"
        lines.append(f"samples: {left} on the left, this run's on the right (same seed "
                     "and settings)")
    return "\n".join(lines)


def _heldout_line(ev: Mapping[str, Any]) -> str:
    before, after = ((ev.get(k) or {}).get("loss") for k in ("before", "after"))
    if not isinstance(after, (int, float)):
        return "held-out loss: not measured (no held-out clips)"
    text = f"held-out loss: {after:.5f} on {len(ev.get('measured') or [])} clip(s)"
    if isinstance(before, (int, float)) and before:
        text += f", from {before:.5f} at the start ({(after - before) / before:+.1%})"
    reference = (ev.get("reference") or {}).get("loss")
    if isinstance(reference, (int, float)):
        text += f"; the current module: {reference:.5f}"
    return text


def publish_samples(gateway: HydrusGateway, cfg: Config, run: Mapping[str, Any], run_id: str,
                    files: Sequence[Path]) -> list[PublishedSample]:
    tags = sample_tags(cfg, run_id)
    notes = {cfg.hydrus.notes.run: run_summary(run, run_id),
             cfg.hydrus.notes.provenance: json.dumps(
                 {"tool": "hydrus-motion", "version": __version__, "run_id": run_id,
                  "run": dict(run)}, sort_keys=True, ensure_ascii=False)}
    published = []
    for path in files:
        reply = gateway.import_file(path)
        if reply.status == DELETED_BEFORE:
            published.append(PublishedSample(path, reply.hash, PushResult.DELETED, reply.note))
            continue
        if reply.status not in (NEWLY_IMPORTED, ALREADY_THERE):
            log.error("hydrus: sample %s not imported: %s", path.name, reply.note)
            published.append(PublishedSample(path, reply.hash, PushResult.FAILED, reply.note))
            continue
        gateway.add_tags(reply.hash, tags)
        gateway.set_notes(reply.hash, notes)
        result = PushResult.IMPORTED if reply.status == NEWLY_IMPORTED else PushResult.ALREADY
        published.append(PublishedSample(path, reply.hash, result))
    gateway.commit()
    return published


def announce(gateway: HydrusGateway, text: str, hashes: Sequence[str] = ()) -> bool:
    """A popup in the Hydrus client; False when the key may not show popups."""
    shown = gateway.popup("hydrus-motion", text, hashes)
    if not shown:
        log.info("hydrus: the access key may not show popups (permission 'manage popups')")
    return shown
