"""The PYNQ board: the accelerator's registers through a ``DefaultIP`` bound to its VLNV, and
one AXI DMA round trip (MM2S out, S2MM back) per layer run with ``pynq.allocate`` buffers.

Deliberately thin: everything a run means (register values, stream packing, the order of
events, the error codes) lives in ``protocol.py`` and is exercised by the RTL simulation.
What this module adds is the board's transport -- finding the IP in the overlay's
``ip_dict`` (no hard-coded names), contiguous buffers, and timeouts instead of hangs.
Importing it needs the ``pynq`` package (installed on the board image, not in the dev venv).
"""

from __future__ import annotations

import threading

import numpy as np
import pynq
from pynq import DefaultIP

from ..errors import HardwareError
from ..hwspec import REGMAP
from .backends import wait_until

VLNV = REGMAP.spec["vlnv"]
DMA_VLNV = "xilinx.com:ip:axi_dma:"     # any version of the Xilinx AXI DMA
DMACR_RESET = 0x4                       # MM2S_DMACR.Reset resets both channels (PG021)
MM2S_DMASR, S2MM_DMASR = 0x04, 0x34     # channel status registers (PG021)


class PestoAccelIP(DefaultIP):
    """pynq driver for ``pesto_accel``: Overlay binds it by VLNV (``bindto``)."""

    bindto = [VLNV]

    def __init__(self, description):
        super().__init__(description=description)


class PynqBus:
    """``protocol.Bus`` over the board: MMIO reads/writes and the AXI DMA."""

    def __init__(self, ip, dma, allocate=pynq.allocate):
        self.ip, self.dma, self._allocate = ip, dma, allocate
        for ch in ("sendchannel", "recvchannel"):
            if getattr(dma, ch, None) is None:
                raise HardwareError(f"the AXI DMA has no {ch}: build it with both MM2S and S2MM enabled")
        self._buffers: dict[str, np.ndarray] = {}
        self.lock = threading.RLock()   # MMIO and the DMA serve one run at a time (driver.protocol.bus_lock)

    def engine_error(self) -> int:
        """STATUS.ERR_CODE now: non-zero once the engine ended the run with an error (it then sends
        no output, so waiting for the output stream would only wait out its timeout)."""
        return REGMAP["STATUS"].field(self.read(REGMAP.offset("STATUS")), "ERR_CODE")

    def read(self, offset: int) -> int:
        return int(self.ip.read(offset))

    def write(self, offset: int, value: int) -> None:
        self.ip.write(offset, int(value))

    def _buffer(self, which: str, words: int):
        """Physically contiguous uint64 buffers, grown on demand and reused (allocation is slow)."""
        buf = self._buffers.get(which)
        if buf is None or buf.shape[0] < words:
            self._buffers[which] = buf = self._allocate(shape=(max(words, 1024),), dtype=np.uint64)
        return buf

    def transfer(self, words: np.ndarray, n_out: int, timeout_s: float) -> np.ndarray:
        send, recv = self.dma.sendchannel, self.dma.recvchannel
        inbuf, outbuf = self._buffer("in", len(words)), self._buffer("out", n_out)
        inbuf[:len(words)] = words
        try:
            if n_out:
                recv.transfer(outbuf, 0, n_out * 8)    # S2MM armed first: the engine may answer at once
            send.transfer(inbuf, 0, len(words) * 8)
        except ValueError as e:  # pynq: transfer longer than the DMA's length register allows
            raise HardwareError(f"{e}: rebuild the overlay's AXI DMA with c_sg_length_width=26") from e
        try:
            channels = [(send, MM2S_DMASR, "the DMA to send the input stream (MM2S)"),
                        (recv, S2MM_DMASR, "the output stream (S2MM): the engine did not answer")]
            for ch, status, what in channels[:2 if n_out else 1]:
                wait_until(lambda: ch.idle or ch.error or self.engine_error(), timeout_s, what)
                if ch.error:
                    raise HardwareError(f"AXI DMA error while waiting for {what} "
                                        f"(DMASR=0x{self.dma.read(status):08X})")
                if not ch.idle:   # the engine ended the run with an error: no output will come
                    err = self.engine_error()
                    raise HardwareError(f"no complete output stream: while waiting for {what}, the engine "
                                        f"reports STATUS.ERR_CODE {REGMAP.error_names.get(err, err)} and sends "
                                        f"no output")
                ch.wait()  # idle now: pynq's own bookkeeping (cache invalidate, bytes transferred)
        except HardwareError:
            self.reset_dma()
            raise
        if recv.transferred != n_out * 8:
            raise HardwareError(f"output stream ended after {recv.transferred // 8} words, expected {n_out}")
        return np.array(outbuf[:n_out], dtype=np.uint64)

    def reset_dma(self) -> None:
        """Abort a stuck transfer so the next run starts clean."""
        self.dma.write(0x00, DMACR_RESET)
        wait_until(lambda: not self.dma.read(0x00) & DMACR_RESET, 1.0, "the AXI DMA reset")
        self.dma.sendchannel.start()
        self.dma.recvchannel.start()

    def close(self) -> None:
        for buf in self._buffers.values():
            freebuffer = getattr(buf, "freebuffer", None)
            if freebuffer:
                freebuffer()
        self._buffers.clear()


def find_ip(ip_dict: dict, vlnv_prefix: str, what: str, name: str | None = None) -> str:
    """The ip_dict key of the one IP whose VLNV starts with ``vlnv_prefix`` (or ``name``)."""
    if name is not None:
        if name not in ip_dict:
            raise HardwareError(f"the overlay has no IP named {name!r}; it has {sorted(ip_dict)}")
        return name
    hits = [k for k, d in ip_dict.items() if str(d.get("type", "")).startswith(vlnv_prefix)]
    if not hits:
        raise HardwareError(f"the overlay has no {what} (VLNV {vlnv_prefix}*); IPs found: "
                            f"{ {k: d.get('type') for k, d in ip_dict.items()} }. Load the pesto overlay")
    if len(hits) > 1:
        raise HardwareError(f"the overlay has several {what}s {hits}: pass the one to use by name")
    return hits[0]


def _driver(overlay, key: str, cls):
    """The overlay's driver for ``key`` ('hier/ip' walks hierarchies), or ``cls`` bound to it."""
    obj = overlay
    try:
        for part in key.split("/"):
            obj = getattr(obj, part)
    except (AttributeError, RuntimeError):
        obj = None
    if cls is not None and not isinstance(obj, cls):
        obj = cls(overlay.ip_dict[key])
    return obj


def open_bus(overlay, accel_name: str | None = None, dma_name: str | None = None) -> PynqBus:
    """A Bus over the accelerator and the AXI DMA in ``overlay`` (an Overlay, or the path of a
    .bit with its .hwh beside it)."""
    if isinstance(overlay, str):
        overlay = pynq.Overlay(overlay)
    ip_dict = overlay.ip_dict
    accel = _driver(overlay, find_ip(ip_dict, VLNV, "pesto accelerator", accel_name), PestoAccelIP)
    from pynq.lib.dma import DMA
    dma = _driver(overlay, find_ip(ip_dict, DMA_VLNV, "AXI DMA", dma_name), DMA)
    return PynqBus(accel, dma)
