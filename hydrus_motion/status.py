"""`hydrus-motion status`: what the daemon has done, is doing, and could not do.

Read-only: queue counts per stage, videos by outcome, clips by push status, failures
with their reasons, quarantined videos, and the last runs. Safe while the daemon runs
(SQLite WAL lets readers in beside the writer).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from hydrus_motion.config import Config, state_dir, training_dir
from hydrus_motion.promotion import candidates
from hydrus_motion.reports import NightlyDetails
from hydrus_motion.store.lock import holder
from hydrus_motion.training_runs import current_run


def gather(cfg: Config) -> dict[str, Any]:
    from hydrus_motion.ingest.intake import low_space
    from hydrus_motion.schedule import next_run
    from hydrus_motion.store import open_store
    from hydrus_motion.store.queue import JobQueue
    from hydrus_motion.store.runs import RunLog
    from hydrus_motion.store.states import SourceStatus

    folder = state_dir(cfg)
    store = open_store(folder)
    try:
        queue, runs = JobQueue(store), RunLog(store)
        daemon_pid = holder(folder / "daemon.lock")
        nightly_pid = holder(folder / "nightly.lock")
        quarantined = queue.sources(SourceStatus.QUARANTINED, newest_first=True, limit=50)
        upcoming = next_run(cfg.nightly) if cfg.nightly.enabled else None
        current = current_run(training_dir(cfg))
        return {
            "state_dir": str(folder),
            "daemon": {"running": daemon_pid is not None, "pid": daemon_pid},
            "intake": {"paused": low_space(cfg)},
            "queue": _interrupted(queue.counts(), daemon_pid is not None),
            "videos": queue.source_counts(),
            "clips": store.counts(),
            "failures": [_when(f, "updated_at") for f in queue.failures()],
            "clip_failures": [{"path": str(c.path), "push_status": c.push_status,
                               "attempts": c.attempts, "last_error": c.last_error}
                              for c in store.push_failures(limit=50)],
            "quarantined": [{"name": q.name, "path": q.path, "reason": q.reason,
                             "finished_at": _iso(q.finished_at)} for q in quarantined],
            "runs": [_run(r, nightly_pid) for r in runs.last(limit=10)],
            "training": {"current": current.name if current else None,
                         "candidates": candidates(training_dir(cfg))},
            "nightly": {"enabled": cfg.nightly.enabled, "cron": cfg.nightly.cron,
                        "timezone": cfg.nightly.timezone or "local",
                        "next": upcoming.isoformat(timespec="minutes") if upcoming else None},
        }
    finally:
        store.close()


def render(doc: dict[str, Any]) -> str:
    pid = doc["daemon"]["pid"]
    lines = [f"daemon: {f'running, pid {pid}' if pid else 'not running'}  "
             f"(state {doc['state_dir']})"]
    if "config" in doc:  # the CLI adds which file it read
        lines.insert(0, f"config: {doc['config']['described']}")
    if doc["intake"]["paused"]:
        lines.append(f"intake: paused: {doc['intake']['paused']}")
    lines.append("queue:")
    for stage, counts in doc["queue"].items():
        lines.append(f"  {stage:<10}" + "  ".join(f"{k} {v}" for k, v in counts.items()))
    lines.append("videos: " + (_pairs(doc["videos"]) or "none yet"))
    lines.append("clips:  " + (_pairs(doc["clips"]) or "none yet"))
    for f in doc["failures"]:
        lines.append(f"  ! {f['name']}: {f['stage']} {f['status']} after {f['attempts']} "
                     f"attempt(s): {f['last_error']}")
    for c in doc["clip_failures"]:
        lines.append(f"  ! {c['path']}: push {c['push_status']}: {c['last_error']}")
    for q in doc["quarantined"]:
        lines.append(f"  quarantined {q['name']}: {q['reason']}")
    for r in doc["runs"]:
        lines.append(f"run {r['id']} {r['kind']} {r['started']}: {r['outcome']}"
                     + (f": {r['error']}" if r["error"] else "")
                     + NightlyDetails.from_json(r["details"]).summary())
    t = doc["training"]
    lines.append(f"training: current {t['current'] or 'none yet'}")
    for c in t["candidates"]:
        lines.append(f"  candidate {c['run']}: {c['reason'] or 'not promoted'} "
                     f"(hydrus-motion promote {c['run']})")
    n = doc["nightly"]
    lines.append(f"nightly: {n['cron']} ({n['timezone']}), next {n['next']}" if n["enabled"]
                 else "nightly: off in the daemon (nightly.enabled: false)")
    return "\n".join(lines)


def _interrupted(counts: dict[str, dict[str, int]], running: bool) -> dict[str, dict[str, int]]:
    """With no daemon, a job left `running` was interrupted (kill -9): it is queued again
    at the next start, so it is not shown as running."""
    if running:
        return counts
    return {stage: {("interrupted" if k == "running" else k): n for k, n in c.items()}
            for stage, c in counts.items()}


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).astimezone().isoformat(timespec="seconds") \
        if ts else None


def _when(row: dict[str, Any], key: str) -> dict[str, Any]:
    row = dict(row)
    row[key] = _iso(row[key])
    return row


def _run(run: Any, nightly_pid: int | None) -> dict[str, Any]:
    outcome = run.outcome
    if outcome is None:  # no finish recorded: still going, or its process died
        outcome = "running" if nightly_pid == run.pid else "interrupted"
    took = (run.finished_at or time.time()) - run.started_at
    return {"id": run.id, "kind": run.kind, "started": _iso(run.started_at),
            "finished": _iso(run.finished_at), "seconds": round(took, 1), "outcome": outcome,
            "error": run.error, "details": run.details}
