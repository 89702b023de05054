#!/usr/bin/env bash
# Set up, then run the main job on videos: scenes, clips, push to Hydrus (`ingest`).
#   HYDRUS_MOTION_ACCESS_KEY=<64 hex> scripts/run.sh VIDEO...
# Without an access key (and without a config file) the clips are cut and recorded only;
# `hydrus-motion reconcile` pushes them once a key is set. Clips go to
# ~/.local/state/hydrus-motion/clips unless the config says otherwise.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -ge 1 ] || { echo "usage: scripts/run.sh VIDEO..." >&2; exit 2; }
"$here/scripts/setup.sh" >&2
push=()
if [ -z "${HYDRUS_MOTION_ACCESS_KEY:-}" ] && [ -z "${HYDRUS_MOTION_CONFIG:-}" ]; then
    echo "no HYDRUS_MOTION_ACCESS_KEY or HYDRUS_MOTION_CONFIG: cutting clips without pushing" >&2
    push=(--no-push)
fi
exec "$here/.venv/bin/hydrus-motion" ingest "${push[@]}" -- "$@"
