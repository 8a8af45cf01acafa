"""How the accelerator runs, written once for every transport: one layer (run_layer, v1's layer
mode) or a loaded network program (load_network, select_subnet, run_network: accelerator v2).

A ``Bus`` is the accelerator as the host sees it: AXI4-Lite registers and one DMA round trip
(input stream out, output stream back). The PYNQ board (MMIO + AXI DMA) and the RTL
simulation (cocotb over a socket) each implement it; ``run_layer`` is the same for both, so
the simulation exercises the exact register writes and stream transfers the board gets.
"""

from __future__ import annotations

import functools
import math
import threading
import weakref
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import ConfigError, HardwareError, UnsupportedLayerError
from ..hwspec import REGMAP, HwConfig, input_stream, layer_registers, output_words, unpack_outputs
from ..hwspec.protocol import channels_per_group, words_per_group
from ..ir import TernaryConv


class Bus(Protocol):
    """Every call returns or raises HardwareError within a deadline that names what it waited for.
    A bus may carry a ``lock`` (a threading.RLock) that serialises its users; ``bus_lock`` gives
    every bus one."""

    def read(self, offset: int) -> int: ...

    def write(self, offset: int, value: int) -> None: ...

    def transfer(self, words: np.ndarray, n_out: int, timeout_s: float) -> np.ndarray:
        """Send ``words`` (uint64, TLAST on the last) and return the ``n_out`` words received."""
        ...


_LOCKS: "weakref.WeakKeyDictionary[object, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def bus_lock(bus):
    """The context that serialises everything done on ``bus``, re-entrant: the bus's own
    ``session()`` (pesto.sim.fast.FastSim: a lock with a deadline) or ``lock`` (SimAccelerator,
    CSimBus, PynqBus), else a lock kept for it here. A run (registers, start, streams, counters)
    holds it from start to end, so threads sharing one engine take turns instead of interleaving
    their register writes."""
    session = getattr(bus, "session", None)
    if session is not None:
        return session()
    own = getattr(bus, "lock", None)
    if own is not None:
        return own
    with _LOCKS_GUARD:
        try:
            return _LOCKS.setdefault(bus, threading.RLock())
        except TypeError:   # neither hashable nor weak-referenceable: the caller must not share it
            raise HardwareError(f"{type(bus).__name__} cannot be locked for use from several threads; "
                                f"give it a `lock` attribute (threading.RLock())") from None


def _holding_bus(fn):
    """``fn(bus, ...)`` with ``bus_lock(bus)`` held for the whole call: a connect, a layer run, a
    program load, a sub-net switch or a network run is never interleaved with another thread's."""
    @functools.wraps(fn)
    def wrapper(bus, *args, **kwargs):
        with bus_lock(bus):
            return fn(bus, *args, **kwargs)
    return wrapper


@dataclass
class LayerStats:
    cycles: int            # start -> done, stream loading included
    compute_cycles: int    # last input beat -> done
    groups_issued: int     # group passes the scheduler issued
    conv_cycles: int = 0   # v2: the conv step alone (STEP_CYCLES of step 1), the figure skipping shortens
    issue_cycles: int = 0  # v2: its first to last entry into the PE array


def check_identity(bus: Bus) -> HwConfig:
    """Refuse anything that is not a pesto engine of a compatible protocol version."""
    ident = bus.read(REGMAP.offset("ID"))
    if ident != REGMAP.id:
        raise HardwareError(
            f"ID register reads 0x{ident:08X}, expected 0x{REGMAP.id:08X} ('PEST'): the loaded "
            f"bitstream is not a pesto accelerator; load the matching overlay")
    version = bus.read(REGMAP.offset("VERSION"))
    major = REGMAP["VERSION"].field(version, "MAJOR")
    if major != REGMAP.spec["version_major"]:
        raise HardwareError(
            f"accelerator protocol version {major}.x, this driver speaks "
            f"{REGMAP.spec['version_major']}.x: rebuild the bitstream or install the matching pesto")
    h0, h1 = bus.read(REGMAP.offset("HWCFG0")), bus.read(REGMAP.offset("HWCFG1"))
    if "CAPS" in REGMAP["HWCFG0"].fields and REGMAP["HWCFG0"].field(h0, "CAPS") & 1:
        return HwConfig.from_registers(h0, h1, bus.read(REGMAP.offset("HWCFG2")), bus.read(REGMAP.offset("HWCFG3")))
    return HwConfig.from_registers(h0, h1)


@_holding_bus
def connect(bus: Bus, timeout_s: float = 1.0) -> HwConfig:
    """``check_identity``, after waking an engine whose read-only registers still read 0.

    An HLS engine writes its ID/VERSION/HWCFG outputs only when it runs, so a fresh one reads
    0 there while its ap_ctrl_hs CTRL reads AP_IDLE. One run with N = 0 and a single input
    beat, which every pesto engine refuses with ERR_CODE CONFIG and drops (the RTL answers it
    the same way), makes them valid. Anything else that reads 0 is never started.
    """
    ctrl = REGMAP.offset("CTRL")
    idle = 1 << REGMAP["CTRL"].fields["AP_IDLE"][0]
    if bus.read(REGMAP.offset("ID")) == 0 and bus.read(ctrl) & idle:
        bus.write(REGMAP.offset("N"), 0)
        bus.write(REGMAP.offset("MODE"), 0)
        bus.read(ctrl)  # clear a stale AP_DONE (clear-on-read)
        bus.write(ctrl, 1 << REGMAP["CTRL"].fields["AP_START"][0])
        try:
            bus.transfer(np.zeros(1, dtype=np.uint64), 0, timeout_s)
        except HardwareError as e:
            raise HardwareError(f"ID register reads 0 and the identity probe run failed ({e}): the loaded "
                                f"bitstream is not a pesto accelerator; load the matching overlay") from e
        done = 1 << REGMAP["CTRL"].fields["AP_DONE"][0]
        if not any(bus.read(ctrl) & done for _ in range(1000)):
            raise HardwareError("ID register reads 0 and the identity probe run never finished: the loaded "
                                "bitstream is not a pesto accelerator; load the matching overlay")
    return check_identity(bus)


def check_fits(layer: TernaryConv, h: int, w: int, hw: HwConfig) -> None:
    """Refuse, before any register is written, a layer the build's buffers cannot hold
    (the engine would end the run with ERR_CODE CONFIG and no output)."""
    kh, kw = layer.kernel
    ho, wo = layer.out_hw(h, w)
    cpg = channels_per_group(layer.cg, hw.lanes)
    g_hw = -(-layer.in_channels // cpg)
    nnz = int(layer_registers(layer, h, w, hw.lanes)["NNZ"])
    wgt_depth = 1 << hw.log2_wgt_depth
    limits = [  # (what, needed, available, the HWCFG field that sets it) -- docs/rtl.md
        ("kernel side", max(kh, kw), hw.max_k, "MAX_K"),
        ("output channels", layer.out_channels, 1 << hw.log2_max_n, "LOG2_MAX_N"),
        ("output pixels", ho * wo, 1 << hw.log2_max_pix, "LOG2_MAX_PIX"),
        ("activation words (groups x H x W)", g_hw * h * w, 1 << hw.log2_act_depth, "LOG2_ACT_DEPTH"),
        ("weight words (non-zero groups x words per group)", nnz * words_per_group(layer.kernel, hw.lanes),
         wgt_depth, "LOG2_WGT_DEPTH"),
        ("groups N x G", layer.out_channels * g_hw, wgt_depth, "LOG2_WGT_DEPTH"),
    ]
    over = [f"{what} {need} > {have} ({field}={_enough(field, need)} would hold it)"
            for what, need, have, field in limits if need > have]
    if over:
        raise UnsupportedLayerError(
            f"layer {layer.name!r} on a {h}x{w} input does not fit this accelerator build in one run: "
            f"{'; '.join(over)}. pesto.driver.Accelerator splits such a layer across runs by itself "
            f"(pesto.driver.tiling); to run it in one, rebuild with those parameters (docs/rtl.md)")


def _enough(field: str, need: int) -> int:
    """The build parameter value that holds ``need`` (log2 fields) or the need itself (MAX_K)."""
    return need if field == "MAX_K" else max(1, math.ceil(math.log2(need)))


@_holding_bus
def run_layer(bus: Bus, layer: TernaryConv, x: np.ndarray, hw: HwConfig, skip: bool = True,
              load_weights: bool = True, timeout_s: float = 10.0, step: bool = False) -> tuple[np.ndarray, LayerStats]:
    """Run ``layer`` on int16 x (C, H, W); returns int16 (N, Ho, Wo) and the cycle counters
    (step=True on a v2 engine also reads the conv step's own cycles). Holds ``bus_lock(bus)``
    for the whole run."""
    _, h, w = x.shape
    regs = layer_registers(layer, h, w, hw.lanes, skip=skip, load_weights=load_weights)
    for name, value in regs.items():
        bus.write(REGMAP.offset(name), value)
    ctrl = REGMAP.offset("CTRL")
    bus.read(ctrl)  # clear a stale AP_DONE (clear-on-read)
    bus.write(ctrl, 1 << REGMAP["CTRL"].fields["AP_START"][0])
    ho, wo = regs["OUT_H"], regs["OUT_W"]
    try:
        out = bus.transfer(input_stream(layer, x, hw.lanes, load_weights),
                           output_words(layer.out_channels, ho, wo), timeout_s)
    except HardwareError as e:
        # A run that fails ends with AP_DONE and no output: name the engine's reason if it has one.
        err = REGMAP["STATUS"].field(bus.read(REGMAP.offset("STATUS")), "ERR_CODE")
        if err:
            raise HardwareError(f"layer {layer.name!r}: accelerator error "
                                f"{REGMAP.error_names.get(err, err)} ({e})") from e
        raise
    done_bit = 1 << REGMAP["CTRL"].fields["AP_DONE"][0]
    for _ in range(1000):
        if bus.read(ctrl) & done_bit:
            break
    else:
        raise HardwareError(f"layer {layer.name!r}: AP_DONE never rose after the output stream ended")
    status = bus.read(REGMAP.offset("STATUS"))
    err = REGMAP["STATUS"].field(status, "ERR_CODE")
    if err:
        raise HardwareError(f"layer {layer.name!r}: accelerator error {REGMAP.error_names.get(err, err)}")
    stats = LayerStats(bus.read(REGMAP.offset("CYCLES")), bus.read(REGMAP.offset("COMPUTE_CYCLES")),
                       bus.read(REGMAP.offset("GROUPS_ISSUED")))
    if step and hw.network:
        bus.write(REGMAP.offset("STEP_SEL"), 1)   # layer mode runs input, conv, output
        stats.conv_cycles = bus.read(REGMAP.offset("STEP_CYCLES"))
        stats.issue_cycles = bus.read(REGMAP.offset("STEP_ISSUE"))
    return unpack_outputs(out, layer.out_channels, ho, wo), stats


# -- network mode (accelerator v2, docs/accelerator-v2.md) --------------------------------------

@dataclass
class StepStats:
    name: str
    op: str
    cycles: int            # start to last write, last image of the run
    issue_cycles: int      # conv: first to last entry into the PE array


@dataclass
class NetworkStats:
    cycles: int            # start -> done, streams included
    compute_cycles: int    # last input beat -> done
    groups_issued: int     # issue-list entries walked (the first tile of every conv step, every image)
    images: int
    steps: list[StepStats] | None = None


def _start(bus: Bus, mode: int) -> None:
    bus.write(REGMAP.offset("MODE"), mode)
    ctrl = REGMAP.offset("CTRL")
    bus.read(ctrl)  # clear a stale AP_DONE (clear-on-read)
    bus.write(ctrl, 1 << REGMAP["CTRL"].fields["AP_START"][0])


def _wait_done(bus: Bus, what: str) -> int:
    ctrl = REGMAP.offset("CTRL")
    done_bit = 1 << REGMAP["CTRL"].fields["AP_DONE"][0]
    for _ in range(1000):
        if bus.read(ctrl) & done_bit:
            return REGMAP["STATUS"].field(bus.read(REGMAP.offset("STATUS")), "ERR_CODE")
    raise HardwareError(f"{what}: AP_DONE never rose after the streams ended")


def _error(err: int) -> str:
    return REGMAP.error_names.get(err, str(err))


def _require_network(hw: HwConfig) -> None:
    if not hw.network:
        raise UnsupportedLayerError("this accelerator has no network mode (HWCFG0.CAPS bit 0 is clear): run the "
                                    "network layer by layer with run_layer, or load a v2 bitstream")


@_holding_bus
def load_network(bus: Bus, program, hw: HwConfig, timeout_s: float = 10.0) -> None:
    """Load a network program (``pesto.hwspec.program.compile_network``) onto the engine, once:
    codes, schedules and output stages of every sub-net stay there until another load or a
    layer-mode run that loads weights. Refuses a program the build cannot hold before sending it."""
    _require_network(hw)
    program.check_fits(hw)
    _start(bus, REGMAP["MODE"].encode(LOAD_PROGRAM=1))
    try:
        bus.transfer(program.words(), 0, timeout_s)
    except HardwareError as e:
        err = REGMAP["STATUS"].field(bus.read(REGMAP.offset("STATUS")), "ERR_CODE")
        raise HardwareError(f"network program load failed: {_error(err) if err else ''} ({e})") from e
    err = _wait_done(bus, "network program load")
    if err:
        raise HardwareError(f"the accelerator refused the network program: {_error(err)}")
    info = bus.read(REGMAP.offset("PROGRAM"))
    if not REGMAP["PROGRAM"].field(info, "VALID") or bus.read(REGMAP.offset("PROGRAM_SUM")) != program.checksum:
        raise HardwareError("the network program did not load (PROGRAM.VALID or PROGRAM_SUM disagree)")


@_holding_bus
def select_subnet(bus: Bus, program, subnet) -> int:
    """Choose the sub-net (index or name) the next network runs compute; moves no weights.
    Returns its index."""
    names = program.names
    if isinstance(subnet, str):
        if subnet not in names:
            raise ConfigError(f"no sub-net {subnet!r}; the program holds: {', '.join(names)}")
        subnet = names.index(subnet)
    if not 0 <= int(subnet) < program.num_subnets:
        raise ConfigError(f"sub-net index {subnet} out of range: the program holds {program.num_subnets} "
                          f"({', '.join(names)})")
    bus.write(REGMAP.offset("SUBNET"), int(subnet))
    return int(subnet)


@_holding_bus
def read_steps(bus: Bus, program) -> list[StepStats]:
    """The per-step counters of the last network run (its last image)."""
    rows = []
    for i, s in enumerate(program.steps):
        bus.write(REGMAP.offset("STEP_SEL"), i)
        rows.append(StepStats(s.name, s.op, bus.read(REGMAP.offset("STEP_CYCLES")),
                              bus.read(REGMAP.offset("STEP_ISSUE"))))
    return rows


@_holding_bus
def run_network(bus: Bus, program, x: np.ndarray, hw: HwConfig, subnet=None, skip: bool = True,
                timeout_s: float = 60.0, steps: bool = False) -> tuple[np.ndarray, NetworkStats]:
    """Run the loaded program on int16 x (C, H, W) or a batch (B, C, H, W) in one DMA round trip:
    returns the int16 output of the accelerated chain, (B, N, Ho, Wo), and the counters.

    subnet: select this sub-net first (else the one selected last); skip=False runs the dense
    baseline (the program must have been compiled with dense=True); steps=True also reads the
    per-step counters. Any refusal (no or another program loaded, sub-net out of range, a stream
    of the wrong length) is a HardwareError naming the engine's reason, at once."""
    _require_network(hw)
    x = np.asarray(x)
    batch = 1 if x.ndim == 3 else x.shape[0]
    words = program.input_words(x)
    if REGMAP["PROGRAM"].field(bus.read(REGMAP.offset("PROGRAM")), "VALID") and \
            bus.read(REGMAP.offset("PROGRAM_SUM")) != program.checksum:
        raise HardwareError("the accelerator holds another network program: load_network(bus, program, hw) first")
    if subnet is not None:
        select_subnet(bus, program, subnet)
    bus.write(REGMAP.offset("NUM_IMAGES"), batch)
    _start(bus, REGMAP["MODE"].encode(NETWORK=1, SKIP_EN=int(skip)))
    n_out = program.output_words(batch)
    try:
        out = bus.transfer(words, n_out, timeout_s)
    except HardwareError as e:
        err = REGMAP["STATUS"].field(bus.read(REGMAP.offset("STATUS")), "ERR_CODE")
        if err:
            raise HardwareError(f"network run: accelerator error {_error(err)} ({e})") from e
        raise
    err = _wait_done(bus, "network run")
    if err:
        raise HardwareError(f"network run: accelerator error {_error(err)}")
    stats = NetworkStats(bus.read(REGMAP.offset("CYCLES")), bus.read(REGMAP.offset("COMPUTE_CYCLES")),
                         bus.read(REGMAP.offset("GROUPS_ISSUED")), batch,
                         read_steps(bus, program) if steps else None)
    y = program.unpack_output(out, batch)
    return (y if x.ndim == 4 else y[0]), stats
