"""Where an accelerated layer runs: the integer reference, or an accelerator behind a ``Bus``.

Every backend answers the same question -- int16 x (B, C, H, W) through one ``TernaryConv``
-> int16 (B, N, Ho, Wo) -- so the driver above them cannot tell them apart except by the
cycle counters the hardware ones return. The board (``pynq``) and the RTL simulation
(``sim``) differ only in their ``Bus``; both go through ``protocol.run_layer``.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import ConfigError, HardwareError
from ..hwspec import HwConfig
from ..ir import TernaryConv
from ..reference import run_conv
from . import protocol
from .protocol import Bus, LayerStats


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

    Checks ID/VERSION on connect (``protocol.connect``), reads the build's HWCFG,
    refuses layers that do not fit it before touching the hardware, and streams a layer's
    weights once per batch: the following images of the same call reuse them
    (MODE.LOAD_WEIGHTS=0). Across calls the weights are always sent again, so nothing else
    that drives the same bus in between can leave stale weights behind. A bus that offers
    ``session()`` (pesto.sim.fast.FastSim) is held for the whole call, so threads sharing it
    never run between the images of one batch.
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

    def conv(self, x, layer, skip=True, reuse_weights=True):
        x = _int16_batch(x, layer)
        protocol.check_fits(layer, x.shape[2], x.shape[3], self.hw)
        outs, stats = [], []
        # The images after the first reuse the weights the first one loaded: the bus is held for the
        # whole batch (protocol.bus_lock: FastSim.session, a bus's lock), so nobody may run in between.
        with protocol.bus_lock(self.bus):
            for i, img in enumerate(x):
                load = i == 0 or not (reuse_weights and self.reuse_weights)
                t0 = time.perf_counter()
                y, s = protocol.run_layer(self.bus, layer, img, self.hw, skip=skip, load_weights=load,
                                          timeout_s=self.timeout_s)
                self.bus_seconds += time.perf_counter() - t0
                outs.append(y)
                stats.append(s)
        return np.stack(outs), stats

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
