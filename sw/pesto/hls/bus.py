"""The HLS engine's C simulation as a driver ``Bus``, so ``pesto.driver.protocol`` drives it
exactly as it drives the board and the RTL simulation; and the identity probe an HLS build
needs before ``check_identity`` (its output registers read 0 until a run has written them).

    with CSimBus(compile_tb(project)) as bus:
        hw = identity_probe(bus)                      # then check_identity(bus) works too
        y, stats = run_layer(bus, layer, x, hw)
"""

from __future__ import annotations

import subprocess

import numpy as np

from ..errors import HardwareError
from ..driver.protocol import connect


class CSimBus:
    """read / write / transfer over a compiled testbench in --serve mode (one process, so the
    engine's weights persist between runs as on the board)."""

    def __init__(self, binary):
        self.proc = subprocess.Popen([str(binary), "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.last_unread = 0

    def _line(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise HardwareError(f"the HLS C simulation exited (status {self.proc.poll()})")
        if line.startswith("error"):
            raise HardwareError(f"HLS C simulation: {line.strip()}")
        return line.strip()

    def _send(self, text: str) -> None:
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def read(self, offset: int) -> int:
        self._send(f"r {int(offset)}\n")
        return int(self._line())

    def write(self, offset: int, value: int) -> None:
        self._send(f"w {int(offset)} {int(value) & 0xFFFFFFFF}\n")
        self._line()

    def transfer(self, words: np.ndarray, n_out: int, timeout_s: float = 10.0) -> np.ndarray:
        words = np.asarray(words, dtype=np.uint64)
        if words.size == 0:
            raise HardwareError("DMA send of 0 words: the engine would wait for its input forever")
        lines = [f"x {len(words)}"] + [f"{int(w):016x} {int(i == len(words) - 1)}" for i, w in enumerate(words)]
        self._send("\n".join(lines) + "\n")
        _, count, unread = self._line().split()
        self.last_unread = int(unread)
        out = np.array([int(self._line(), 16) for _ in range(int(count))], dtype=np.uint64)
        if len(out) != n_out:
            # what the DMA would report: the receive channel did not get the expected beats
            raise HardwareError(f"DMA receive: {len(out)} of {n_out} output words arrived")
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            self._send("q\n")
            self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# The probe is part of connecting to any engine; its one home is the driver protocol.
identity_probe = connect
