#!/usr/bin/env bash
# Set up, then run the main job on one video: find its scenes, then cut its clips.
#   scripts/run.sh VIDEO [OUT_DIR]      (clips go to OUT_DIR, default ./out/<video name>)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -ge 1 ] || { echo "usage: scripts/run.sh VIDEO [OUT_DIR]" >&2; exit 2; }
video="$1"
name="$(basename -- "$video")"
out="${2:-$here/out/${name%.*}}"
"$here/scripts/setup.sh" >&2
"$here/.venv/bin/hydrus-motion" scenes -- "$video"
"$here/.venv/bin/hydrus-motion" slice --out "$out" -- "$video"
