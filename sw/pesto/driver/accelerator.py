"""The user-facing driver: one artifact, one backend, images in, logits out.

    from pesto.driver import Accelerator
    with Accelerator("model.pesto", backend="sim") as acc:      # or "ref", or "pynq"
        logits = acc.execute(images)                            # uint8 or [0, 1] float images
        print(acc.subnets())                                    # sparsity, expected us, accuracy
        acc.select_subnet(acc.pick_subnet(budget_us=300))       # the best one within 300 us
        print(acc.throughput_test(images))
        print(acc.profile(images[:1]))                          # per-layer cycles, skip on/off

Two ways to run (``mode``): **network mode** when the engine has it and the network fits the
build (the accelerated chain, every sub-net of it, is compiled once into a network program,
``pesto.hwspec.program``, loaded once, and each batch is one input and one output stream; a
sub-net switch is one register write), **layer mode** otherwise (one run per accelerated layer,
the glue on the host). The host float layers run in ``pesto.reference.network`` either way; the
backend runs the chain (``network``) or each accelerated layer (``conv``). Normalisation and
fixed-point encoding/decoding happen here, never in the user's code. numpy only: this module is
what runs on the board.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import numerics
from ..errors import ConfigError, HardwareError, UnsupportedLayerError
from ..hwspec import HwConfig
from ..ir import TernaryConv
from . import subnets as subnet_info
from ..validate import check_float, check_int
from .backends import Backend, BusBackend, RefBackend
from .protocol import LayerStats

BACKENDS = ("ref", "sim", "hls", "pynq")
MODES = ("auto", "network", "layer")
DEFAULT_CLOCK_MHZ = 100.0   # the PYNQ-Z1 fabric clock of the default build
NETWORK_RECORD = "network"  # the key of ``records`` in network mode: one entry per run


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
                 timeout_s: float = 10.0, artifact=None, hls_project=None, **sim_options) -> Backend:
    """A Backend by name. ``simulator``: which simulated bus backs "sim" (``pesto.sim.SIM_BUSES``:
    "verilator", the fast C++ harness, by default; "cocotb-verilator" or "icarus" through
    cocotb), with ``sim_options`` for it; ``sim``: an open simulated bus to share instead (tests
    reuse one); ``overlay``: a pynq Overlay or the path of a .bit (with its .hwh beside it);
    "hls": the per-model HLS engine of ``artifact`` in g++ C simulation (``pesto.hls.network``),
    or the one rendered in ``hls_project``."""
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
    if backend == "hls":
        if artifact is None and hls_project is None:
            raise ConfigError("backend 'hls' renders the HLS engine of an artifact: pass artifact= (Accelerator does)")
        from ..hls.network import open_csim   # needs g++ and hls4ml's ap_types headers: dev machine only
        return BusBackend(open_csim(artifact, hls_project), "hls", timeout_s=max(timeout_s, 600.0))
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
    subnet: the sub-net that runs, by index or name, of an artifact with several (docs/subnets.md);
    mode: "auto" (network mode when the backend has it and the network fits its build, else layer
    mode; ``mode_reason`` says why), "network" (refuse what does not fit) or "layer".
    """

    def __init__(self, artifact, backend: str | Backend = "ref", *, skip: bool = True,
                 clock_mhz: float = DEFAULT_CLOCK_MHZ, subnet=0, mode: str = "auto", **backend_options):
        from .. import artifact as artifact_mod
        if isinstance(artifact, (str, Path)):
            artifact = artifact_mod.load(artifact)
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}; use one of {MODES}")
        if not isinstance(artifact, artifact_mod.Artifact):
            raise ConfigError(f"Accelerator needs a pesto.artifact.Artifact or the path of a .pesto file, got "
                              f"{type(artifact).__name__}; export one with `pesto export-to-fpga`")
        if not isinstance(skip, bool):
            raise ConfigError(f"skip must be True or False, got {skip!r}")
        clock_mhz = check_float(clock_mhz, "clock_mhz", 0.0, lo_open=True)
        self.source = artifact          # every sub-net
        self.select_subnet(subnet)
        self.backend = open_backend(backend, artifact=artifact, **backend_options)
        self.skip = skip
        self.clock_mhz = clock_mhz
        self.records: dict[str, LayerRecord] = {}
        self._accel_s = 0.0             # wall time inside the backend's calls (throughput_test)
        self._rows: dict[bool, list[dict]] = {}
        try:
            self._choose_mode(mode)
        except BaseException:
            self.close()
            raise

    # -- lifetime -------------------------------------------------------------------------
    def __enter__(self) -> "Accelerator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()

    def __repr__(self) -> str:
        k = self.source.num_subnets
        subs = f", sub-net {self.subnet} {self.source.subnet_names[self.subnet]!r} of {k}" if k > 1 else ""
        return (f"Accelerator({len(self.layers)} accelerated layers on {self.backend.describe()}, "
                f"{self.mode} mode, skip={'on' if self.skip else 'off'}{subs})")

    # -- network or layer mode --------------------------------------------------------------
    def _choose_mode(self, mode: str) -> None:
        """Network mode when the engine has it and the whole network, every sub-net, fits its
        build; else layer mode (``mode_reason``). A build with room for fewer sub-nets than the
        artifact holds is refused either way: layer mode would hide that no switch is possible."""
        self.program, self.mode, self.mode_reason = None, "layer", ""
        if mode == "layer":
            self.mode_reason = "mode='layer' was asked for"
            return
        build = self.backend.network_build()
        if build is None:
            why = (f"backend {self.backend.name!r} has no network mode (HWCFG0.CAPS bit 0 clear: a v1 "
                   f"bitstream or the layer-mode HLS engine)")
            if mode == "network":
                raise UnsupportedLayerError(f"{why}: load a v2 overlay (bitstreams/build.sh) or use mode='layer'")
            self.mode_reason = why
            return
        k = self.source.num_subnets
        if k > build.max_subnets:
            raise UnsupportedLayerError(
                f"the accelerator build holds at most {build.max_subnets} sub-nets, the artifact {k}: rebuild "
                f"the bitstream with room for {k} (MAX_SUBNETS), or export the artifact with at most "
                f"{build.max_subnets} sub-nets")
        from ..hwspec.program import compile_network
        held = self.backend.held_program()
        # with the dense schedules when skipping is off, or when the engine holds a program with
        # them (an HLS engine built for this network: its program is fixed, so match it)
        dense = not self.skip or bool(held is not None and held.valid and held.dense)
        try:
            program = compile_network(self.source, build, dense=dense)
        except UnsupportedLayerError as e:
            if mode == "network":
                raise
            self.mode_reason = f"the network does not run in network mode: {e}"
            return
        try:
            program.check_fits(build)
        except UnsupportedLayerError as e:
            if mode == "network":
                raise
            if k > 1 and self._one_subnet_fits(build):
                raise UnsupportedLayerError(
                    f"the accelerator build has room for this network but not for its {k} sub-nets ({e}): rebuild "
                    f"the bitstream for this artifact (`bitstreams/build.sh hls ARTIFACT`, or the RTL with larger "
                    f"memories), export fewer sub-nets, or run it layer by layer (mode='layer')") from e
            self.mode_reason = f"the network does not run in network mode on this build: {e}"
            return
        self.backend.prepare(program)   # loaded once, here: a refused program shows at once
        self.program, self.mode = program, "network"

    def _one_subnet_fits(self, build: HwConfig) -> bool:
        from ..hwspec.program import compile_network
        try:
            compile_network(self.source.subnet(0), build).check_fits(build)
        except UnsupportedLayerError:
            return False
        return True

    def _network_program(self):
        """The loaded program; with skipping off, one that also holds the dense schedules."""
        if not self.skip and not self.program.dense:
            from ..hwspec.program import compile_network
            build = self.backend.network_build()
            program = compile_network(self.source, build, dense=True)
            program.check_fits(build)   # UnsupportedLayerError names the memory
            self.backend.prepare(program)
            self.program = program
        return self.program

    # -- sub-nets (docs/dynamic.md) ---------------------------------------------------------
    def select_subnet(self, key) -> int:
        """Run sub-net ``key`` (index or name) from the next call on; returns its index. In
        network mode nothing is reloaded: the next run writes the SUBNET register."""
        names = self.source.subnet_names
        if self.source.num_subnets == 1 and key not in (0, names[0]):
            raise ConfigError(f"select_subnet({key!r}): this artifact holds one network and no sub-nets; "
                              f"export a multi-sub-net artifact (`pesto train --mode ast`, then `pesto "
                              f"export-to-fpga`; or pesto.artifact.merge_subnets) to switch at run time")
        self.subnet = self.source.subnet_index(key)
        self.artifact = self.source.subnet(self.subnet)   # the plain artifact of that sub-net
        self.layers: dict[str, TernaryConv] = {layer.name: layer for layer in self.artifact.layers}
        return self.subnet

    def subnets(self) -> list[dict]:
        """Per sub-net: index, name, groups and issued groups, group sparsity, ideal speedup
        G/G_k, target sparsity, accuracy measured at training/export time (``accuracy_percent``,
        None if the artifact has none), and expected ``cycles`` / ``us`` / ``images_per_s`` per
        image on this build at ``clock_mhz`` (the cycle model: docs/accelerator-v2.md in network
        mode, a v1 estimate in layer mode; host float layers not included); ``selected``."""
        if self.skip not in self._rows:
            program = self._network_program() if self.mode == "network" else None
            self._rows[self.skip] = subnet_info.subnet_rows(self.source, self.clock_mhz, program,
                                                            self.backend.hw or HwConfig(), self.skip)
        return [{**r, "selected": r["index"] == self.subnet} for r in self._rows[self.skip]]

    def pick_subnet(self, budget_us: float) -> int:
        """The index of the most accurate sub-net whose expected latency per image (``subnets()``)
        is at most ``budget_us`` microseconds; select it with ``select_subnet``. ConfigError when
        none is fast enough."""
        return subnet_info.choose(self.subnets(), budget_us, self.clock_mhz)["index"]

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
        t0 = time.perf_counter()
        y, stats = self.backend.conv(x, layer, skip=self.skip)
        self._accel_s += time.perf_counter() - t0
        rec = self.records.setdefault(layer.name, LayerRecord(layer.name))
        rec.calls += 1
        if stats:
            rec.stats.extend(stats)
        return y

    def _chain(self, subnet: int):
        """The accelerated chain of sub-net ``subnet`` as one network-mode call."""
        from ..hwspec.program import accelerated_chain
        from ..reference.network import Chain
        _, q, dq = accelerated_chain(self.source)

        def run(x: np.ndarray) -> np.ndarray:
            t0 = time.perf_counter()
            y, stats = self.backend.network(x, self._network_program(), subnet, skip=self.skip)
            self._accel_s += time.perf_counter() - t0
            rec = self.records.setdefault(NETWORK_RECORD, LayerRecord(NETWORK_RECORD))
            rec.calls += 1
            if stats:
                rec.stats.append(stats)
            return y
        return Chain(q.name, dq.inputs[0], run)

    def execute(self, images, trace: bool = False, subnet=None):
        """Logits (B, classes) float32 of ``images`` (see ``normalise``); with trace=True also
        {node name: output} of every node (in network mode the chain's inner nodes are on chip
        and not traced). ``subnet``: the sub-net of this call (index or name; default the
        selected one), or one per image -- consecutive images of the same sub-net run as one
        batch, and the switch between them is one register write in network mode. The counters
        of this call land in ``records`` (per layer, or one "network" record of every run)."""
        from ..reference import network
        self.records = {}
        x = self.normalise(images)
        plan = self._plan(subnet, len(x))
        if trace and len(plan) > 1:
            raise ConfigError("trace=True runs one sub-net per call; trace each sub-net's images separately")
        outs = []
        for start, stop, k in plan:
            view = self.source.subnet(k)
            hooks = {"chain": self._chain(k)} if self.mode == "network" else {"conv": self._conv_of(k)}
            outs.append(network.run(view, x[start:stop], trace=trace, normalized=True, **hooks))
        if trace:
            return outs[0]
        return np.concatenate(outs) if len(outs) > 1 else outs[0]

    def _conv_of(self, k: int):
        """The layer-mode conv hook for sub-net k (its own layers, whatever is selected)."""
        if k == self.subnet:
            return self._conv
        layers = {layer.name: layer for layer in self.source.subnet(k).layers}
        return lambda x, layer: self._conv(x, layers[layer.name])

    def _plan(self, subnet, batch: int) -> list[tuple[int, int, int]]:
        """(start, stop, sub-net index) runs of consecutive images that share a sub-net."""
        if subnet is None:
            keys = [self.subnet] * batch
        elif isinstance(subnet, (list, tuple, np.ndarray)):
            if len(subnet) != batch:
                raise ConfigError(f"subnet= lists {len(subnet)} sub-nets for {batch} images; give one per image")
            keys = [self.source.subnet_index(s) for s in subnet]
        else:
            keys = [self.source.subnet_index(subnet)] * batch
        plan, start = [], 0
        for i in range(1, batch + 1):
            if i == batch or keys[i] != keys[start]:
                plan.append((start, i, keys[start]))
                start = i
        return plan

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
    def step_counters(self) -> list:
        """Network mode on an engine with counters: each step's cycles (and a conv step's issue
        cycles) for the last image of the last run, as the engine counted them
        (``protocol.StepStats``, in program order)."""
        rows = self.backend.step_counters(self.program) if self.mode == "network" and self.has_counters else None
        if rows is None:
            raise ConfigError(f"per-step counters come from network mode on an engine with counters; this is "
                              f"{self.mode} mode on {self.backend.name!r}: use backend='sim', 'hls' or 'pynq' with "
                              f"mode='network', or the per-layer records (Accelerator.records) in layer mode")
        return rows

    def throughput_test(self, images, repeats: int = 1) -> dict:
        """Time ``execute`` on ``images``. ``images_per_s`` is the figure to quote: on the
        simulators (``sim``, ``hls``) from the engine's cycle counters at ``clock_mhz`` (their wall
        time measures the simulation), on the board and the reference from wall time
        (``images_per_s_from`` says which). Also: the wall clock of this host and backend
        (``runtime_s``, ``latency_ms_per_image``, ``wall_images_per_s``), the time inside the
        backend's calls (``accel_calls_s``) and, timed separately, the host's share -- float
        layers, normalisation, quantization (``host_overhead_s``, ``host_overhead_ms_per_image``)
        -- and with counters the engine's ``hw_cycles_per_image``, ``hw_us_per_image``,
        ``hw_images_per_s``."""
        repeats = check_int(repeats, "repeats", 1)
        x = np.asarray(images)
        batch = len(self.normalise(x))
        wall = accel = 0.0
        cycles = 0
        for _ in range(repeats):
            self._accel_s = 0.0
            t0 = time.perf_counter()
            self.execute(x)
            wall += time.perf_counter() - t0
            accel += self._accel_s
            cycles += sum(r.cycles for r in self.records.values())
        n = batch * repeats
        result = {
            "backend": self.backend.name, "mode": self.mode, "subnet": self.subnet, "batch": batch,
            "repeats": repeats, "runtime_s": wall, "latency_ms_per_image": 1e3 * wall / n,
            "wall_images_per_s": n / max(wall, 1e-9), "images_per_s": n / max(wall, 1e-9), "images_per_s_from": "wall time",
            "accel_calls_s": accel, "host_overhead_s": wall - accel,
            "host_overhead_ms_per_image": 1e3 * (wall - accel) / n,
        }
        if self.has_counters:
            per_image = cycles / n
            result.update({"clock_mhz": self.clock_mhz, "hw_cycles_per_image": per_image,
                           "hw_us_per_image": per_image / self.clock_mhz,
                           "hw_images_per_s": self.clock_mhz * 1e6 / per_image if per_image else float("inf")})
            if self.backend.simulated:
                result["images_per_s"] = result["hw_images_per_s"]
                result["images_per_s_from"] = f"engine cycles at {self.clock_mhz:g} MHz"
        return result

    def hw_time(self, images: int | None = None) -> dict:
        """The engine's own time for the last call, from its cycle counters: cycles, us and
        images/s per image at ``clock_mhz`` (accelerated layers, streams included)."""
        if not self.has_counters:
            raise ConfigError(f"backend {self.backend.name!r} has no cycle counters")
        net = self.records.get(NETWORK_RECORD)
        if images is None and net is not None:
            images = sum(s.images for s in net.stats)
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
        mode, self.mode = self.mode, "layer"   # the profile measures every layer on its own
        try:
            logits = self.execute(images)
        finally:
            self._conv, self.mode = conv, mode
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


