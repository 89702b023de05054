#!/usr/bin/env bash
# Set up everything hydrus-motion needs on a fresh machine: ffmpeg (apt-get when missing)
# and a virtual environment in .venv with the package and the extras named as arguments.
#   scripts/setup.sh            # base install
#   scripts/setup.sh dev        # + test tools
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
    if command -v apt-get >/dev/null; then
        echo "setup: installing ffmpeg with apt-get" >&2
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg >/dev/null
    else
        echo "setup: ffmpeg is missing; install it with your package manager" >&2
        exit 1
    fi
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
extras=$(IFS=,; echo "$*")
# Extras that pull torch: install the pinned build first, or pip resolves a bare `torch`
# requirement to the newest release with several GB of CUDA packages (on a GPU machine
# the same command gives the CUDA build, as it should).
case ",$extras," in
    *,dev,*|*,caption,*|*,train,*|*,transnetv2,*)
        .venv/bin/python -c "import torch" 2>/dev/null \
            || .venv/bin/python -m pip install -q --disable-pip-version-check "torch==${TORCH_VERSION:-2.13.0}" ;;
esac
spec="."; [ -z "$extras" ] || spec=".[$extras]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec"

# The caption extra brings torchvision (SmolVLM2's processor needs it). A local torch build
# (such as a CPU wheel from disk) may have no torchvision that loads with it; a broken one
# would break transformers' imports, so it is removed again, and we say so.
case ",$extras," in
    *,caption,*)
        if ! .venv/bin/python -c "import torchvision" >/dev/null 2>&1; then
            tv=$( (.venv/bin/python -m pip show torchvision 2>/dev/null || true) | sed -n 's/^Version: //p')
            torch=$(.venv/bin/python -c "import torch; print(torch.__version__)" 2>/dev/null || echo "?")
            .venv/bin/python -m pip uninstall -y -q torchvision >/dev/null 2>&1 || true
            echo "setup: torchvision${tv:+ $tv} does not load with torch $torch (no build of it" \
                 "matches this torch): left out. The default captioner (SmolVLM2) needs it:" \
                 "install the torchvision build made for your torch, or set" \
                 "annotate.captioner.model to a model whose processor needs none." >&2
        fi ;;
esac
