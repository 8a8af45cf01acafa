"""pesto as a user gets it: the sdist and the wheel built from this checkout, and venvs outside
the checkout to install them in. Shared by tests/package (the wheel from an empty folder) and
tests/driver (the board-like Python 3.10 venv with the real pynq package).

Both are cached under build/ (CI starts from a fresh clone, so there they are made once per
run): the wheel by a hash of every file it is built from, a venv by a hash of what it is made
of (its interpreter and requirements); each venv gets the current wheel reinstalled on use.
A file lock keeps pytest-xdist workers from building anything twice.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "package-tests"
SOURCES = ("sw", "hw", "hls", "sim", "bitstreams", "notebooks")
TOP_FILES = ("pyproject.toml", "setup.py", "README.md")
FIND_LINKS = ["--find-links", "/opt/wheels"] if Path("/opt/wheels").is_dir() else []  # the local torch wheel


@contextmanager
def _lock(name: str):
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def source_hash() -> str:
    h = hashlib.sha256()
    files = [ROOT / f for f in TOP_FILES] + sorted(
        p for d in SOURCES for p in (ROOT / d).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc"))
    for p in files:
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def built_wheel() -> Path:
    """The wheel of this checkout, built the way pip users get it: sdist first, then the wheel
    from the unpacked sdist (python -m build), so both are checked."""
    out = CACHE / "dist" / source_hash()
    with _lock("wheel"):
        wheels = glob.glob(str(out / "pesto-*.whl"))
        if wheels:
            return Path(wheels[0])
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", tmp, ROOT], cwd=tmp.parent)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
        return Path(glob.glob(str(out / "pesto-*.whl"))[0])


def python310() -> Path | None:
    """A Python 3.10 interpreter (the PYNQ images' version): $PESTO_PYTHON310, python3.10 on
    PATH, or pyenv's."""
    candidates = [os.environ.get("PESTO_PYTHON310"), shutil.which("python3.10"),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3.10")), reverse=True),
                  "/usr/bin/python3.10", "/usr/local/bin/python3.10"]
    for c in candidates:
        if not c or not Path(c).exists():
            continue
        r = subprocess.run([c, "-c", "import sys, venv, ensurepip; print(sys.version_info[:2] == (3, 10))"],
                           capture_output=True, text=True)   # a pyenv shim may exist and refuse to run
        if r.returncode == 0 and r.stdout.strip() == "True":
            return Path(c)
    return None


def venv(name: str, python: Path | str, install: list[str], key_files: list[Path] = ()) -> Path:
    """A venv under build/ made with ``python`` and ``pip install *install`` ("{wheel}" in an
    item stands for this checkout's wheel), rebuilt when the interpreter, ``install``,
    pyproject.toml or the contents of ``key_files`` change; the current wheel is reinstalled
    into it (without its dependencies) on every call. Returns its python."""
    h = hashlib.sha256(str(python).encode() + repr(install).encode())
    for f in [ROOT / "pyproject.toml", *key_files]:
        h.update(Path(f).read_bytes())
    folder = CACHE / "venvs" / name
    stamp = folder / ".pesto-ready"
    wheel = built_wheel()
    with _lock(f"venv-{name}"):
        if not (stamp.is_file() and stamp.read_text() == h.hexdigest()):
            _run([python, "-m", "venv", "--clear", folder])
            _run([folder / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
                  *FIND_LINKS, *(item.replace("{wheel}", str(wheel)) for item in install)])
            stamp.write_text(h.hexdigest())
        # only pesto itself is reinstalled: its dependencies must already be there (pip check)
        _run([folder / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
              "--force-reinstall", "--no-deps", wheel])
    return folder / "bin" / "python"
