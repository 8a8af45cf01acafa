"""The HLS engine's C simulation as a driver ``Bus``, so ``pesto.driver.protocol`` drives it
exactly as it drives the board and the RTL simulation; and the identity probe an HLS build
needs before ``check_identity`` (its output registers read 0 until a run has written them).

    with CSimBus(compile_tb(project)) as bus:
        hw = identity_probe(bus)                      # then check_identity(bus) works too
        y, stats = run_layer(bus, layer, x, hw)
"""

from __future__ import annotations

import os
import queue
import select
import signal
import subprocess
import threading
import time

import numpy as np

from ..errors import HardwareError
from ..driver.protocol import connect

ANSWER_TIMEOUT_S = 120.0   # one answer of the C simulation: a register access, or a whole layer run


class CSimBus:
    """read / write / transfer over a compiled testbench in --serve mode (one process, so the
    engine's weights persist between runs as on the board).

    Every answer has a deadline (``timeout_s``; a transfer gets at least its own): a C simulation
    that hangs or is frozen is stopped and reported as a HardwareError naming what was awaited.
    Requests from several threads are serialised (``lock``).
    """

    def __init__(self, binary, timeout_s: float = ANSWER_TIMEOUT_S):
        if not 0 < timeout_s < float("inf"):
            raise HardwareError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
        self.timeout_s = float(timeout_s)
        self.lock = threading.RLock()
        self.proc = subprocess.Popen([str(binary), "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     start_new_session=True)
        os.set_blocking(self.proc.stdin.fileno(), False)
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read_lines, name="csim-reader", daemon=True).start()
        self.last_unread = 0
        self._dead: str | None = None

    def _read_lines(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line.decode(errors="replace"))
        self._lines.put(None)   # end of output: the process exited

    def _stop(self, why: str) -> HardwareError:
        self._dead = why
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        return HardwareError(why)

    def _line(self, what: str, timeout_s: float) -> str:
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise self._stop(f"the HLS C simulation did not answer within {timeout_s:g} s while {what} "
                             f"(hung or frozen); it was stopped") from None
        if line is None:
            self._lines.put(None)
            raise HardwareError(f"the HLS C simulation exited (status {self.proc.wait()}) while {what}")
        if line.startswith("error"):
            raise HardwareError(f"HLS C simulation: {line.strip()}")
        return line.strip()

    def _send(self, text: str, what: str, timeout_s: float) -> None:
        if self._dead:
            raise HardwareError(f"the HLS C simulation is not running any more: {self._dead}")
        data, fd = text.encode(), self.proc.stdin.fileno()
        deadline = time.monotonic() + timeout_s
        while data:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise self._stop(f"the HLS C simulation took no input for {timeout_s:g} s while {what} "
                                 f"(hung or frozen); it was stopped")
            try:
                data = data[os.write(fd, data):]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                raise HardwareError(f"the HLS C simulation exited (status {self.proc.wait()}) while {what}") from None

    def read(self, offset: int) -> int:
        what = f"reading register 0x{int(offset):02X}"
        with self.lock:
            self._send(f"r {int(offset)}\n", what, self.timeout_s)
            return int(self._line(what, self.timeout_s))

    def write(self, offset: int, value: int) -> None:
        what = f"writing register 0x{int(offset):02X}"
        with self.lock:
            self._send(f"w {int(offset)} {int(value) & 0xFFFFFFFF}\n", what, self.timeout_s)
            self._line(what, self.timeout_s)

    def transfer(self, words: np.ndarray, n_out: int, timeout_s: float = 10.0) -> np.ndarray:
        words = np.asarray(words, dtype=np.uint64)
        if words.size == 0:
            raise HardwareError("DMA send of 0 words: the engine would wait for its input forever")
        lines = [f"x {len(words)}"] + [f"{int(w):016x} {int(i == len(words) - 1)}" for i, w in enumerate(words)]
        what = f"running a layer ({len(words)} words in, {n_out} out)"
        limit = max(float(timeout_s), self.timeout_s)
        with self.lock:
            self._send("\n".join(lines) + "\n", what, limit)
            _, count, unread = self._line(what, limit).split()
            self.last_unread = int(unread)
            out = np.array([int(self._line(what, limit), 16) for _ in range(int(count))], dtype=np.uint64)
        if len(out) != n_out:
            # what the DMA would report: the receive channel did not get the expected beats
            raise HardwareError(f"DMA receive: {len(out)} of {n_out} output words arrived")
        return out

    def close(self) -> None:
        with self.lock:
            if self.proc.poll() is None and not self._dead:
                try:
                    self._send("q\n", "closing", 10.0)
                    self.proc.wait(timeout=10)
                except (HardwareError, subprocess.TimeoutExpired):
                    self._stop("closed")
            try:
                self.proc.stdin.close()   # stdout is the reader thread's; it ends at the process's exit
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# The probe is part of connecting to any engine; its one home is the driver protocol.
identity_probe = connect
