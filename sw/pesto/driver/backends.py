"""Where an accelerated layer runs: the integer reference, or an accelerator behind a ``Bus``.

Every backend answers the same two questions -- in layer mode int16 x (B, C, H, W) through one
``TernaryConv`` -> int16 (B, N, Ho, Wo), in network mode int16 x through a whole compiled
network program (``pesto.hwspec.program``), one sub-net -> the chain's int16 output -- so the
driver above them cannot tell them apart except by the cycle counters the hardware ones
return. The board (``pynq``), the RTL simulation (``sim``) and the HLS C simulation (``hls``)
differ only in their ``Bus``; all go through ``protocol.run_layer`` / ``protocol.run_network``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, HardwareError
from ..hwspec import REGMAP, HwConfig
from ..ir import TernaryConv
from ..reference import run_conv
from . import protocol, tiling
from .protocol import Bus, LayerStats, NetworkStats


@dataclass(frozen=True)
class HeldProgram:
    """What an engine holds now (the PROGRAM and PROGRAM_SUM registers)."""

    valid: bool
    dense: bool
    subnets: int
    checksum: int

    @classmethod
    def read(cls, bus: Bus) -> "HeldProgram":
        r, v = REGMAP["PROGRAM"], bus.read(REGMAP.offset("PROGRAM"))
        return cls(bool(r.field(v, "VALID")), bool(r.field(v, "DENSE")), r.field(v, "SUBNETS"),
                   bus.read(REGMAP.offset("PROGRAM_SUM")))


# The build the reference backend compiles network programs for: the default v2 engine
# (docs/accelerator-v2.md), network mode and error packets (HWCFG0.CAPS bits 0 and 1).
REF_BUILD = HwConfig(caps=3)


class HostFallbackWarning(UserWarning):
    """A layer the build cannot run even split into tiles ran on the host (the integer reference)."""


class Backend:
    """One way of running accelerated layers. ``hw`` is None where there is no hardware."""

    name = "?"
    hw: HwConfig | None = None
    simulated = False     # its cycle counters time a simulation, not a board (throughput_test)

    def conv(self, x: np.ndarray, layer: TernaryConv, skip: bool = True, reuse_weights: bool = True
             ) -> tuple[np.ndarray, list[LayerStats] | None]:
        """int16 x (B, C, H, W) -> int16 (B, N, Ho, Wo) and per-image counters (None: no hardware).

        reuse_weights=False streams the weights in for every image, not once per call."""
        raise NotImplementedError

    def network_build(self) -> HwConfig | None:
        """The build a network program is compiled for, None if the engine has no network mode."""
        return None

    def held_program(self) -> HeldProgram | None:
        """What the engine holds now (PROGRAM, PROGRAM_SUM); None where nothing is held."""
        return None

    def prepare(self, program) -> None:
        """Get ``program`` onto the engine now (network mode), so that a refusal shows at once."""

    def network(self, x: np.ndarray, program, subnet: int = 0, skip: bool = True
                ) -> tuple[np.ndarray, NetworkStats | None]:
        """Network mode: int16 x (B, C, H, W), the chain's input, through ``program`` (every
        sub-net of the network, compiled for ``network_build()``) with sub-net ``subnet`` ->
        the chain's int16 output (B, N, H, W) and the run's counters (None: no hardware)."""
        raise ConfigError(f"backend {self.name!r} has no network mode (HWCFG0.CAPS bit 0 is clear): "
                          f"run the network layer by layer (Accelerator(..., mode='layer'))")

    def step_counters(self, program) -> list | None:
        """The per-step counters of the last network run (its last image: protocol.StepStats),
        None where the engine has no network mode or no counters."""
        return None

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return self.name


class RefBackend(Backend):
    """The bit-exact numpy reference (pesto.reference) in layer mode; in network mode the numpy
    interpreter of the packed network program (``Program.execute``: what the v2 engine computes,
    decoded from the very words it would be sent). The golden every other backend meets."""

    name = "ref"

    def conv(self, x, layer, skip=True, reuse_weights=True):
        return run_conv(_int16_batch(x, layer), layer), None

    def network_build(self) -> HwConfig:
        return REF_BUILD

    def network(self, x, program, subnet=0, skip=True):
        return program.execute(_network_input(x, program), subnet=subnet, skip=skip), None

    def describe(self) -> str:
        return "ref (numpy integer reference)"


class BusBackend(Backend):
    """An accelerator reached through a ``Bus``: the board and the simulation alike.

    Checks ID/VERSION on connect (``protocol.connect``), reads the build's HWCFG, splits a layer
    larger than the build into runs that fit (``tiling``: output-channel tiles, spatial tiles
    with halos; bit for bit the whole layer), and streams each set of weights once per batch:
    the following images and tiles of the same call reuse them (MODE.LOAD_WEIGHTS=0). Across
    calls the weights are always sent again, so nothing else that drives the same bus in
    between can leave stale weights behind. A layer that no tiling fits (one output channel or
    pixel larger than the build) runs on the host reference with a HostFallbackWarning naming
    the build parameter to raise. The bus is held for the
    whole call (``protocol.bus_lock``), so threads sharing it never run between the runs of
    one batch, nor between a network program's load and its run.
    """

    def __init__(self, bus: Bus, name: str, timeout_s: float = 10.0, reuse_weights: bool = True,
                 owns_bus: bool = True):
        self.bus = bus
        self.owns_bus = owns_bus  # close() closes the bus too
        self.name = name
        self.simulated = name != "pynq"
        self.timeout_s = timeout_s
        self.reuse_weights = reuse_weights
        self.hw = protocol.connect(bus)
        self.bus_seconds = 0.0            # wall time spent inside run_layer (register + DMA traffic)
        self._loaded = None               # the Program this backend loaded last (network mode)
        self.plans: dict[str, tiling.Plan] = {}   # layer name -> how it last ran (tiles or host)

    def plan(self, layer: TernaryConv, h: int, w: int) -> tiling.Plan:
        """How ``layer`` on an h x w input runs on this build (kept in ``plans``)."""
        p = self.plans.get(layer.name)
        if p is None or p.layer is not layer or (p.h, p.w) != (h, w):
            p = self.plans[layer.name] = tiling.plan(layer, h, w, self.hw)
            if p.on_host:
                warnings.warn(f"layer {layer.name!r} runs on the host, not on {self.name}: {p.host_reason}",
                              HostFallbackWarning, stacklevel=4)
        return p

    def conv(self, x, layer, skip=True, reuse_weights=True):
        x = _int16_batch(x, layer)
        p = self.plan(layer, x.shape[2], x.shape[3])
        if p.on_host:
            return run_conv(x, layer), None

        def run(sub, img, load):
            t0 = time.perf_counter()
            try:
                return protocol.run_layer(self.bus, sub, img, self.hw, skip=skip, load_weights=load,
                                          timeout_s=self.timeout_s)
            finally:
                self.bus_seconds += time.perf_counter() - t0

        # The runs after the first of a channel tile reuse the weights it loaded: the bus is held for
        # the whole batch (protocol.bus_lock: FastSim.session, a bus's lock), so nobody may run in between.
        with protocol.bus_lock(self.bus):
            y, per_image = tiling.run_tiled(p, x, run, reuse_weights and self.reuse_weights)
        return y, [LayerStats(sum(s.cycles for s in runs), sum(s.compute_cycles for s in runs),
                              sum(s.groups_issued for s in runs)) for runs in per_image]

    def network_build(self) -> HwConfig | None:
        return self.hw if self.hw.network else None

    def held_program(self) -> HeldProgram | None:
        return HeldProgram.read(self.bus) if self.hw.network else None

    def network(self, x, program, subnet=0, skip=True):
        if self.network_build() is None:
            return Backend.network(self, x, program, subnet, skip)
        x = _network_input(x, program)
        with protocol.bus_lock(self.bus):   # the program load and the run: nobody in between
            t0 = time.perf_counter()
            self._ensure_program(program)
            y, stats = protocol.run_network(self.bus, program, x, self.hw, subnet=subnet, skip=skip,
                                            timeout_s=self.timeout_s)
            self.bus_seconds += time.perf_counter() - t0
        return y, stats

    def prepare(self, program) -> None:
        with protocol.bus_lock(self.bus):
            self._ensure_program(program)

    def step_counters(self, program) -> list | None:
        return None if self.network_build() is None else protocol.read_steps(self.bus, program)

    def _ensure_program(self, program) -> None:
        """Load ``program`` unless the engine already holds it (PROGRAM.VALID and its checksum:
        a layer-mode run or another driver invalidates or replaces it, and then it is reloaded)."""
        held = HeldProgram.read(self.bus)
        if held.valid and held.checksum == program.checksum and held.subnets == program.num_subnets \
                and (held.dense or not program.dense):
            self._loaded = program
            return
        try:
            protocol.load_network(self.bus, program, self.hw, timeout_s=self.timeout_s)
        except HardwareError as e:
            err = REGMAP["STATUS"].field(self.bus.read(REGMAP.offset("STATUS")), "ERR_CODE")
            if err != REGMAP.error_codes["BAD_PROGRAM"] or not held.valid:
                raise
            fewer = (f"it was built for {held.subnets} sub-net(s), the artifact holds {program.num_subnets}; "
                     if held.subnets < program.num_subnets else "")
            raise HardwareError(
                f"the engine refused this network program (BAD_PROGRAM) and keeps its own ({held.subnets} "
                f"sub-net(s), checksum 0x{held.checksum:08X}): {fewer}an overlay built for one network (the HLS "
                f"engine) runs only that network. Rebuild it for this artifact (`bitstreams/build.sh hls "
                f"ARTIFACT`, `pesto hls ARTIFACT --network`) or run the artifact it was built for") from e
        self._loaded = program

    def describe(self) -> str:
        h = self.hw
        mode = ", network mode" if h.network else ""
        top = getattr(self.bus, "toplevel", None) or "pesto_accel"   # a simulation names its RTL top
        return (f"{self.name} ({top}: {h.lanes} lanes, {h.num_pe} PEs, kernels up to "
                f"{h.max_k}x{h.max_k}{mode})")

    def close(self) -> None:
        close = getattr(self.bus, "close", None)
        if self.owns_bus and close is not None:
            close()


def _int16_batch(x: np.ndarray, layer: TernaryConv) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.dtype != np.int16:
        raise ConfigError(f"layer {layer.name!r}: the accelerator takes int16 fixed point, got {x.dtype}; "
                          f"use Accelerator.run_layer with float input to have it quantized")
    if x.ndim != 4 or x.shape[1] != layer.in_channels:
        raise ConfigError(f"layer {layer.name!r}: input must be (batch, {layer.in_channels}, H, W), "
                          f"got {x.shape}")
    return x


def _network_input(x: np.ndarray, program) -> np.ndarray:
    x = np.asarray(x)
    x = x[None] if x.ndim == 3 else x
    t = program.input
    if x.dtype != np.int16 or x.ndim != 4 or x.shape[1:] != (t.channels, t.h, t.w):
        raise ConfigError(f"network input must be int16 (batch, {t.channels}, {t.h}, {t.w}), got {x.dtype} {x.shape}")
    return x


def wait_until(predicate, timeout_s: float, what: str, poll_s: float = 0.0) -> None:
    """Poll ``predicate`` until it holds; a HardwareError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise HardwareError(f"timed out after {timeout_s:g} s waiting for {what}")
        if poll_s:
            time.sleep(poll_s)
