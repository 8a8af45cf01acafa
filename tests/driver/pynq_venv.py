"""The board-like venv: Python 3.10 and numpy 1.26 as on the PYNQ images, the real pynq 4.0.0
package, no torch, and pesto installed from its wheel (built from this checkout), as a board
user would `pip install pesto`.

pynq pins numpy 1.26, which would break the main venv (numpy 2), so the board tests run in this
venv, built once under build/ (about a minute from PyPI) and reused while
tests/driver/pynq-requirements.txt and pyproject.toml are unchanged (tests/package/wheel.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REQUIREMENTS = HERE / "pynq-requirements.txt"


def _wheel_module():
    spec = importlib.util.spec_from_file_location("pesto_tests_wheel", HERE.parent / "package" / "pesto_wheel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pynq_python() -> Path:
    """The board venv's python, built on first use; skips the test without a Python 3.10."""
    wheel = _wheel_module()
    python = wheel.python310()
    if python is None:
        pytest.skip("no Python 3.10 interpreter (the PYNQ images' version): set PESTO_PYTHON310 or install "
                    "python3.10 (pyenv install 3.10)")
    return wheel.venv("board-py310", python, ["-r", str(REQUIREMENTS), "{wheel}"], [REQUIREMENTS])
