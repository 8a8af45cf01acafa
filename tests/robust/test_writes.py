"""Writes (pesto.util): a killed writer's temporary file is removed by the next write of the same
path, a second writer is refused while the first holds the path, a stale lock is taken over, and
disk errors are OutputErrors that say what happened."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from pesto.errors import OutputError
from pesto.util import atomic_write_bytes, claim_output, write_error


def _writer(path, hold_s: float, crash_in_rename: bool = False) -> subprocess.Popen:
    """A separate process that claims ``path`` (and starts a write that hangs before its rename)."""
    code = textwrap.dedent(f"""
        import os, sys, time
        from pesto.util import atomic_write_bytes, claim_output
        if {crash_in_rename!r}:
            os.replace = lambda *a: (print("WRITING", flush=True), time.sleep(600))
            atomic_write_bytes({str(path)!r}, b"half" * 1000)
        with claim_output({str(path)!r}):
            print("WRITING", flush=True)
            time.sleep({hold_s!r})
        """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "WRITING"
    return p


def test_killed_write_leaves_nothing_after_the_next_write(tmp_path):
    path = tmp_path / "model.pesto"
    path.write_bytes(b"old")
    p = _writer(path, 0, crash_in_rename=True)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    leftovers = [q.name for q in tmp_path.iterdir() if q.name != "model.pesto"]
    assert any(n.endswith(".tmp") for n in leftovers) and path.read_bytes() == b"old"
    atomic_write_bytes(path, b"new")   # takes over the dead writer's lock, removes its temporary file
    assert sorted(q.name for q in tmp_path.iterdir()) == ["model.pesto"] and path.read_bytes() == b"new"


def test_other_paths_temporaries_are_left_alone(tmp_path):
    other = tmp_path / ".model.pesto.x.123-abc.tmp"      # belongs to a file named "model.pesto.x"
    other.write_bytes(b"x")
    atomic_write_bytes(tmp_path / "model.pesto", b"new")
    assert other.exists()


def test_a_second_writer_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    p = _writer(path, 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(OutputError, match=rf"run.pt is being written by pid {p.pid}.*choose another output path"):
            with claim_output(path):
                pass
        with pytest.raises(OutputError, match="being written by"):
            import pesto.util
            old, pesto.util.WRITE_WAIT_S = pesto.util.WRITE_WAIT_S, 0.3
            try:
                atomic_write_bytes(path, b"x")
            finally:
                pesto.util.WRITE_WAIT_S = old
        assert time.monotonic() - t0 < 5 and not path.exists()
    finally:
        p.kill()
        p.wait()
    atomic_write_bytes(path, b"mine")   # the writer is gone: its lock is stale
    assert path.read_bytes() == b"mine" and not (tmp_path / ".run.pt.lock").exists()


def test_claims_are_reentrant_within_a_process(tmp_path):
    path = tmp_path / "a.bin"
    with claim_output(path):
        atomic_write_bytes(path, b"1")
        atomic_write_bytes(path, b"2")
    assert path.read_bytes() == b"2" and sorted(q.name for q in tmp_path.iterdir()) == ["a.bin"]


def test_bad_output_paths_are_clear_errors(tmp_path):
    with pytest.raises(OutputError, match="is a folder; give a file name"):
        atomic_write_bytes(tmp_path, b"x")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutputError, match="a file is in the way"):
        atomic_write_bytes(tmp_path / "file" / "x.pesto", b"x")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        atomic_write_bytes(fifo, b"x")


def test_a_full_disk_is_an_output_error(tmp_path):
    """A real short write: the file-size limit makes write() fail as a full disk does."""
    code = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        from pesto.util import atomic_write_bytes
        from pesto.errors import OutputError
        try:
            atomic_write_bytes({str(tmp_path / 'big.bin')!r}, b"x" * 100_000)
        except OutputError as e:
            print("OUTPUT ERROR", e)
        """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "OUTPUT ERROR" in r.stdout and "larger than this process may write" in r.stdout, r.stdout + r.stderr
    assert sorted(q.name for q in tmp_path.iterdir()) == []   # no half file, no temporary, no lock
    e = write_error("out.pesto", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    assert "cannot write out.pesto: the disk is full" in str(e) and "free some space" in str(e)


def test_a_folder_that_cannot_be_written_is_an_output_error(tmp_path):
    if os.geteuid() == 0:   # root writes through folder permissions; sysfs refuses new files to anyone
        target, match = "/sys/pesto-robust-test.pesto", "cannot write /sys/pesto-robust-test.pesto: "
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target, match = ro / "x.pesto", "permission denied"
    try:
        with pytest.raises(OutputError, match=match):
            atomic_write_bytes(target, b"x")
    finally:
        if os.geteuid() != 0:
            (tmp_path / "ro").chmod(0o700)
