"""How one layer runs on the accelerator, written once for every transport.

A ``Bus`` is the accelerator as the host sees it: AXI4-Lite registers and one DMA round trip
(input stream out, output stream back). The PYNQ board (MMIO + AXI DMA) and the RTL
simulation (cocotb over a socket) each implement it; ``run_layer`` is the same for both, so
the simulation exercises the exact register writes and stream transfers the board gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import HardwareError, UnsupportedLayerError
from ..hwspec import REGMAP, HwConfig, input_stream, layer_registers, output_words, unpack_outputs
from ..hwspec.protocol import channels_per_group, words_per_group
from ..ir import TernaryConv


class Bus(Protocol):
    def read(self, offset: int) -> int: ...

    def write(self, offset: int, value: int) -> None: ...

    def transfer(self, words: np.ndarray, n_out: int, timeout_s: float) -> np.ndarray:
        """Send ``words`` (uint64, TLAST on the last) and return the ``n_out`` words received."""
        ...


@dataclass
class LayerStats:
    cycles: int            # start -> done, stream loading included
    compute_cycles: int    # last input beat -> done
    groups_issued: int     # group passes the scheduler issued


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
    r0 = REGMAP["HWCFG0"]
    if "CAPS" in r0.fields and r0.field(h0, "CAPS") & 1:   # network mode: its memories in HWCFG2/3
        return HwConfig.from_registers(h0, h1, bus.read(REGMAP.offset("HWCFG2")), bus.read(REGMAP.offset("HWCFG3")))
    return HwConfig.from_registers(h0, h1)


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
    over = [f"{what} {need} > {have} ({field})" for what, need, have, field in limits if need > have]
    if over:
        raise UnsupportedLayerError(
            f"layer {layer.name!r} on a {h}x{w} input does not fit this accelerator build: "
            f"{'; '.join(over)}. Rebuild the bitstream with larger buffers or split the layer")


def run_layer(bus: Bus, layer: TernaryConv, x: np.ndarray, hw: HwConfig, skip: bool = True,
              load_weights: bool = True, timeout_s: float = 10.0) -> tuple[np.ndarray, LayerStats]:
    """Run ``layer`` on int16 x (C, H, W); returns int16 (N, Ho, Wo) and the cycle counters."""
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
    return unpack_outputs(out, layer.out_channels, ho, wo), stats


# -- network mode (accelerator v2, docs/accelerator-v2.md) --------------------------------------

@dataclass
class NetworkStats:
    """What the engine reported for one network run (NUM_IMAGES images, one sub-net)."""

    images: int
    subnet: int
    cycles: int            # start -> done: the input stream, every step, the output stream
    compute_cycles: int    # last input beat -> done
    groups_issued: int     # entries the PE array issued, over all steps and images


@dataclass(frozen=True)
class LoadedProgram:
    """The PROGRAM / PROGRAM_SUM registers: what the engine holds now."""

    valid: bool
    dense: bool
    subnets: int
    steps: int
    checksum: int


def loaded_program(bus: Bus) -> LoadedProgram:
    r = REGMAP["PROGRAM"]
    v = bus.read(REGMAP.offset("PROGRAM"))
    return LoadedProgram(bool(r.field(v, "VALID")), bool(r.field(v, "DENSE")), r.field(v, "SUBNETS"),
                         r.field(v, "STEPS"), bus.read(REGMAP.offset("PROGRAM_SUM")))


def _start(bus: Bus, mode: int) -> None:
    bus.write(REGMAP.offset("MODE"), mode)
    ctrl = REGMAP.offset("CTRL")
    bus.read(ctrl)  # clear a stale AP_DONE (clear-on-read)
    bus.write(ctrl, 1 << REGMAP["CTRL"].fields["AP_START"][0])


def _finish(bus: Bus, what: str) -> None:
    """Wait for AP_DONE after the streams, then turn a STATUS error into a HardwareError."""
    ctrl, done_bit = REGMAP.offset("CTRL"), 1 << REGMAP["CTRL"].fields["AP_DONE"][0]
    for _ in range(1000):
        if bus.read(ctrl) & done_bit:
            break
    else:
        raise HardwareError(f"{what}: AP_DONE never rose after the streams ended")
    err = REGMAP["STATUS"].field(bus.read(REGMAP.offset("STATUS")), "ERR_CODE")
    if err:
        raise NetworkRunError(what, REGMAP.error_names.get(err, str(err)))


class NetworkRunError(HardwareError):
    """The engine ended a network-mode run with an error code (``code``: its name in regmap.json)."""

    def __init__(self, what: str, code: str, detail: str = ""):
        self.code = code
        super().__init__(f"{what}: accelerator error {code}" + (f" ({detail})" if detail else ""))


def _transfer(bus: Bus, words: np.ndarray, n_out: int, timeout_s: float, what: str) -> np.ndarray:
    try:
        return bus.transfer(words, n_out, timeout_s)
    except HardwareError as e:
        # a failed run ends its output with one zero word (HWCFG0.CAPS bit 1) or sends none:
        # STATUS names the reason at once
        err = REGMAP["STATUS"].field(bus.read(REGMAP.offset("STATUS")), "ERR_CODE")
        if err:
            raise NetworkRunError(what, REGMAP.error_names.get(err, str(err)), str(e)) from e
        raise


def load_program(bus: Bus, program, timeout_s: float = 10.0) -> LoadedProgram:
    """Stream ``program`` (a ``pesto.hwspec.program.Program``) in with MODE.LOAD_PROGRAM, then
    check that PROGRAM reads it back (valid, its sub-nets and steps, its checksum)."""
    _start(bus, REGMAP["MODE"].encode(LOAD_PROGRAM=1))
    _transfer(bus, program.words(), 0, timeout_s, "loading the network program")
    _finish(bus, "loading the network program")
    got = loaded_program(bus)
    if not got.valid or got.checksum != program.checksum or got.subnets != program.num_subnets:
        raise HardwareError(f"the engine reports program {got} after loading one with {program.num_subnets} "
                            f"sub-nets and checksum 0x{program.checksum:08X}: the load did not take")
    return got


def run_network(bus: Bus, program, x: np.ndarray, subnet: int = 0, skip: bool = True,
                timeout_s: float = 10.0) -> tuple[np.ndarray, NetworkStats]:
    """One network-mode run of the loaded ``program`` on int16 x (B, C, H, W) (the chain's input,
    B images in one input stream and one output stream) with sub-net ``subnet``; returns the
    int16 chain outputs (B, N, H, W) and the counters."""
    x = np.asarray(x)
    images = 1 if x.ndim == 3 else len(x)
    bus.write(REGMAP.offset("SUBNET"), int(subnet))
    bus.write(REGMAP.offset("NUM_IMAGES"), images)
    _start(bus, REGMAP["MODE"].encode(NETWORK=1, SKIP_EN=int(skip)))
    what = f"network run of sub-net {subnet} on {images} image(s)"
    out = _transfer(bus, program.input_words(x), program.output_words(images), timeout_s, what)
    _finish(bus, what)
    stats = NetworkStats(images, int(subnet), bus.read(REGMAP.offset("CYCLES")),
                         bus.read(REGMAP.offset("COMPUTE_CYCLES")), bus.read(REGMAP.offset("GROUPS_ISSUED")))
    return program.unpack_output(out, images), stats
