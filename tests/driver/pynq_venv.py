"""The side venv with the real pynq package: numpy 1.26 + pynq 4.0.0 (pesto comes from sw/ on
PYTHONPATH, as it would be installed --no-deps on the board).

pynq pins numpy 1.26, which would break the main venv (numpy 2), so its tests run the pynq
backend in this venv, built once under build/pynq-venv/ (about a minute from PyPI) and reused
while tests/driver/pynq-requirements.txt is unchanged. A file lock keeps pytest-xdist workers
from building it twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "build" / "pynq-venv"
REQUIREMENTS = Path(__file__).with_name("pynq-requirements.txt")


def pynq_python() -> Path:
    """The side venv's python, built on first use."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    stamp = VENV / ".pesto-ready"
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    with open(VENV.parent / "pynq-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.is_file() and stamp.read_text() == want):
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
            pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            subprocess.run(pip + ["-r", str(REQUIREMENTS)], check=True)
            stamp.write_text(want)
    return VENV / "bin" / "python"
