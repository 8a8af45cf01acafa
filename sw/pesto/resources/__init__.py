"""Where pesto finds the files it ships besides its Python code, and where it writes what it builds.

    from pesto import resources
    resources.path("hw/rtl")          # the Verilog engine
    resources.path("hls")             # the HLS templates
    resources.cache_dir("sim")        # where simulator builds go

The folders are the repository's own top-level ``hw/``, ``hls/``, ``sim/``, ``bitstreams/`` and
``notebooks/``. In a source checkout (an editable install included) they are read where they
are; a wheel carries copies of them inside this package (setup.py maps them in), so an
installed pesto works from any folder. Nothing is ever written into the installed package:
builds and caches go to ``cache_dir()`` (the checkout's ``build/``, else ``$PESTO_CACHE_DIR``
or ``$XDG_CACHE_HOME/pesto``, by default ``~/.cache/pesto``), and generated files to the
folder the user names.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError

# The repository folders a wheel carries (setup.py reads this tuple).
FOLDERS = ("hw", "hls", "sim", "bitstreams", "notebooks")
CACHE_ENV = "PESTO_CACHE_DIR"

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parents[2]  # sw/pesto/resources -> the checkout


def checkout() -> Path | None:
    """The source checkout pesto runs from, or None when it runs from an installed wheel."""
    if (_HERE / "hw").is_dir():
        return None
    if (_REPO / "hw" / "rtl").is_dir() and (_REPO / "sw" / "pesto").is_dir():
        return _REPO
    return None


def base() -> Path:
    """The folder that holds hw/, hls/, sim/, ... (the checkout, or this package when installed)."""
    return checkout() or _HERE


def path(relative: str) -> Path:
    """A shipped file or folder, e.g. ``path("hw/rtl")`` or ``path("hls/csim/ap_axi_sdata.h")``."""
    top = Path(relative).parts[0] if relative else ""
    if top not in FOLDERS:
        raise ConfigError(f"{relative!r} is not a pesto resource; resources live under {', '.join(FOLDERS)}")
    p = base() / relative
    if not p.exists():
        raise ConfigError(f"pesto's {relative} is missing from {base()}: the installation is incomplete; "
                          f"reinstall pesto (pip install --force-reinstall pesto) or use a full checkout")
    return p


def cache_dir(sub: str | None = None) -> Path:
    """The folder for builds and caches (created on demand by the callers)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        root = Path(env).expanduser()
    elif checkout() is not None:
        root = checkout() / "build"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pesto"
    return root / sub if sub else root
