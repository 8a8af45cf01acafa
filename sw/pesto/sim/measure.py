"""Measurements on the accelerator: the layers of table 7, layers of any group sparsity, and one
function that runs a layer with group skipping on and off and reports the cycles.

Works on any ``pesto.driver.protocol.Bus`` (the RTL simulation here, the board with the
pynq backend), so the benchmark (benchmarks/rtl/speedup.py), the system tests and
``pesto bench`` measure the same way:

    from pesto.sim.measure import table7_case, measure_layer
    layer, x = table7_case("stage2")
    with SimAccelerator() as bus:
        row = measure_layer(bus, layer, x, check_identity(bus))
    row["speedup"], row["speedup_ideal"], row["efficiency"]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..driver.protocol import Bus, LayerStats, run_layer
from ..errors import ConfigError, HardwareError
from ..hwspec import HwConfig, hw_codes
from ..ir import TernaryConv
from ..reference.layer import run_conv

CLOCK_MHZ = 100.0  # the PYNQ-Z1 fabric clock the figures assume


@dataclass(frozen=True)
class Table7Layer:
    """One row of the dissertation's table 7 (ResNet-20 on CIFAR-10, PE = 16 x 3 x 3)."""

    name: str
    channels: int          # weight (channels, channels, 3, 3)
    size: int              # input channels x size x size
    nnz_groups: int        # non-zero PE groups of channels * channels / 16
    seed_speedup: float    # what the seed measured on its FPGA

    @property
    def groups(self) -> int:
        return self.channels * (self.channels // 16)

    @property
    def ideal(self) -> float:
        return self.groups / self.nnz_groups


TABLE7 = (Table7Layer("stage1", 16, 32, 9, 1.56),
          Table7Layer("stage2", 32, 16, 33, 1.69),
          Table7Layer("stage3", 64, 8, 119, 1.73))


def table7(name: str) -> Table7Layer:
    for t in TABLE7:
        if t.name == name:
            return t
    raise ConfigError(f"no table 7 layer {name!r}; use one of {[t.name for t in TABLE7]}")


def make_layer(out_channels: int, in_channels: int, kernel: int = 3, cg: int = 16, *,
               nnz_groups: int | None = None, group_sparsity: float | None = None,
               in_group_density: float = 0.5, stride: int = 1, padding: int | None = None,
               relu: bool = True, seed: int = 0, name: str | None = None) -> TernaryConv:
    """A random ternary layer with an exact number of non-zero PE groups.

    Give ``nnz_groups`` or ``group_sparsity`` (fraction of the N*G groups that are all zero,
    rounded to whole groups). Inside a non-zero group each code is non-zero with probability
    ``in_group_density`` (at least one is). The output stage is random but keeps most outputs
    away from saturation, so a wrong accumulator shows up in the outputs.
    """
    rng = np.random.default_rng(seed)
    g = math.ceil(in_channels / cg)
    total = out_channels * g
    if nnz_groups is None:
        if group_sparsity is None or not 0.0 <= group_sparsity <= 1.0:
            raise ConfigError("give nnz_groups or a group_sparsity in [0, 1]")
        nnz_groups = total - int(round(group_sparsity * total))
    if not 0 <= nnz_groups <= total:
        raise ConfigError(f"nnz_groups {nnz_groups} outside 0..{total}")
    chosen = np.zeros(total, dtype=bool)
    chosen[rng.choice(total, size=nnz_groups, replace=False)] = True
    chosen = chosen.reshape(out_channels, g)
    codes = np.zeros((out_channels, g * cg, kernel, kernel), dtype=np.int8)
    for n, gi in zip(*np.nonzero(chosen)):
        block = rng.choice((-1, 1), size=(cg, kernel, kernel)) * (rng.random((cg, kernel, kernel)) < in_group_density)
        real = min(cg, in_channels - gi * cg)
        if not block[:real].any():  # guarantee the group really is non-zero
            block[rng.integers(real), rng.integers(kernel), rng.integers(kernel)] = rng.choice((-1, 1))
        block[real:] = 0
        codes[n, gi * cg:(gi + 1) * cg] = block
    codes = codes[:, :in_channels]
    fan = max(1.0, in_channels * kernel * kernel * in_group_density)
    # |acc| ~ sqrt(fan) * 2**10 for inputs of ~2**10; the output stage brings it to ~2**11.
    shift = np.full(out_channels, 14, dtype=np.int64)
    mult = rng.integers(1 << 13, 1 << 15, size=out_channels) * rng.choice((-1, 1), size=out_channels)
    mult = np.clip((mult / math.sqrt(fan)).astype(np.int64), -32768, 32767)
    mult[mult == 0] = 1
    bias = rng.integers(-(1 << 24), 1 << 24, size=out_channels)
    layer = TernaryConv(name or f"conv{out_channels}x{in_channels}k{kernel}", codes, mult, shift, bias,
                        stride=stride, padding=kernel // 2 if padding is None else padding, cg=cg, relu=relu)
    assert layer.nnz_groups == nnz_groups
    return layer


def random_input(channels: int, h: int, w: int, seed: int = 0, bits: int = 11) -> np.ndarray:
    """int16 activations uniform in [-2**bits, 2**bits)."""
    rng = np.random.default_rng(seed)
    return rng.integers(-(1 << bits), 1 << bits, size=(channels, h, w)).astype(np.int16)


def table7_case(name: str, seed: int = 0, nnz_groups: int | None = None) -> tuple[TernaryConv, np.ndarray]:
    """The table 7 layer ``name`` (exactly its non-zero group count unless ``nnz_groups``
    overrides it) with a random input of its shape."""
    t = table7(name)
    layer = make_layer(t.channels, t.channels, 3, 16, nnz_groups=t.nnz_groups if nnz_groups is None else nnz_groups,
                       stride=1, padding=1, seed=seed, name=t.name)
    return layer, random_input(t.channels, t.size, t.size, seed=seed + 1)


def lane_ops(layer: TernaryConv, h: int, w: int, lanes: int, skip: bool) -> int:
    """Add/sub lane slots the work needs: one group word x one kernel tap x one output pixel
    = ``lanes`` lane operations, over the issued groups (non-zero ones with skipping)."""
    hwc = hw_codes(layer, lanes)
    n, g, kh, kw, _ = hwc.shape
    issued = int((hwc != 0).reshape(n, g, -1).any(axis=2).sum()) if skip else n * g
    ho, wo = layer.out_hw(h, w)
    return issued * kh * kw * ho * wo * lanes


def utilization(layer: TernaryConv, h: int, w: int, hw: HwConfig, compute_cycles: int, skip: bool) -> float:
    """Fraction of the array's lane slots (NUM_PE x LANES per cycle) that did issued work."""
    if compute_cycles <= 0:
        return 0.0
    return lane_ops(layer, h, w, hw.lanes, skip) / (hw.num_pe * hw.lanes * compute_cycles)


def cycle_model(layer: TernaryConv, h: int, w: int, hw: HwConfig, skip: bool) -> dict:
    """What the engine's schedule (docs/rtl.md) needs at the least, in cycles after the input is in.

    issue: one kernel tap of one issued group per cycle for a block of NUM_PE output pixels,
    channel after channel. stream_bound: the output packet leaves in (n, y, x) order at one
    64-bit word (4 outputs) per cycle and a word can only leave once computed (a channel
    skipped entirely is synthesised, ready at once), so with unlimited output buffering the run
    cannot end before max_j(ready_j + words after j). Where the output stream and not the
    array is the bottleneck (few non-zero groups per channel, big feature maps, runs of
    skipped channels), stream_bound > issue and skipping cannot reach G/G_nz.
    """
    hwc = hw_codes(layer, hw.lanes)
    n, g, kh, kw, _ = hwc.shape
    issued = (hwc != 0).reshape(n, g, -1).any(axis=2).sum(axis=1) if skip else np.full(n, g)
    ho, wo = layer.out_hw(h, w)
    pix = ho * wo
    blocks = math.ceil(pix / hw.num_pe)
    per_block = issued * kh * kw                       # cycles per pixel block of each channel
    start = np.concatenate([[0], np.cumsum(per_block * blocks)[:-1]])
    p = np.arange(pix)
    ready = start[:, None] + (p // hw.num_pe + 1)[None, :] * per_block[:, None]
    ready[per_block == 0] = 0                          # skipped channel: synthesised by the emitter
    ready = ready.reshape(-1)
    words = math.ceil(ready.size / 4)
    ready_w = np.zeros(words * 4, dtype=np.int64)
    ready_w[:ready.size] = ready
    ready_w = ready_w.reshape(words, 4).max(axis=1)
    bound = int((ready_w + (words - np.arange(words))).max()) if words else 0
    return {"issue": int((per_block * blocks).sum()), "output_words": words, "stream_bound": max(bound, words)}


def peak_gops(hw: HwConfig, clock_mhz: float = CLOCK_MHZ) -> float:
    """The array's peak: every lane adds once per cycle, counted as one MAC = 2 ops."""
    return 2 * hw.num_pe * hw.lanes * clock_mhz * 1e-3


def effective_gops(layer: TernaryConv, h: int, w: int, cycles: int, clock_mhz: float = CLOCK_MHZ) -> float:
    """The dense layer's 2*MACs over the time the engine took (what skipping buys shows here)."""
    return 2 * layer.dense_macs(h, w) / (cycles / clock_mhz) * 1e-3 if cycles else float("inf")


def run_checked(bus: Bus, layer: TernaryConv, x: np.ndarray, hw: HwConfig, skip: bool,
                timeout_s: float = 120.0) -> tuple[np.ndarray, LayerStats]:
    """run_layer with weights streamed in, compared bit for bit with the integer reference."""
    y, stats = run_layer(bus, layer, x, hw, skip=skip, load_weights=True, timeout_s=timeout_s)
    want = run_conv(x, layer)
    if not np.array_equal(y, want):
        bad = np.argwhere(y != want)
        n, yy, xx = bad[0]
        raise HardwareError(f"layer {layer.name!r} (skip={skip}): {len(bad)} of {y.size} outputs differ from the "
                            f"integer reference, first at (n={n}, y={yy}, x={xx}): got {y[n, yy, xx]}, "
                            f"want {want[n, yy, xx]}")
    return y, stats


def measure_layer(bus: Bus, layer: TernaryConv, x: np.ndarray, hw: HwConfig, clock_mhz: float = CLOCK_MHZ,
                  timeout_s: float = 120.0) -> dict:
    """Run ``layer`` with group skipping off (the dense-ternary baseline) and on, both checked
    against the reference; returns cycles, speedups, efficiency against G/G_nz, utilisation."""
    _, h, w = x.shape
    _, dense = run_checked(bus, layer, x, hw, skip=False, timeout_s=timeout_s)
    _, sparse = run_checked(bus, layer, x, hw, skip=True, timeout_s=timeout_s)
    n, g = layer.out_channels, hw_codes(layer, hw.lanes).shape[1]
    nnz = int(np.count_nonzero(hw_codes(layer, hw.lanes).reshape(n, g, -1).any(axis=2)))
    ideal = n * g / nnz if nnz else float("inf")
    speedup = dense.compute_cycles / sparse.compute_cycles if sparse.compute_cycles else float("inf")
    return {
        "layer": layer.name, "shape": list(layer.codes.shape), "input": [int(v) for v in x.shape],
        "cg": layer.cg, "stride": layer.stride, "padding": layer.padding,
        "groups": n * g, "nnz_groups": nnz, "group_sparsity": 1 - nnz / (n * g),
        "compute_cycles_dense": dense.compute_cycles, "compute_cycles_skip": sparse.compute_cycles,
        "cycles_dense": dense.cycles, "cycles_skip": sparse.cycles,
        "groups_issued_dense": dense.groups_issued, "groups_issued_skip": sparse.groups_issued,
        "speedup": speedup,
        "speedup_total": dense.cycles / sparse.cycles if sparse.cycles else float("inf"),
        "speedup_ideal": ideal,
        "efficiency": speedup / ideal if nnz else float("nan"),
        "utilization_dense": utilization(layer, h, w, hw, dense.compute_cycles, skip=False),
        "utilization_skip": utilization(layer, h, w, hw, sparse.compute_cycles, skip=True),
        "gops_dense": effective_gops(layer, h, w, dense.cycles, clock_mhz),
        "gops_skip": effective_gops(layer, h, w, sparse.cycles, clock_mhz),
        "gops_compute_skip": effective_gops(layer, h, w, sparse.compute_cycles, clock_mhz),
        "dense_macs": layer.dense_macs(h, w),
        "model_dense": cycle_model(layer, h, w, hw, skip=False),
        "model_skip": cycle_model(layer, h, w, hw, skip=True),
        "clock_mhz": clock_mhz,
    }


SUMMED = ("compute_cycles_dense", "compute_cycles_skip", "cycles_dense", "cycles_skip", "groups_issued_dense",
          "groups_issued_skip")


def measure_tiled(bus: Bus, layer: TernaryConv, x: np.ndarray, hw: HwConfig, clock_mhz: float = CLOCK_MHZ,
                  timeout_s: float = 120.0) -> dict:
    """``measure_layer`` for a layer of any size: one that does not fit the build runs as the
    driver's tiles (pesto.driver.tiling), each measured skip on and off and checked against the
    reference; cycles and issued groups are summed over the tiles, the ratios recomputed for the
    whole layer ("tiles" says how many runs it took). A layer the build cannot take even tiled
    raises the plan's UnsupportedLayerError."""
    from ..driver import tiling
    from ..errors import UnsupportedLayerError
    _, h, w = x.shape
    plan = tiling.plan(layer, h, w, hw)
    if plan.on_host:
        raise UnsupportedLayerError(f"layer {layer.name!r} cannot run on this build: {plan.host_reason}")
    if not plan.tiled:
        return dict(measure_layer(bus, layer, x, hw, clock_mhz, timeout_s), tiles=1)
    parts = []

    def run(sub, xin, load):
        parts.append(measure_layer(bus, sub, xin, hw, clock_mhz, timeout_s))
        return run_conv(xin, sub), None   # == what the engine produced: measure_layer checked it

    tiling.run_tiled(plan, x[None], run)
    whole = {k: sum(p[k] for p in parts) for k in SUMMED}
    n, g = layer.out_channels, hw_codes(layer, hw.lanes).shape[1]
    nnz = int(np.count_nonzero(hw_codes(layer, hw.lanes).reshape(n, g, -1).any(axis=2)))
    ideal = n * g / nnz if nnz else float("inf")
    speedup = whole["compute_cycles_dense"] / whole["compute_cycles_skip"] if whole["compute_cycles_skip"] else float("inf")
    return {
        "layer": layer.name, "shape": list(layer.codes.shape), "input": [int(v) for v in x.shape],
        "cg": layer.cg, "stride": layer.stride, "padding": layer.padding,
        "groups": n * g, "nnz_groups": nnz, "group_sparsity": 1 - nnz / (n * g), **whole,
        "speedup": speedup,
        "speedup_total": whole["cycles_dense"] / whole["cycles_skip"] if whole["cycles_skip"] else float("inf"),
        "speedup_ideal": ideal, "efficiency": speedup / ideal if nnz else float("nan"),
        "utilization_dense": utilization(layer, h, w, hw, whole["compute_cycles_dense"], skip=False),
        "utilization_skip": utilization(layer, h, w, hw, whole["compute_cycles_skip"], skip=True),
        "gops_dense": effective_gops(layer, h, w, whole["cycles_dense"], clock_mhz),
        "gops_skip": effective_gops(layer, h, w, whole["cycles_skip"], clock_mhz),
        "gops_compute_skip": effective_gops(layer, h, w, whole["compute_cycles_skip"], clock_mhz),
        "dense_macs": layer.dense_macs(h, w),
        "model_dense": {k: sum(p["model_dense"][k] for p in parts) for k in parts[0]["model_dense"]},
        "model_skip": {k: sum(p["model_skip"][k] for p in parts) for k in parts[0]["model_skip"]},
        "clock_mhz": clock_mhz, "tiles": plan.runs,
    }
