"""The user-facing driver: one artifact, one backend, images in, logits out.

    from pesto.driver import Accelerator
    with Accelerator("model.pesto", backend="sim") as acc:      # or "ref", or "pynq"
        logits = acc.execute(images)                            # uint8 or [0, 1] float images
        print(acc.throughput_test(images))
        print(acc.profile(images[:1]))                          # per-layer cycles, skip on/off

The whole graph (host float layers, quantize/dequantize, residual adds, shortcuts) runs in
``pesto.reference.network``; the backend runs only the accelerated layers through the
``conv`` hook it offers. Normalisation and fixed-point encoding/decoding happen here, never
in the user's code. numpy only: this module is what runs on the board.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import numerics
from ..errors import ConfigError, HardwareError
from ..ir import TernaryConv
from ..validate import check_float, check_int
from .backends import Backend, BusBackend, RefBackend
from .protocol import LayerStats

BACKENDS = ("ref", "sim", "pynq")
DEFAULT_CLOCK_MHZ = 100.0   # the PYNQ-Z1 fabric clock of the default build


@dataclass
class LayerRecord:
    """What the hardware reported for one accelerated layer over the images of the last call."""

    name: str
    calls: int = 0
    stats: list[LayerStats] = field(default_factory=list)

    @property
    def cycles(self) -> int:
        return sum(s.cycles for s in self.stats)

    @property
    def compute_cycles(self) -> int:
        return sum(s.compute_cycles for s in self.stats)


def open_backend(backend: str | Backend, *, sim=None, simulator: str = "verilator", overlay=None,
                 timeout_s: float = 10.0, **sim_options) -> Backend:
    """A Backend by name. ``simulator``: which simulated bus backs "sim" (``pesto.sim.SIM_BUSES``:
    "verilator", the fast C++ harness, by default; "cocotb-verilator" or "icarus" through
    cocotb), with ``sim_options`` for it; ``sim``: an open simulated bus to share instead (tests
    reuse one); ``overlay``: a pynq Overlay or the path of a .bit (with its .hwh beside it)."""
    if isinstance(backend, Backend):
        return backend
    if backend == "ref":
        return RefBackend()
    if backend == "sim":
        owns = sim is None  # a simulator passed in outlives this driver
        if owns:
            from ..sim import open_sim  # needs Verilator (and cocotb for the cocotb buses): dev machine only
            sim = open_sim(simulator, **sim_options).open()
        return BusBackend(sim, "sim", timeout_s=max(timeout_s, 60.0), owns_bus=owns)
    if backend == "pynq":
        if overlay is None:
            raise ConfigError("backend 'pynq' needs overlay=: a pynq.Overlay or the path of the pesto .bit")
        try:
            from . import pynq_backend
        except ImportError as e:
            raise HardwareError(f"backend 'pynq' needs the pynq package, which comes with the PYNQ board "
                                f"image ({e}); off the board use backend='sim'") from e
        return BusBackend(pynq_backend.open_bus(overlay), "pynq", timeout_s=timeout_s)
    raise ConfigError(f"unknown backend {backend!r}; use one of {BACKENDS}")


class Accelerator:
    """Run an exported network with its accelerated layers on ``backend``.

    artifact: an Artifact or the path of one; backend: "ref" | "sim" | "pynq" (or a Backend);
    skip: group skipping on (False runs the dense-ternary baseline on the same engine);
    clock_mhz: the fabric clock that turns cycle counts into time;
    subnet: the sub-net that runs, by index or name, of an artifact with several (docs/subnets.md).
    """

    def __init__(self, artifact, backend: str | Backend = "ref", *, skip: bool = True,
                 clock_mhz: float = DEFAULT_CLOCK_MHZ, subnet=0, **backend_options):
        from .. import artifact as artifact_mod
        if isinstance(artifact, (str, Path)):
            artifact = artifact_mod.load(artifact)
        if not isinstance(artifact, artifact_mod.Artifact):
            raise ConfigError(f"Accelerator needs a pesto.artifact.Artifact or the path of a .pesto file, got "
                              f"{type(artifact).__name__}; export one with `pesto export-to-fpga`")
        if not isinstance(skip, bool):
            raise ConfigError(f"skip must be True or False, got {skip!r}")
        clock_mhz = check_float(clock_mhz, "clock_mhz", 0.0, lo_open=True)
        self.source = artifact          # every sub-net
        self.select_subnet(subnet)
        self.backend = open_backend(backend, **backend_options)
        self.skip = skip
        self.clock_mhz = clock_mhz
        self.records: dict[str, LayerRecord] = {}

    # -- lifetime -------------------------------------------------------------------------
    def __enter__(self) -> "Accelerator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()

    def __repr__(self) -> str:
        return (f"Accelerator({len(self.layers)} accelerated layers on {self.backend.describe()}, "
                f"skip={'on' if self.skip else 'off'})")

    def select_subnet(self, key) -> int:
        """Run sub-net ``key`` (index or name) from the next call on; returns its index."""
        self.subnet = self.source.subnet_index(key)
        self.artifact = self.source.subnet(self.subnet)   # the plain artifact of that sub-net
        self.layers: dict[str, TernaryConv] = {layer.name: layer for layer in self.artifact.layers}
        return self.subnet

    @property
    def has_counters(self) -> bool:
        return self.backend.hw is not None

    # -- input encoding -------------------------------------------------------------------
    def normalise(self, images) -> np.ndarray:
        """uint8 images (0..255), other integers holding pixels 0..255, or floats in [0, 1]:
        (B, C, H, W), (C, H, W) or -- for single-channel models -- (B, H, W) -> the network's
        normalised float32 input. Anything else (NaN, inf, values out of range, the wrong shape,
        an empty batch) is a ConfigError that says what was expected."""
        from ..reference import network
        try:
            x = np.asarray(images)
        except (ValueError, TypeError):
            return network.normalize(self.artifact, images)   # says what was expected
        c, h, w = self.artifact.input_shape
        if c == 1 and x.ndim == 3 and x.shape[0] != 1:
            x = x[:, None]
        elif c == 1 and x.ndim == 2:
            x = x[None, None]
        return network.normalize(self.artifact, x)

    # -- running --------------------------------------------------------------------------
    def _conv(self, x: np.ndarray, layer: TernaryConv) -> np.ndarray:
        y, stats = self.backend.conv(x, layer, skip=self.skip)
        rec = self.records.setdefault(layer.name, LayerRecord(layer.name))
        rec.calls += 1
        if stats:
            rec.stats.extend(stats)
        return y

    def execute(self, images, trace: bool = False):
        """Logits (B, classes) float32 of ``images`` (see ``normalise``); with trace=True also
        {node name: output} of every node. Per-layer counters of this call land in ``records``."""
        from ..reference import network
        self.records = {}
        x = self.normalise(images)
        return network.run(self.artifact, x, conv=self._conv, trace=trace, normalized=True)

    def predict(self, images, batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """Logits (B, classes) float32 of ``images`` in batches (the API's predict(), as in hls4ml);
        ``execute`` is one batch, with trace and the per-layer counters."""
        x = np.asarray(images)
        if x.ndim < 4 and len(x) and x.shape[-3:] == tuple(self.artifact.input_shape):
            return self.execute(x)
        starts = range(0, len(x), batch_size)
        if progress:
            from tqdm import tqdm
            starts = tqdm(starts, desc=f"predict on {self.backend.name}", unit="batch")
        return np.concatenate([self.execute(x[i:i + batch_size]) for i in starts])

    def classify(self, images) -> np.ndarray:
        return np.argmax(self.execute(images), axis=1)

    def run_layer(self, name: str, x: np.ndarray, skip: bool | None = None) -> np.ndarray:
        """One accelerated layer by name. int16 x (C, H, W) or (B, C, H, W) in the layer's input
        format -> int16 outputs; a float x is quantized to the layer's f_in and the result comes
        back as float (dequantized from f_out)."""
        layer = self.layer(name)
        x = np.asarray(x)
        is_float = np.issubdtype(x.dtype, np.floating)
        if x.ndim not in (3, 4) or x.size == 0:
            raise ConfigError(f"layer {name!r}: input must be ({layer.in_channels}, H, W) or (batch, "
                              f"{layer.in_channels}, H, W), got shape {x.shape}")
        if is_float and not np.isfinite(x).all():
            raise ConfigError(f"layer {name!r}: the float input holds NaN or inf")
        q = numerics.quantize(x, layer.f_in) if is_float else x
        single = q.ndim == 3
        y, stats = self.backend.conv(q[None] if single else q, layer, skip=self.skip if skip is None else skip)
        self.records = {name: LayerRecord(name, 1, list(stats or []))}
        y = y[0] if single else y
        return numerics.dequantize(y, layer.f_out) if is_float else y

    def layer(self, name: str) -> TernaryConv:
        try:
            return self.layers[name]
        except KeyError:
            raise ConfigError(f"no accelerated layer {name!r}; the artifact has: {', '.join(self.layers)}") from None

    # -- measuring ------------------------------------------------------------------------
    def throughput_test(self, images, repeats: int = 1) -> dict:
        """Time ``execute`` on ``images``: wall-clock latency and images/s of this host and
        backend, the host-side share (normalisation, float layers, packing), and -- from the
        hardware counters -- the accelerator's own cycles and time per image at ``clock_mhz``."""
        repeats = check_int(repeats, "repeats", 1)
        x = np.asarray(images)
        batch = len(self.normalise(x))
        wall = accel = 0.0
        for _ in range(repeats):
            busy = _Stopwatch(self._conv)
            conv, self._conv = self._conv, busy
            try:
                t0 = time.perf_counter()
                self.execute(x)
                wall += time.perf_counter() - t0
            finally:
                self._conv = conv
            accel += busy.seconds
        n = batch * repeats
        result = {
            "backend": self.backend.name, "batch": batch, "repeats": repeats,
            "runtime_s": wall, "latency_ms_per_image": 1e3 * wall / n, "images_per_s": n / max(wall, 1e-9),
            "accel_calls_s": accel, "host_overhead_s": wall - accel,
            "host_overhead_ms_per_image": 1e3 * (wall - accel) / n,
        }
        if self.has_counters:
            result.update(self.hw_time(batch))
        return result

    def hw_time(self, images: int | None = None) -> dict:
        """The engine's own time for the last call, from its cycle counters: cycles, us and
        images/s per image at ``clock_mhz`` (accelerated layers, streams included)."""
        if not self.has_counters:
            raise ConfigError(f"backend {self.backend.name!r} has no cycle counters")
        images = images or max((len(r.stats) for r in self.records.values()), default=1)
        cycles = sum(r.cycles for r in self.records.values()) / images
        return {"clock_mhz": self.clock_mhz, "hw_cycles_per_image": cycles,
                "hw_us_per_image": cycles / self.clock_mhz,
                "hw_images_per_s": self.clock_mhz * 1e6 / cycles if cycles else float("inf")}

    def profile(self, images, with_logits: bool = False, progress: bool = False):
        """Per accelerated layer, on the network's real activations for ``images`` (keep it to one
        or two): cycles with group skipping and without (the dense-ternary baseline on the same
        engine), measured, ideal and efficiency, PE utilisation -- pesto.sim.measure.measure_tiled
        on every layer (a layer larger than the build as its tiles), each run checked bit for bit
        against the reference. Several images give
        the per-image mean. Hardware backends only.

        with_logits=True returns (rows, logits): the network's outputs, every accelerated layer
        of which the engine computed (and the reference confirmed) -- one pass for both.
        progress=True shows a tqdm bar over the layers."""
        if not self.has_counters:
            raise ConfigError(f"backend {self.backend.name!r} has no cycle counters; profile on 'sim' or 'pynq'")
        from ..reference import run_conv
        from ..sim.measure import measure_tiled
        rows = []
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(self.layers), desc=f"layers on {self.backend.name}, skip on/off", unit="layer")

        def measured(x, layer):
            per_image = [measure_tiled(self.backend.bus, layer, img, self.backend.hw, clock_mhz=self.clock_mhz,
                                       timeout_s=self.backend.timeout_s) for img in x]
            rows.append(_mean_row(per_image))
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{layer.name}: {rows[-1]['speedup']:.2f}x")
            return run_conv(x, layer)  # == what the engine produced: measure_layer checked it

        conv, self._conv = self._conv, measured
        try:
            logits = self.execute(images)
        finally:
            self._conv = conv
            if bar is not None:
                bar.close()
        for r in rows:
            r["us_skip"] = r["cycles_skip"] / self.clock_mhz
            r["us_dense"] = r["cycles_dense"] / self.clock_mhz
        return (rows, logits) if with_logits else rows


def _mean_row(rows: list[dict]) -> dict:
    """Numeric fields averaged over images, the rest from the first."""
    out = dict(rows[0])
    for k, v in out.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and len(rows) > 1:
            out[k] = sum(r[k] for r in rows) / len(rows)
    out["input_hw"] = out["input"][1:]
    out["images"] = len(rows)
    return out


class _Stopwatch:
    """Wraps the conv hook and adds up the wall time spent in it."""

    def __init__(self, fn):
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args):
        t0 = time.perf_counter()
        try:
            return self.fn(*args)
        finally:
            self.seconds += time.perf_counter() - t0
