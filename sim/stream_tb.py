"""Valid/ready drivers for the engine's internal streams (names without the AXI prefix):
a source that presents items with random idle cycles and a sink with random backpressure."""

from __future__ import annotations

import random

from cocotb.triggers import RisingEdge


class StreamSource:
    """Drives {signal: value} items onto a valid/ready port, one per accepted cycle."""

    def __init__(self, clk, valid, ready, signals: dict, idle: float = 0.0, seed: int = 1):
        self.clk, self.valid, self.ready, self.signals = clk, valid, ready, signals
        self.idle = idle
        self.rng = random.Random(seed)
        self.valid.value = 0

    async def send(self, items: list[dict]) -> None:
        for item in items:
            while self.rng.random() < self.idle:
                self.valid.value = 0
                await RisingEdge(self.clk)
            for name, value in item.items():
                self.signals[name].value = value
            self.valid.value = 1
            while True:
                await RisingEdge(self.clk)
                if int(self.ready.value):
                    break
        self.valid.value = 0


class StreamSink:
    """Collects {signal: value} of every accepted cycle, with random backpressure."""

    def __init__(self, clk, valid, ready, signals: dict, backpressure: float = 0.0, seed: int = 2):
        self.clk, self.valid, self.ready, self.signals = clk, valid, ready, signals
        self.backpressure = backpressure
        self.rng = random.Random(seed)
        self.items: list[dict] = []

    async def run(self) -> None:
        # values read right after the edge are the ones the edge sampled (cocotbext-axi does
        # the same): a beat moved if valid and the ready we drove were both high
        ready = 1
        while True:
            ready = int(self.rng.random() >= self.backpressure)
            self.ready.value = ready
            await RisingEdge(self.clk)
            if str(self.valid.value) == "1" and ready:
                self.items.append({k: int(s.value) for k, s in self.signals.items()})
