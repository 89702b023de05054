"""`hydrus-motion` commands about the daemon and its runs: daemon, status, nightly,
retry, promote; and the summary line every command ends with."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from hydrus_motion import cli_start
from hydrus_motion.config import Config

log = logging.getLogger("hydrus_motion")  # the CLI's logger


def summary_line(command: str, totals: str, counts: dict[str, int]) -> None:
    """The one line an operator reads at the end of a run (stderr, so --json stays clean)."""
    detail = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
    log.info("%s: %s%s", command, totals, f": {detail}" if detail else "")


def cmd_daemon(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    return cli_start.run_daemon(cfg, args.config_source.path)


def cmd_status(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    from hydrus_motion.status import gather, render

    doc = gather(cfg)
    source = args.config_source
    doc["config"] = {"file": source.path and str(source.path), "origin": str(source.origin),
                     "described": source.describe()}
    if not args.json:
        print(render(doc))
    return doc, 0


def cmd_nightly(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    from hydrus_motion.schedule import run_nightly

    report, code = run_nightly(cfg)
    d = report.details
    train, export = d.train, d.export
    counts = {"repaired": (d.reconcile or {}).get("repaired", 0),
              "clips in the dataset": export.clips if export else 0,
              "new": export.new if export else 0,
              "steps trained": (train.steps or 0) if train else 0,
              "samples in hydrus": (d.samples or {}).get("in_hydrus", 0)}
    done = {"train": "trained", "resume": "resumed", "skip": "no training"}
    training = f"; {done[train.action]} ({train.reason})" if train else ""
    if train is not None and train.outcome == "failed":
        training = f"; training failed ({train.error})"
    promotion = d.promotion or {}
    if promotion and not promotion.get("promoted"):
        training += (f"; run {promotion['run']} NOT promoted ({promotion['reason']}): "
                     f"hydrus-motion promote {promotion['run']}")
    summary_line("nightly", f"run {report.run} {report.outcome}{training}", counts)
    return report.as_json(), code


def cmd_retry(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    from hydrus_motion.errors import UsageError
    from hydrus_motion.ingest.retry import retry_videos

    if bool(args.names) == args.all:
        raise UsageError("name the videos to retry, or pass --all (not both)",
                         hint="`hydrus-motion status` lists the quarantined and failed ones")
    done, missing = retry_videos(cfg, args.names, args.all)
    for r in done:
        moved = f"moved back to {r.path}" if r.path != r.source else f"in place at {r.path}"
        if not args.json:
            print(f"{r.name}: {r.was} before; {moved}; queued again")
    for name in missing:
        log.error("%s: no quarantined or failed video of that name (see `hydrus-motion "
                  "status`)", name)
    summary_line("retry", f"{len(done)} video(s) queued again", {"not found": len(missing)})
    return {"retried": [vars(r) for r in done], "not_found": missing}, 1 if missing else 0


def cmd_promote(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    from hydrus_motion.promotion import promote_by_hand

    result = promote_by_hand(cfg, args.run)
    if not args.json:
        print(f"run {result['run']} is current (before: {result['previous'] or 'none'})")
    return result, 0
