"""A Zynq board for the real ``pynq`` package, made of the RTL simulation: runs in the side venv
(Python 3.10, numpy 1.26, pynq 4.0.0, pesto from its wheel; see pynq_venv.py), never in the main one.

pynq's own classes do the work -- ``DefaultIP`` (our ``PestoAccelIP``, bound by VLNV),
``MMIO``, ``pynq.allocate`` / ``PynqBuffer``, the AXI DMA driver ``pynq.lib.dma.DMA`` with its
send/recv channels -- on a ``pynq.Device`` whose register accesses go to:

* the accelerator's AXI4-Lite window -> the parent test's SimAccelerator (over a socket, with
  the same framing as pesto.sim.wire), i.e. the RTL;
* the AXI DMA's window -> a register model of the Xilinx AXI DMA in simple mode (PG021:
  DMACR/DMASR/SA/DA/LENGTH); writing MM2S_LENGTH moves the buffer's words through the RTL
  (one Bus.transfer) into the S2MM buffer.

What the board adds beyond this: the real AXI interconnect and DMA timing, cache flushes
(buffers here are coherent), the bitstream download and the .hwh parsing that builds ip_dict.

Usage (from tests/driver/test_pynq_backend.py): python pynq_board.py FD JOB_DIR
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import traceback
from pathlib import Path

import numpy as np
import pynq
from pynq.buffer import PynqBuffer
from pynq.pl_server.device import Device

from pesto.sim import wire  # numpy-free framing, shared with the simulator

ACCEL_BASE, ACCEL_RANGE = 0x43C0_0000, 0x1_0000
DMA_BASE, DMA_RANGE = 0x4040_0000, 0x1_0000
DMA_VLNV = "xilinx.com:ip:axi_dma:7.1"


class RemoteBus:
    """The parent's SimAccelerator, over a socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def _call(self, header: dict, payload: bytes = b"") -> tuple[dict, bytes]:
        wire.send(self.sock, header, payload)
        reply, data = wire.recv(self.sock)
        if not reply.get("ok"):
            raise RuntimeError(reply.get("message"))
        return reply, data

    def read(self, offset: int) -> int:
        return int(self._call({"op": "read", "offset": offset})[0]["value"])

    def write(self, offset: int, value: int) -> None:
        self._call({"op": "write", "offset": offset, "value": value})

    def transfer(self, words: np.ndarray, n_out: int) -> np.ndarray | None:
        reply, data = self._call({"op": "transfer", "n_out": n_out}, np.asarray(words, "<u8").tobytes())
        return None if reply.get("failed") else np.frombuffer(data, "<u8")


class AxiDmaModel:
    """Registers of a simple-mode AXI DMA (PG021) that moves words through ``engine``."""

    def __init__(self, memory, engine, dead: bool = False):
        self.memory, self.engine, self.dead = memory, engine, dead
        self.regs = {}
        self.armed = False                      # S2MM holds a receive buffer
        self.sends = self.receives = 0          # transfers started on each channel
        self.halted = {0x00: True, 0x30: True}
        self.idle = {0x00: False, 0x30: False}

    def read(self, offset: int) -> int:
        ch = offset & 0x30
        if offset in (0x04, 0x34):
            return int(self.halted[ch]) | (int(self.idle[ch]) << 1)
        return self.regs.get(offset, 0)

    def write(self, offset: int, value: int) -> None:
        ch = offset & 0x30
        self.regs[offset] = value
        if offset in (0x00, 0x30):
            if value & 0x4:                     # soft reset: both channels halt, abort transfers
                for c in (0x00, 0x30):
                    self.halted[c], self.idle[c] = True, False
                self.regs[0x00] = self.regs[0x30] = 0
            else:
                self.halted[ch] = not value & 1
        elif offset == 0x58:                    # S2MM_LENGTH: the receive buffer is armed
            self.idle[0x30] = False
            self.armed = True
            self.receives += 1
        elif offset == 0x28:                    # MM2S_LENGTH: send now
            self.idle[0x00] = False
            self.sends += 1
            words = self.memory.read(self.regs[0x18] | self.regs.get(0x1C, 0) << 32, value)
            self.idle[0x00] = True
            out = self.engine.transfer(words, self.regs[0x58] // 8 if self.armed else 0)
            if self.armed and out is not None and not self.dead:  # a lost output stream leaves S2MM busy
                self.memory.write(self.regs[0x48] | self.regs.get(0x4C, 0) << 32, out)
                self.regs[0x58] = out.nbytes
                self.idle[0x30] = True
                self.armed = False


class Memory:
    """Physically addressed DDR: buffers handed out by allocate() at made-up physical addresses."""

    def __init__(self):
        self.buffers: list[PynqBuffer] = []
        self.next = 0x1000_0000

    def allocate(self, device, shape, dtype) -> PynqBuffer:
        buf = PynqBuffer(shape, dtype, device=device, device_address=self.next, bo=0, coherent=True)
        buf[...] = 0
        self.buffers.append(buf)
        self.next += (buf.nbytes + 0xFFF) & ~0xFFF
        return buf

    def _find(self, addr: int, nbytes: int) -> tuple[PynqBuffer, int]:
        for b in self.buffers:
            if b.device_address <= addr and addr + nbytes <= b.device_address + b.nbytes:
                return b, addr - b.device_address
        raise RuntimeError(f"DMA to unmapped address 0x{addr:x}")  # a DECERR on the board

    def read(self, addr: int, nbytes: int) -> np.ndarray:
        b, off = self._find(addr, nbytes)
        return np.frombuffer(b.view(np.uint8)[off:off + nbytes].tobytes(), "<u8")

    def write(self, addr: int, words: np.ndarray) -> None:
        b, off = self._find(addr, words.nbytes)
        b.view(np.uint8)[off:off + words.nbytes] = np.frombuffer(words.tobytes(), np.uint8)


class SimulatedZynq(Device):
    """A pynq Device with REGISTER_RW access: MMIO goes through read_registers/write_registers."""

    def __init__(self, accel, dma):
        super().__init__("simulated-zynq")
        self.capabilities = {"REGISTER_RW": True}
        self.memory = Memory()
        self.windows = [(ACCEL_BASE, ACCEL_RANGE, accel), (DMA_BASE, DMA_RANGE, dma)]

    def _target(self, address: int):
        for base, size, target in self.windows:
            if base <= address < base + size:
                return target, address - base
        raise RuntimeError(f"bus error: nothing at 0x{address:x}")

    def read_registers(self, address: int, length: int) -> bytes:
        target, off = self._target(address)
        return struct.pack("<I", target.read(off) & 0xFFFFFFFF)

    def write_registers(self, address: int, data: bytes) -> None:
        target, off = self._target(address)
        target.write(off, struct.unpack("<I", data[:4])[0])

    def allocate(self, shape, dtype, **kwargs):
        return self.memory.allocate(self, shape, dtype)


class Overlay:
    """What a pynq Overlay offers the driver: ip_dict (as the .hwh parser builds it)."""

    def __init__(self, device, accel_vlnv: str, with_dma: bool = True):
        self.ip_dict = {
            "pesto_accel_0": {"type": accel_vlnv, "phys_addr": ACCEL_BASE, "addr_range": ACCEL_RANGE,
                              "fullpath": "pesto_accel_0", "device": device, "interrupts": {}, "gpio": {},
                              "parameters": {}},
        }
        if with_dma:
            self.ip_dict["axi_dma_0"] = {
                "type": DMA_VLNV, "phys_addr": DMA_BASE, "addr_range": DMA_RANGE, "fullpath": "axi_dma_0",
                "device": device, "interrupts": {}, "gpio": {},
                "parameters": {"c_include_sg": "0", "c_micro_dma": "0", "c_sg_length_width": "26",
                               "c_include_mm2s": "1", "c_include_s2mm": "1",
                               "c_m_axi_mm2s_data_width": "64", "c_m_axi_s2mm_data_width": "64"}}


class Zeros:
    """A register window of some other IP: reads 0 (a bitstream without the pesto engine)."""

    def read(self, offset):
        return 0

    def write(self, offset, value):
        pass


def board(remote, *, dead_engine=False, other_ip=False, with_dma=True, vlnv=None):
    from pesto.driver import pynq_backend
    accel = Zeros() if other_ip else remote
    device = SimulatedZynq(accel, None)
    dma = AxiDmaModel(device.memory, remote, dead=dead_engine)
    device.windows[1] = (DMA_BASE, DMA_RANGE, dma)
    Device.active_device = device   # what pynq.allocate() uses
    overlay = Overlay(device, vlnv or pynq_backend.VLNV, with_dma=with_dma)
    overlay.dma_model = dma
    return overlay


def expect_error(fn) -> str:
    from pesto.errors import HardwareError
    try:
        fn()
    except HardwareError as e:
        return f"HardwareError: {e}"
    except Exception as e:  # noqa: BLE001 - reported to the parent, which asserts on it
        return f"{type(e).__name__}: {e}"
    return "no error"


def network_job(remote, job: dict, job_dir: Path) -> None:
    """Network mode on the board: every sub-net on a batch, one DMA send and one receive per
    run, a switch inside a batch, the engine's program loaded once."""
    from pesto import artifact as artifact_mod
    from pesto.driver import Accelerator
    art = artifact_mod.load(job["artifact"])
    images = np.load(job_dir / "images.npy", allow_pickle=False)
    results: dict = {"pynq_version": pynq.__version__, "sends": [], "receives": []}
    out: dict[str, np.ndarray] = {}
    overlay = board(remote)
    dma = overlay.dma_model
    with Accelerator(art, backend="pynq", overlay=overlay, timeout_s=job["timeout_s"]) as acc:
        results.update(mode=acc.mode, mode_reason=acc.mode_reason, describe=repr(acc))
        for k in range(art.num_subnets):
            dma.sends = dma.receives = 0
            out[f"subnet_{k}"] = acc.execute(images, subnet=k)
            results["sends"].append(dma.sends)
            results["receives"].append(dma.receives)
            results.setdefault("cycles", []).append(acc.hw_time()["hw_cycles_per_image"])
        dma.sends = dma.receives = 0
        out["mixed"] = acc.execute(images, subnet=job["plan"])
        results["mixed_sends"], results["mixed_receives"] = dma.sends, dma.receives
        results["throughput"] = acc.throughput_test(images)
    np.savez(job_dir / "out.npz", **out)
    (job_dir / "results.json").write_text(json.dumps(results))


def main(fd: int, job_dir: Path) -> None:
    from pesto import artifact as artifact_mod
    from pesto.driver import Accelerator, pynq_backend
    from pynq.overlay import _ip_drivers

    sock = socket.socket(fileno=fd)
    remote = RemoteBus(sock)
    job = json.loads((job_dir / "job.json").read_text())
    if job.get("network"):
        network_job(remote, job, job_dir)
        sock.close()
        return
    art = artifact_mod.load(job["artifact"])
    images = np.load(job_dir / "images.npy", allow_pickle=False)
    results: dict = {"pynq_version": pynq.__version__, "numpy_version": np.__version__,
                     "bound": _ip_drivers.get(pynq_backend.VLNV) is pynq_backend.PestoAccelIP}
    out: dict[str, np.ndarray] = {}

    with Accelerator(art, backend="pynq", overlay=board(remote), timeout_s=job["timeout_s"]) as acc:
        results["describe"] = repr(acc)
        for name in job["layers"]:
            x = np.load(job_dir / f"layer_{name}.npy", allow_pickle=False)
            out[f"layer_{name}"] = acc.run_layer(name, x)
            out[f"cycles_{name}"] = np.array([s.cycles for s in acc.records[name].stats])
        out["logits"] = acc.execute(images)
        results["records"] = {k: [s.cycles for s in r.stats] for k, r in acc.records.items()}

    timeout = job["timeout_s"]
    results["errors"] = {
        "other_ip": expect_error(lambda: Accelerator(art, backend="pynq", overlay=board(remote, other_ip=True))),
        "no_dma": expect_error(lambda: Accelerator(art, backend="pynq", overlay=board(remote, with_dma=False))),
        "no_accel": expect_error(lambda: Accelerator(art, backend="pynq",
                                                     overlay=board(remote, vlnv="xilinx.com:ip:axi_gpio:2.0"))),
    }
    dead = Accelerator(art, backend="pynq", overlay=board(remote, dead_engine=True), timeout_s=timeout)
    name = job["layers"][0]
    x = np.load(job_dir / f"layer_{name}.npy", allow_pickle=False)
    results["errors"]["dead_engine"] = expect_error(lambda: dead.run_layer(name, x))
    np.savez(job_dir / "out.npz", **out)
    (job_dir / "results.json").write_text(json.dumps(results))
    sock.close()


if __name__ == "__main__":
    try:
        main(int(sys.argv[1]), Path(sys.argv[2]))
    except Exception:
        traceback.print_exc()
        sys.exit(1)
