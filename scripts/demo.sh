#!/usr/bin/env bash
# Sets everything up, then runs the main job on the embedded default model:
# export -> integer reference -> simulated accelerator, with accuracy and speedups.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/pesto demo "$@"
