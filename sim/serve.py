"""The simulation server: one cocotb test that lends the running RTL to the host process.

``pesto.sim.server.SimAccelerator`` launches the simulator with this module and talks to it
over a local socket (path in PESTO_SIM_SOCKET; message format in pesto/sim/wire.py). Each
request is served by driving the DUT's real AXI ports with cocotbext-axi:

  read/write  one AXI4-Lite access (a cycle limit turns a hung slave into an error)
  transfer    the input stream on s_axis (TLAST on the last beat) while m_axis is collected
              up to TLAST; limited in simulated cycles and wall seconds; with "watch" (the
              pesto engine's STATUS.ERR_CODE) a run the engine ends with an error, which sends
              no output, is reported as soon as the register shows it
  noise       random idle cycles on s_axis and backpressure on m_axis
  reset       aresetn low for a few cycles, stream queues cleared
  cycles      the clock cycles simulated so far
  close       end the test (the simulator exits)

The simulation stands still while the server waits for the next request (a blocking socket
read), so idle host time costs no simulated cycles.
"""

from __future__ import annotations

import os
import random
import socket
import time
import warnings

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, with_timeout
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiStreamFrame

from pesto.sim import wire
from pesto_tb import axi_ports

# cocotbext-axi 0.1.28 still calls APIs cocotb 2.x deprecates; keep the server log readable.
warnings.filterwarnings("ignore", category=DeprecationWarning)

PERIOD_NS = 10            # 100 MHz, the PYNQ-Z1 fabric clock the benchmarks assume
RESET_CYCLES = 8
REG_TIMEOUT_CYCLES = 10_000
POLL_CYCLES = 256         # how often a transfer checks its cycle and wall-clock limits
WATCH_CYCLES = 4096       # how often it reads the watched status register (an AXI4-Lite read)


def _noise(probability: float, rng: random.Random):
    while True:
        yield rng.random() < probability


class Server:
    def __init__(self, dut, sock: socket.socket):
        self.dut = dut
        self.sock = sock
        self.clk = dut.aclk
        Clock(dut.aclk, PERIOD_NS, unit="ns").start()
        self.axil, self.source, self.sink = axi_ports(dut)
        for log in (self.axil.write_if.log, self.axil.read_if.log, self.source.log, self.sink.log):
            log.setLevel("WARNING")

    def cycles(self) -> int:
        return int(get_sim_time(unit="ns")) // PERIOD_NS

    async def reset(self) -> None:
        self.dut.aresetn.value = 0
        await ClockCycles(self.clk, RESET_CYCLES)
        self.source.clear()
        self.sink.clear()
        self.dut.aresetn.value = 1
        await ClockCycles(self.clk, 2)

    async def serve(self) -> None:
        await self.reset()
        wire.send(self.sock, {"ok": True, "op": "hello", "period_ns": PERIOD_NS,
                              "toplevel": os.environ.get("COCOTB_TOPLEVEL", "")})
        while True:
            try:
                header, payload = wire.recv(self.sock)
            except wire.WireClosed:
                return  # the host went away: end the test, the simulator exits
            op = header.get("op")
            if op == "close":
                wire.send(self.sock, {"ok": True, "cycles": self.cycles()})
                return
            handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
            if handler is None:
                wire.send(self.sock, {"ok": False, "error": "request", "message": f"unknown op {op!r}"})
                continue
            try:
                reply, data = await handler(header, payload)
            except Exception as e:  # report, keep serving: the host decides what to do
                reply, data = {"ok": False, "error": "exception", "message": f"{type(e).__name__}: {e}"}, b""
            reply.setdefault("ok", True)
            reply["cycles"] = self.cycles()
            wire.send(self.sock, reply, data)

    async def op_read(self, h, _):
        value = await with_timeout(self.axil.read_dword(int(h["offset"])), REG_TIMEOUT_CYCLES * PERIOD_NS, "ns")
        return {"value": int(value)}, b""

    async def op_write(self, h, _):
        await with_timeout(self.axil.write_dword(int(h["offset"]), int(h["value"]) & 0xFFFFFFFF),
                           REG_TIMEOUT_CYCLES * PERIOD_NS, "ns")
        return {}, b""

    async def op_cycles(self, h, _):
        return {}, b""

    async def op_reset(self, h, _):
        await self.reset()
        return {}, b""

    async def op_noise(self, h, _):
        rng = random.Random(h.get("seed", 0))
        idle, backpressure = float(h.get("idle", 0.0)), float(h.get("backpressure", 0.0))
        for end, p in ((self.source, idle), (self.sink, backpressure)):
            if p > 0:
                end.set_pause_generator(_noise(p, random.Random(rng.random())))
            else:
                end.clear_pause_generator()
                end.pause = False  # clearing the generator leaves the last pause state standing
        return {}, b""

    async def op_transfer(self, h, payload):
        n_out = int(h["n_out"])
        max_cycles = int(h["max_cycles"])
        deadline = time.monotonic() + float(h["timeout_s"])
        self.sink.clear()
        start = self.cycles()
        if payload:
            await self.source.send(AxiStreamFrame(payload))
        if n_out == 0:  # a run that answers with no stream (the identity probe): wait for the input to drain
            while not self.source.idle():
                if self.cycles() - start > max_cycles or time.monotonic() > deadline:
                    self.source.clear()
                    return {"ok": False, "error": "timeout", "input_consumed": False,
                            "message": "the input stream was not accepted"}, b""
                await ClockCycles(self.clk, POLL_CYCLES)
            return {"transfer_cycles": self.cycles() - start}, b""
        rx = cocotb.start_soon(self.sink.recv())
        watch, next_watch = h.get("watch"), start + WATCH_CYCLES
        while not rx.done():
            await First(rx.complete, ClockCycles(self.clk, POLL_CYCLES))
            if rx.done():
                break
            spent = self.cycles() - start
            if watch and self.cycles() >= next_watch:
                next_watch = self.cycles() + WATCH_CYCLES
                status = await with_timeout(self.axil.read_dword(int(watch["offset"])), REG_TIMEOUT_CYCLES * PERIOD_NS,
                                            "ns")
                code = int(status) & int(watch["mask"])
                if code and not rx.done():
                    rx.cancel()
                    consumed = self.source.idle()
                    self.source.clear()
                    self.sink.clear()
                    name = watch.get("codes", {}).get(str(code), code)
                    return {"ok": False, "error": "engine", "status": int(status),
                            "message": f"no complete output stream (TLAST): the engine reports "
                                       f"{watch.get('name', 'status')} {name} after {spent} cycles and sends no "
                                       f"output; the input stream was {'fully' if consumed else 'not fully'} "
                                       f"accepted"}, b""
            over = (f"{spent} cycles (limit {max_cycles})" if spent > max_cycles else
                    f"{h['timeout_s']} s of wall time ({spent} cycles)" if time.monotonic() > deadline else None)
            if over:
                rx.cancel()
                consumed = self.source.idle()
                self.source.clear()
                self.sink.clear()
                return {"ok": False, "error": "timeout", "input_consumed": consumed,
                        "message": f"no complete output stream (TLAST) after {over}; the input stream was "
                                   f"{'fully' if consumed else 'not fully'} accepted"}, b""
        data = bytes(rx.result().tdata)
        reply = {"transfer_cycles": self.cycles() - start}
        if not self.source.idle():
            self.source.clear()
            reply.update(ok=False, error="protocol",
                         message="the output stream ended (TLAST) before the input stream was accepted")
        elif len(data) != 8 * n_out:
            reply.update(ok=False, error="length",
                         message=f"the output stream ended (TLAST) after {len(data) / 8:g} words, expected {n_out}")
        return reply, data


@cocotb.test()
async def serve(dut):
    """Serve the host until it closes the connection."""
    path = os.environ["PESTO_SIM_SOCKET"]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    try:
        await Server(dut, sock).serve()
    finally:
        sock.close()
