"""Small shared helpers: atomic file writes, output claims and checksums.

Every file pesto writes goes through ``atomic_write_bytes``: a temporary file in the same
folder, fsync, rename. Readers see the old file or the new one, never half of one. While it
writes, the path is *claimed* (``claim_output``): a lock file ``.<name>.lock`` beside it holds
the writer's pid under an flock, so a second pesto process writing the same path is refused
with an OutputError naming the first, and a lock left by a killed writer (the kernel drops its
flock) is simply taken over. Taking a claim also removes the temporary files an interrupted
write of that path left behind. Long jobs (`pesto train --out`, `pesto export-to-fpga -o`)
hold the claim for their whole run.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

from .errors import OutputError

WRITE_WAIT_S = 10.0   # how long one write waits for another process's claim on its path

_held: dict[str, list] = {}          # lock file -> [fd, depth] of the claims this process holds
_held_guard = threading.Lock()

_REASONS = {
    errno.ENOSPC: ("the disk is full", "free some space or write elsewhere"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space or write elsewhere"),
    errno.EROFS: ("the file system is read-only", "write to another folder"),
    errno.EACCES: ("permission denied", "write to a folder you may write to"),
    errno.EPERM: ("permission denied", "write to a folder you may write to"),
    errno.EISDIR: ("a folder is in the way", "give a file name, not a folder"),
    errno.ENOTDIR: ("a file is in the way of a folder on the path", "remove it or choose another path"),
    errno.EEXIST: ("a file is in the way of a folder on the path", "remove it or choose another path"),
    errno.ENAMETOOLONG: ("the name is too long", "choose a shorter path"),
    errno.EFBIG: ("the file is larger than this process may write", "raise the file size limit (ulimit -f)"),
}


def write_error(path, e: OSError) -> OutputError:
    """An OSError of a write, as an OutputError that says what happened and what to do."""
    reason, fix = _REASONS.get(e.errno, (e.strerror or str(e), "check the path"))
    return OutputError(f"cannot write {path}: {reason} ({e.strerror or e}); {fix}")


def _lock_file(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


_TEMP_TAIL = re.compile(r"\d+-[A-Za-z0-9_]+\.tmp")


def _remove_orphans(path: Path) -> None:
    """Delete the temporary files earlier, interrupted writes of ``path`` left (we hold its claim,
    so nobody else is writing them)."""
    prefix = _temp_prefix(path)
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return
    for p in entries:
        if p.name.startswith(prefix) and _TEMP_TAIL.fullmatch(p.name[len(prefix):]):
            try:
                p.unlink()
            except OSError:
                pass


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "another process"


@contextmanager
def claim_output(path, wait_s: float = 0.0):
    """Claim ``path`` (a file or a folder) for writing for the duration of the ``with`` block.

    Refused with an OutputError when another process holds it after ``wait_s`` seconds.
    Re-entrant within one process. The parent folder is created if needed.
    """
    path = Path(path).absolute()
    lock = _lock_file(path)
    key = str(lock)
    with _held_guard:
        if key in _held:
            _held[key][1] += 1
            fd = None
        else:
            fd = _acquire(path, lock, wait_s)
            _held[key] = [fd, 1]
    try:
        if fd is not None:
            _remove_orphans(path)
        yield path
    finally:
        with _held_guard:
            entry = _held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                try:
                    os.unlink(lock)
                except OSError:
                    pass
                os.close(entry[0])


@contextmanager
def claim_outputs(*paths):
    """``claim_output`` on every path given (None and '' skipped), all held for the ``with`` block."""
    with ExitStack() as stack:
        for path in paths:
            if path:
                stack.enter_context(claim_output(path))
        yield


def _acquire(path: Path, lock: Path, wait_s: float) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(path, e) from None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise write_error(path, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _holder(fd)
            os.close(fd)
            if time.monotonic() >= deadline:
                raise OutputError(f"{path} is being written by {who} (lock {lock}); wait for it to finish "
                                  f"or choose another output path") from None
            time.sleep(0.05)
            continue
        try:  # the file we locked must still be the one at the path (a releaser unlinks it)
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``:
    readers see the old file or the new one, never half of one. Any failure (disk full,
    read-only folder, a folder in the way, another writer) is an OutputError."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder; give a file name")
    if path.exists() and not path.is_file():
        raise OutputError(f"cannot write {path}: it is not a regular file (a device, FIFO or socket); "
                          f"give the path of a file")
    with claim_output(path, wait_s=WRITE_WAIT_S):
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}-", suffix=".tmp",
                                       dir=path.parent)
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            tmp = None
            _fsync_dir(path.parent)
        except OSError as e:
            raise write_error(path, e) from None
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (best effort: not every file system lets a folder be fsync-ed)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
