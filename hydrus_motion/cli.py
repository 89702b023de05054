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

from hydrus_motion import __version__
from hydrus_motion.config import Config, as_dict, load_config, resolve_config_path
from hydrus_motion.errors import HydrusMotionError

log = logging.getLogger("hydrus_motion")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE",
                        help="YAML config (default: $HYDRUS_MOTION_CONFIG, else built-in "
                             "defaults; see config.example.yaml)")
    common.add_argument("--json", action="store_true",
                        help="print one JSON document on stdout and nothing else there")
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    parser = argparse.ArgumentParser(
        prog="hydrus-motion",
        description="Turn videos into reviewed AnimateDiff motion datasets via Hydrus.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    sub.add_parser("doctor", parents=[common], help="preflight checks; exit 1 if any fails")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        cfg = load_config(resolve_config_path(args.config))
        result, code = COMMANDS[args.command](args, cfg)
    except HydrusMotionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.verbose or os.environ.get("HYDRUS_MOTION_DEBUG"):
            raise
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if args.json:
        try:
            json.dump(result, sys.stdout, ensure_ascii=False, indent=2)
            sys.stdout.write("\n")
            sys.stdout.flush()
        except BrokenPipeError:  # the reader (e.g. `| head`) left early; not our failure
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:  # third-party chatter stays out of an operator's view
        logging.getLogger("pyscenedetect").setLevel(logging.WARNING)


def cmd_scenes(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    from hydrus_motion.pipeline import detect_scenes
    from hydrus_motion.scenes.sidecar import default_sidecar_path

    scenes = detect_scenes(args.video, cfg, args.sidecar)
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
    from hydrus_motion.pipeline import slice_video

    clips = slice_video(args.video, cfg, args.out, args.sidecar)
    if not args.json:
        for c in clips:
            print(f"{c.path}  frames {c.start_frame}-{c.end_frame} ({c.frames} frames, "
                  f"{c.width}x{c.height})")
        print(f"{args.video}: {len(clips)} clips -> {args.out}")
    if not clips:
        log.warning("%s: no scene is long enough for a clip (clips.min_frames=%d)",
                    args.video, cfg.clips.min_frames)
    return {"clips": [{"path": str(c.path), "scene": c.scene, "start_frame": c.start_frame,
                       "end_frame": c.end_frame, "frames": c.frames, "fps": c.fps,
                       "width": c.width, "height": c.height} for c in clips]}, 0


def cmd_doctor(args: argparse.Namespace, cfg: Config) -> tuple[dict[str, Any], int]:
    from hydrus_motion.doctor import run_checks

    checks = run_checks(cfg)
    ok = all(c.ok for c in checks)
    if not args.json:
        for c in checks:
            print(f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
        print("all checks passed" if ok else "some checks failed")
    return {"ok": ok, "checks": [vars(c) for c in checks], "config": as_dict(cfg)}, 0 if ok else 1


COMMANDS = {"scenes": cmd_scenes, "slice": cmd_slice, "doctor": cmd_doctor}
