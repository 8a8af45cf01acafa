"""Shared cocotb testbench pieces for pesto_accel: the TB class (clock, reset, AXI4-Lite
master, AXI4-Stream source/sink with idle and backpressure generators) and random layers.

The stimulus is the project's own contract code: pesto.hwspec packs the streams and the
registers, pesto.reference.run_conv gives the bit-exact expected outputs.
"""

from __future__ import annotations

import logging
import math
import random
import warnings

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink,
                           AxiStreamSource)

from pesto.driver.protocol import LayerStats
from pesto.hwspec import REGMAP, HwConfig, input_stream, layer_registers, unpack_outputs
from pesto.ir import TernaryConv
from pesto.numerics import SHIFT_MAX
from pesto.reference.layer import conv_accumulate

warnings.filterwarnings("ignore", category=DeprecationWarning)

PERIOD_NS = 10


def noise(probability: float, rng: random.Random):
    """A pause/backpressure generator: True (pause) with the given probability each cycle."""
    while True:
        yield rng.random() < probability


def random_layer(rng: np.random.Generator, n: int, c: int, k: int = 3, stride: int = 1, pad: int = 1,
                 cg: int = 16, nz_groups: int | None = None, density: float = 0.5,
                 relu: bool = False, name: str = "layer") -> TernaryConv:
    """A random ternary layer with exactly ``nz_groups`` non-zero (artifact) groups, or each group
    non-zero with probability ``density``; output stages that keep most outputs unsaturated."""
    g = math.ceil(c / cg)
    mask = np.zeros(n * g, dtype=bool)
    if nz_groups is None:
        mask = rng.random(n * g) < density
    else:
        mask[rng.choice(n * g, size=nz_groups, replace=False)] = True
    mask = mask.reshape(n, g)
    codes = np.zeros((n, g * cg, k, k), dtype=np.int8)
    for ni in range(n):
        for gi in range(g):
            if mask[ni, gi]:
                block = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(cg, k, k), p=[0.3, 0.4, 0.3])
                block.reshape(-1)[rng.integers(block.size)] = rng.choice([-1, 1])
                codes[ni, gi * cg:(gi + 1) * cg] = block
    codes = codes[:, :c]
    # a group whose only non-zero fell into the padded channels is zero now: fine either way
    mult = rng.integers(1 << 13, 1 << 15, size=n) * rng.choice([-1, 1], size=n)
    shift = rng.integers(12, 20, size=n)
    bias = rng.integers(-(1 << 30), 1 << 30, size=n)
    return TernaryConv(name, codes, mult, shift, bias, stride=stride, padding=pad, cg=cg, relu=relu)


def fit_output_stage(layer: TernaryConv, x: np.ndarray, rng: np.random.Generator) -> TernaryConv:
    """Choose shift (and bias) per channel so the outputs of ``x`` span int16 with a little
    saturation: every output-stage path (rounding, both saturations, ReLU) gets exercised."""
    acc = conv_accumulate(x[None], layer)[0].astype(np.int64)
    for n in range(layer.out_channels):
        peak = int(np.abs(acc[n] * layer.mult[n]).max()) + 1
        shift = int(np.clip(peak.bit_length() - 15, 0, SHIFT_MAX))
        layer.shift[n] = shift
        layer.bias[n] = int(rng.integers(-(1 << 12), 1 << 12)) << shift if shift < 34 else 0
    return layer


def random_input(rng: np.random.Generator, c: int, h: int, w: int, bits: int = 12) -> np.ndarray:
    return rng.integers(-(1 << bits), 1 << bits, size=(c, h, w)).astype(np.int16)


def axi_ports(dut):
    """cocotbext-axi endpoints on pesto_accel's ports: (AXI4-Lite master, s_axis source, m_axis sink)."""
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.aclk, dut.aresetn, reset_active_level=False)
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn,
                             reset_active_level=False)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn, reset_active_level=False)
    return axil, source, sink


class TB:
    def __init__(self, dut, seed: int = 1):
        self.dut = dut
        self.rng = random.Random(seed)
        cocotb.start_soon(Clock(dut.aclk, PERIOD_NS, unit="ns").start())
        for port in ("s_axil", "s_axis", "m_axis"):  # one line per transfer is too chatty
            logging.getLogger(f"cocotb.{dut._name}.{port}").setLevel(logging.WARNING)
        self.axil, self.source, self.sink = axi_ports(dut)
        self.hw: HwConfig | None = None

    def set_noise(self, idle: float = 0.0, backpressure: float = 0.0) -> None:
        """Random idle cycles on the input stream and backpressure on the output stream."""
        if idle:
            self.source.set_pause_generator(noise(idle, self.rng))
        else:
            self.source.clear_pause_generator()
        if backpressure:
            self.sink.set_pause_generator(noise(backpressure, self.rng))
        else:
            self.sink.clear_pause_generator()

    async def reset(self, cycles: int = 4) -> None:
        self.dut.aresetn.value = 0
        await ClockCycles(self.dut.aclk, cycles)
        self.dut.aresetn.value = 1
        await ClockCycles(self.dut.aclk, 2)

    async def read(self, name: str) -> int:
        return await self.axil.read_dword(REGMAP.offset(name))

    async def write(self, name: str, value: int) -> None:
        await self.axil.write_dword(REGMAP.offset(name), value)

    async def hwcfg(self) -> HwConfig:
        self.hw = HwConfig.from_registers(await self.read("HWCFG0"), await self.read("HWCFG1"),
                                          await self.read("HWCFG2"), await self.read("HWCFG3"))
        return self.hw

    async def configure(self, layer: TernaryConv, h: int, w: int, skip: bool = True,
                        load_weights: bool = True, **override: int) -> dict:
        regs = layer_registers(layer, h, w, self.hw.lanes, skip=skip, load_weights=load_weights)
        regs.update(override)
        for name, value in regs.items():
            await self.write(name, value)
        return regs

    async def start(self) -> None:
        await self.read("CTRL")  # clear a stale AP_DONE
        await self.write("CTRL", 1)

    async def send(self, words: np.ndarray) -> None:
        await self.source.send(AxiStreamFrame(np.asarray(words, dtype="<u8").tobytes()))

    async def recv_words(self, timeout_cycles: int = 2_000_000) -> np.ndarray:
        """The next output packet; fails instead of hanging when none comes."""
        frame = await with_timeout(self.sink.recv(), timeout_cycles * PERIOD_NS, "ns")
        return np.frombuffer(bytes(frame.tdata), dtype="<u8")

    async def wait_done(self, limit: int = 2_000_000) -> int:
        """Poll CTRL until AP_DONE; returns CTRL."""
        for _ in range(limit // 16):
            ctrl = await self.read("CTRL")
            if ctrl & 2:
                return ctrl
            await ClockCycles(self.dut.aclk, 8)
        raise AssertionError("AP_DONE never rose")

    async def stats(self) -> LayerStats:
        return LayerStats(await self.read("CYCLES"), await self.read("COMPUTE_CYCLES"),
                          await self.read("GROUPS_ISSUED"))

    async def error(self) -> str:
        status = await self.read("STATUS")
        return REGMAP.error_names[REGMAP["STATUS"].field(status, "ERR_CODE")]

    async def run_layer(self, layer: TernaryConv, x: np.ndarray, skip: bool = True,
                        load_weights: bool = True) -> tuple[np.ndarray, LayerStats]:
        """The driver's sequence (pesto.driver.protocol.run_layer) on the DUT's ports."""
        if self.hw is None:
            await self.hwcfg()
        _, h, w = x.shape
        regs = await self.configure(layer, h, w, skip, load_weights)
        await self.start()
        await self.send(input_stream(layer, x, self.hw.lanes, load_weights))
        words = await self.recv_words()
        await self.wait_done()
        err = await self.error()
        assert err == "NONE", f"accelerator error {err}"
        y = unpack_outputs(words, layer.out_channels, regs["OUT_H"], regs["OUT_W"])
        return y, await self.stats()

    # -- network mode (accelerator v2) ------------------------------------------------------
    async def load_program(self, prog, expect: str = "NONE") -> None:
        """The driver's load_network on the DUT's ports: MODE.LOAD_PROGRAM, the program stream."""
        await self.write("MODE", REGMAP["MODE"].encode(LOAD_PROGRAM=1))
        await self.start()
        await self.send(prog.words() if hasattr(prog, "words") else prog)
        await self.wait_done()
        err = await self.error()
        assert err == expect, f"program load: {err}, expected {expect}"

    async def run_network(self, prog, x: np.ndarray, subnet: int | None = None, skip: bool = True,
                          expect: str = "NONE", words: np.ndarray | None = None):
        """The driver's run_network on the DUT's ports; returns (int16 outputs, LayerStats)."""
        x = np.asarray(x)
        batch = 1 if x.ndim == 3 else x.shape[0]
        if subnet is not None:
            await self.write("SUBNET", subnet)
        await self.write("NUM_IMAGES", batch)
        await self.write("MODE", REGMAP["MODE"].encode(NETWORK=1, SKIP_EN=int(skip)))
        await self.start()
        await self.send(prog.input_words(x) if words is None else words)
        out = await self.recv_words()
        await self.wait_done()
        err = await self.error()
        assert err == expect, f"network run: {err}, expected {expect}"
        if expect != "NONE":
            assert len(out) == 1 and out[0] == 0, f"a failed run ends with one zero word, got {len(out)} words"
            return None, await self.stats()
        y = prog.unpack_output(out, batch)
        return (y if x.ndim == 4 else y[0]), await self.stats()

    async def step_counters(self, steps: int) -> list[tuple[int, int]]:
        rows = []
        for i in range(steps):
            await self.write("STEP_SEL", i)
            rows.append((await self.read("STEP_CYCLES"), await self.read("STEP_ISSUE")))
        return rows

    async def idle_cycles(self, n: int) -> None:
        for _ in range(n):
            await RisingEdge(self.dut.aclk)
