#!/usr/bin/env bash
# Set up (ffmpeg, .venv with the dev extra), then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev >&2
exec .venv/bin/python -m pytest "$@"
