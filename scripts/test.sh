#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite (RTL benches, HLS C-sim, training, export,
# driver, notebook). Extra arguments go to pytest, e.g. scripts/test.sh -k rtl.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
