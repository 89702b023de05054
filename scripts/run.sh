#!/usr/bin/env bash
# Set up, then start watching a folder for videos: `hydrus-motion start` (the daemon).
#   scripts/run.sh [--watch DIR]
# It prints where it watches (default ~/.local/share/hydrus-motion/watch, created when
# missing), where the config is (a starter one is written at
# ~/.config/hydrus-motion/config.yaml when there is none) and what to do in Hydrus.
# Without HYDRUS_MOTION_ACCESS_KEY (or hydrus.access_key) clips are cut and queued, and
# pushed once a key is set and it is started again. Ctrl+C stops it; nothing is lost.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"$here/scripts/setup.sh" >&2
exec "$here/.venv/bin/hydrus-motion" start "$@"
