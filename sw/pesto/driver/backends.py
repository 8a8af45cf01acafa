"""Where an accelerated layer runs: the integer reference, or an accelerator behind a ``Bus``.

Every backend answers the same question -- int16 x (B, C, H, W) through one ``TernaryConv``
-> int16 (B, N, Ho, Wo) -- so the driver above them cannot tell them apart except by the
cycle counters the hardware ones return. The board (``pynq``) and the RTL simulation
(``sim``) differ only in their ``Bus``; both go through ``protocol.run_layer``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..errors import ConfigError, HardwareError
from ..hwspec import HwConfig
from ..ir import TernaryConv
from ..reference import run_conv
from . import protocol, tiling
from .protocol import Bus, LayerStats


class HostFallbackWarning(UserWarning):
    """A layer the build cannot run even split into tiles ran on the host (the integer reference)."""


class Backend:
    """One way of running accelerated layers. ``hw`` is None where there is no hardware."""

    name = "?"
    hw: HwConfig | None = None

    def conv(self, x: np.ndarray, layer: TernaryConv, skip: bool = True, reuse_weights: bool = True
             ) -> tuple[np.ndarray, list[LayerStats] | None]:
        """int16 x (B, C, H, W) -> int16 (B, N, Ho, Wo) and per-image counters (None: no hardware).

        reuse_weights=False streams the weights in for every image, not once per call."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return self.name


class RefBackend(Backend):
    """The bit-exact numpy reference (pesto.reference): the golden every other backend meets."""

    name = "ref"

    def conv(self, x, layer, skip=True, reuse_weights=True):
        return run_conv(_int16_batch(x, layer), layer), None

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
    the build parameter to raise. A bus that offers ``session()`` (pesto.sim.fast.FastSim) is
    held for the whole call, so threads sharing it never run between the runs of one batch.
    """

    def __init__(self, bus: Bus, name: str, timeout_s: float = 10.0, reuse_weights: bool = True,
                 owns_bus: bool = True):
        self.bus = bus
        self.owns_bus = owns_bus  # close() closes the bus too
        self.name = name
        self.timeout_s = timeout_s
        self.reuse_weights = reuse_weights
        self.hw = protocol.connect(bus)
        self.bus_seconds = 0.0            # wall time spent inside run_layer (register + DMA traffic)
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

    def describe(self) -> str:
        h = self.hw
        return (f"{self.name} (pesto_accel: {h.lanes} lanes, {h.num_pe} PEs, kernels up to "
                f"{h.max_k}x{h.max_k})")

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


def wait_until(predicate, timeout_s: float, what: str, poll_s: float = 0.0) -> None:
    """Poll ``predicate`` until it holds; a HardwareError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise HardwareError(f"timed out after {timeout_s:g} s waiting for {what}")
        if poll_s:
            time.sleep(poll_s)
