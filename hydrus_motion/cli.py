"""`hydrus-motion` command line: parse, call the pipeline, print, map errors to exit codes.

Exit codes: 0 ok, 1 the work failed (the message says why), 2 bad usage or config.
With `--json` stdout carries exactly one JSON document; messages go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from hydrus_motion import __version__, cli_config, cli_runs, cli_start, cli_tag
from hydrus_motion.cli_runs import summary_line
from hydrus_motion.config import Config, as_dict, load_config
from hydrus_motion.errors import HydrusMotionError
from hydrus_motion.places import find_config
from hydrus_motion.progress_bar import bars_wanted, progress_bar, progress_iter
from hydrus_motion.quiet import quiet_third_parties

log = logging.getLogger("hydrus_motion")


def _global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """--config, --json, -v: accepted before the subcommand and after it. The subcommand's
    copies default to SUPPRESS, so they never overwrite a value given before it."""
    parser.add_argument("--config", metavar="FILE", default=default,
                        help="YAML config (default: $HYDRUS_MOTION_CONFIG, else the user "
                             "config file, else built-in defaults; see `config show`)")
    parser.add_argument("--json", action="store_true", default=default,
                        help="print one JSON document on stdout and nothing else there")
    parser.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="debug logging, and other libraries' warnings")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)

    parser = argparse.ArgumentParser(
        prog="hydrus-motion",
        description="Turn videos into reviewed AnimateDiff motion datasets via Hydrus.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_options(parser, None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_start.add_parser(sub, common)

    p = sub.add_parser("scenes", parents=[common], help="find scene cuts, write the sidecar",
                       description="Detect every scene cut in VIDEO and write the sidecar "
                                   "(default VIDEO.scenes.txt).")
    p.add_argument("video", type=Path, metavar="VIDEO")
    p.add_argument("--sidecar", type=Path, metavar="FILE", help="where to write the sidecar")

    p = sub.add_parser("slice", parents=[common], help="cut frame-exact clips from the sidecar",
                       description="Cut the clips the sidecar and the clip rules give.")
    p.add_argument("video", type=Path, metavar="VIDEO")
    p.add_argument("--sidecar", type=Path, metavar="FILE", help="sidecar to read "
                   "(default VIDEO.scenes.txt)")
    p.add_argument("--out", type=Path, metavar="DIR", required=True, help="folder for the clips")

    p = sub.add_parser("ingest", parents=[common], help="scenes, clips and push, once",
                       description="For each VIDEO: find scenes (or use a current sidecar), "
                                   "cut the clips into paths.clips_dir, record them, and push "
                                   "them with their tags and notes to Hydrus.")
    p.add_argument("videos", type=Path, nargs="+", metavar="VIDEO")
    p.add_argument("--no-push", action="store_true",
                   help="cut and record only; the clips stay queued for a later push")

    p = sub.add_parser("tag", parents=[common], help="tags, caption and quality scores per clip",
                       description="Annotate each CLIP: WD tagger tags (with scores) averaged "
                                   "over frames from its middle, a caption, and motion / "
                                   "sharpness / brightness scores. Models as in annotate.*.")
    p.add_argument("clips", type=Path, nargs="+", metavar="CLIP")
    p.add_argument("--tagger-model", metavar="ID_OR_DIR",
                   help="Hugging Face repo id or folder (model.onnx + selected_tags.csv); "
                        "none: no tags")
    p.add_argument("--captioner-model", metavar="ID_OR_DIR",
                   help="Hugging Face repo id or folder of an image-text-to-text model; "
                        "none: no caption")

    sub.add_parser("reconcile", parents=[common],
                   help="push queued clips; re-check recent pushes and repair what Hydrus lost",
                   description="Push every queued clip, then re-read the clips pushed within "
                               "hydrus.reconcile_hours and re-apply whatever file, tag or note "
                               "Hydrus lost (it commits every 30 s, so a crash loses writes).")

    p = sub.add_parser("export", parents=[common], help="approved clips -> dataset folder",
                       description="Build the training dataset from the clips approved in "
                                   "Hydrus, with their tags and caption notes as they are "
                                   "now. Only newly approved clips are downloaded; the new "
                                   "build replaces the old one atomically.")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="dataset folder (default: paths.dataset_dir)")

    sub.add_parser("doctor", parents=[common], help="preflight checks; exit 1 if any fails")

    p = sub.add_parser("train", parents=[common], help="finetune a motion module on a dataset",
                       description="One AnimateDiff motion-module finetune (extra train) on a "
                                   "dataset folder; settings from the train: config section.")
    p.add_argument("--dataset", type=Path, metavar="DIR", required=True,
                   help="dataset folder written by `export`")
    p.add_argument("--out", type=Path, metavar="DIR", required=True,
                   help="run folder: motion_module.safetensors, motion_adapter/, samples/, "
                        "run.json, checkpoints/")
    p.add_argument("--resume", metavar="latest|DIR",
                   help="continue from the newest checkpoint in --out (or one checkpoint dir)")
    p.add_argument("--max-steps", type=int, metavar="N", help="override train.max_steps")

    sub.add_parser("daemon", parents=[common], help="watch a folder, process, push, schedule",
                   description="Run until stopped (SIGINT/SIGTERM): take settled videos from "
                               "daemon.watch_dir, run them through detect, slice, annotate and "
                               "push, and run the nightly job on its cron schedule.")
    sub.add_parser("status", parents=[common], help="queue, failures and last runs",
                   description="Queue counts per stage, failures with reasons, quarantined "
                               "videos, and the last runs. Works while the daemon runs.")
    p = sub.add_parser("retry", parents=[common], help="process quarantined/failed videos again",
                       description="Move quarantined videos back into the watch folder (and "
                                   "queue videos that failed for good again), clearing their "
                                   "records; the daemon then processes them from the start.")
    p.add_argument("names", nargs="*", metavar="NAME", help="video file name(s), as `status` "
                   "lists them")
    p.add_argument("--all", action="store_true", help="every quarantined or failed video")
    sub.add_parser("nightly", parents=[common], help="the nightly job, once (for timers)",
                   description="Run the nightly job once: push queued clips and re-check "
                               "recent pushes, export the approved clips, train when the "
                               "dataset changed (or resume an interrupted run), and put the "
                               "samples into Hydrus. Recorded in the run history; skipped if "
                               "another nightly run holds the lock.")
    cli_config.add_parser(sub, common)
    p = sub.add_parser("promote", parents=[common], help="make a training run current",
                       description="Make a finished training run `current` (the gate kept it "
                                   "back, or roll back to an older run); recorded in the run "
                                   "history.")
    p.add_argument("run", metavar="RUN", help="run id (a folder under training/runs) or path")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.json, args.verbose = bool(args.json), bool(args.verbose)
    _setup_logging(args.verbose)
    try:
        args.config_source = find_config(args.config)
        # `config init` must work beside a broken config file; `config show` loads it itself
        cfg = None if args.command == "config" else load_config(args.config_source.path)
        result, code = COMMANDS[args.command](args, cfg)
    except HydrusMotionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.verbose or os.environ.get("HYDRUS_MOTION_DEBUG"):
            raise
        result, code = _failure(args, exc.message, exc.hint), exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        result, code = _failure(args, "interrupted", None), 130
    except BrokenPipeError:  # the reader (`| head`) left early: quiet, as other tools are
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE
    except Exception as exc:  # not an error we explain: still a message, not a traceback
        if args.verbose or os.environ.get("HYDRUS_MOTION_DEBUG"):
            raise
        subject = getattr(args, "video", None)
        message = f"{f'{subject}: ' if subject else ''}{type(exc).__name__}: {exc}"
        hint = "run again with -v for the traceback, and report it if it is a bug"
        print(f"error: {message}\n  hint: {hint}", file=sys.stderr)
        result, code = _failure(args, message, hint), 1
    if args.json:
        try:
            json.dump(result, sys.stdout, ensure_ascii=False, indent=2)
            sys.stdout.write("\n")
            sys.stdout.flush()
        except BrokenPipeError:  # the reader (e.g. `| head`) left early; not our failure
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


def _failure(args: argparse.Namespace, message: str, hint: str | None) -> dict[str, Any]:
    """The --json document of a command that failed as a whole."""
    return {"command": args.command, "ok": False, "error": message, "hint": hint}


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:  # third-party chatter stays out of an operator's view
        logging.getLogger("pyscenedetect").setLevel(logging.WARNING)
    quiet_third_parties(verbose)  # and their warnings, here and in our children


def cmd_scenes(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    from hydrus_motion.pipeline import detect_scenes
    from hydrus_motion.scenes.sidecar import default_sidecar_path

    with progress_bar("scenes", "frame", bars_wanted(args.json)) as progress:
        scenes = detect_scenes(args.video, cfg, args.sidecar, progress=progress)
    sidecar = args.sidecar or default_sidecar_path(args.video)
    if not args.json:
        print(f"{args.video}: {len(scenes.scenes)} scenes in {scenes.frames} frames "
              f"-> {sidecar}")
    return {
        "video": str(args.video),
        "fps": float(scenes.fps),
        "frames": scenes.frames,
        "scenes": [{"index": s.index, "start_frame": s.start_frame, "end_frame": s.end_frame,
                    "start": round(s.start, 6), "end": round(s.end, 6)} for s in scenes.scenes],
    }, 0


def cmd_slice(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    from hydrus_motion.pipeline import slice_planned

    with progress_bar("slice", "clip", bars_wanted(args.json)) as progress:
        result = slice_planned(args.video, cfg, args.out, args.sidecar, progress=progress)
    clips = result.clips
    drops = result.plan.drop_summary(cfg.clips.min_frames)
    if not args.json:
        for c in clips:
            print(f"{c.path}  frames {c.start_frame}-{c.end_frame} ({c.frames} frames, "
                  f"{c.width}x{c.height}{f', crop {c.crop}' if c.crop else ''}"
                  f"{f', {c.deinterlace}' if c.deinterlace else ''})")
        print(f"{args.video}: {len(clips)} clips -> {args.out}"
              + (f"; dropped: {drops}" if drops else ""))
    if not clips:
        log.warning("%s: no clip: %s", args.video, drops or "no scenes")
    return {"clips": [{"path": str(c.path), "scene": c.scene, "start_frame": c.start_frame,
                       "end_frame": c.end_frame, "frames": c.frames, "fps": c.fps,
                       "width": c.width, "height": c.height,
                       "crop": vars(c.crop) if c.crop else None,
                       "deinterlace": c.deinterlace} for c in clips],
            **result.plan.as_json(cfg.clips.min_frames)}, 0


def cmd_doctor(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    from hydrus_motion.doctor import config_check, run_checks

    checks = [config_check(args.config_source), *run_checks(cfg)]
    ok = all(c.ok for c in checks)
    if not args.json:
        for c in checks:
            print(f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
        print("all checks passed" if ok else "some checks failed")
    source = args.config_source
    return {"ok": ok, "checks": [vars(c) for c in checks], "config": as_dict(cfg),
            "config_file": source.path and str(source.path)}, 0 if ok else 1


def cmd_ingest(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    from hydrus_motion.config import state_dir
    from hydrus_motion.ingest.videos import ingest_videos
    from hydrus_motion.store import open_store

    def dropped(video) -> None:
        if video.dropped_summary and not args.json:
            print(f"{video.video}: {len(video.clips)} clip(s); dropped: {video.dropped_summary}")

    videos = progress_iter(args.videos, "ingest", "video", bars_wanted(args.json))
    report = ingest_videos(videos, cfg, open_store(state_dir(cfg)), push=not args.no_push,
                           on_video=dropped)
    summary = report.summary()
    if not args.json:
        for c in report.clips:
            print(f"{c.path}: {c.push}")
    summary_line("ingest", f"{summary['videos']} video(s), {summary['failed_videos']} failed; "
                            f"{summary['clips']} clip(s)",
                  {"queued": summary["queued"], **report.pushes,
                   "not annotated": summary["not_annotated"],
                   "scenes dropped": summary["dropped_scenes"]})
    return report.as_json(), 0 if report.ok else 1


def cmd_reconcile(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    from hydrus_motion.config import state_dir
    from hydrus_motion.hydrus.gateway import connect_gateway
    from hydrus_motion.hydrus.push import PushResult, summarise
    from hydrus_motion.pipeline import reconcile
    from hydrus_motion.store import open_store

    store = open_store(state_dir(cfg))
    outcomes = reconcile(connect_gateway(cfg), store, cfg)
    if not args.json:
        for o in outcomes:
            if o.result is not PushResult.UNCHANGED:
                print(f"{o.path}: {o.result}{': ' + o.detail if o.detail else ''}")
    summary = {"checked": len(outcomes), **summarise(outcomes)}
    summary_line("reconcile", f"{len(outcomes)} clip(s)", summarise(outcomes))
    return {"clips": [vars(o) for o in outcomes], "summary": summary}, \
        1 if summary.get("failed") else 0


def cmd_export(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    from hydrus_motion.config import dataset_dir
    from hydrus_motion.hydrus.gateway import connect_gateway
    from hydrus_motion.pipeline import export

    out = args.out or dataset_dir(cfg)
    with progress_bar("export", "clip", bars_wanted(args.json)) as progress:
        result = export(connect_gateway(cfg), cfg, out, progress)
    for skipped in result.skipped:
        log.warning("export: %s left out: %s", skipped.videoid, skipped.reason)
    counts = {"new": result.new, "kept": result.kept, "removed": result.removed,
              "skipped": len(result.skipped)}
    frames = sum(e.frames or 0 for e in result.entries)
    if not args.json:
        state = "built" if result.changed else "unchanged"
        print(f"{out}: {state}, {len(result.entries)} clips, {frames} frames "
              f"(dataset {result.dataset_id[:12]})")
    summary_line("export", f"{len(result.entries)} clip(s)", counts)
    return {"out": str(out), "build": str(result.build), "dataset_id": result.dataset_id,
            "changed": result.changed, "clips": len(result.entries), "frames": frames,
            "skipped": [vars(s) for s in result.skipped], "summary": counts}, 0


def cmd_train(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    from hydrus_motion.train import run_training

    run = run_training(cfg, args.dataset, args.out, resume=args.resume,
                       max_steps=args.max_steps)
    if not args.json:
        print(f"{run['steps']} steps, final loss {run['final_loss']} -> "
              f"{run['paths']['motion_module']}")
        if run["paths"].get("motion_lora"):
            print(f"motion LoRA -> {run['paths']['motion_lora']} (ComfyUI-AnimateDiff-Evolved), "
                  f"{run['paths']['motion_lora_diffusers']} (diffusers)")
    return run, 0


COMMANDS = {"scenes": cmd_scenes, "slice": cmd_slice, "tag": cli_tag.cmd_tag,
            "ingest": cmd_ingest, "reconcile": cmd_reconcile, "daemon": cli_runs.cmd_daemon,
            "status": cli_runs.cmd_status, "doctor": cmd_doctor, "export": cmd_export,
            "train": cmd_train, "nightly": cli_runs.cmd_nightly, "config": cli_config.cmd_config,
            "start": cli_start.cmd_start, "retry": cli_runs.cmd_retry,
            "promote": cli_runs.cmd_promote}
