"""Renders the templates in hls/ into a Vitis HLS project for one accelerator build.

The engine's register offsets, field positions, ID, version, error and code values all come
from regmap.json; its build parameters are a ``pesto.hwspec.HwConfig`` (the same record the
driver reads back from HWCFG0/1), sized by ``fit_hw`` to the layers it must run.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path

import jinja2

from .. import resources
from ..errors import ConfigError
from ..hwspec import REGMAP, HwConfig, layer_registers
from ..hwspec.protocol import channels_per_group
from ..ir import TernaryConv
from ..util import atomic_write_text

HLS_DIR = resources.path("hls")
# What the rendered TCL and the bitstream scripts are written for (docs/bitstreams.md).
TOOL_VERSIONS = {"vitis_hls": "2022.1", "vivado": "2022.1"}
PART = "xc7z020clg400-1"
CLOCK_NS = 10.0
VLNV = REGMAP.spec["vlnv"]
MAX_G = 64   # groups per output channel the HLS engine takes (1024 input channels at 16 lanes)

# v1's RTL default build (hw/rtl/pesto_accel.v), the layer engine this HLS one mirrors, so the
# driver sees the same HWCFG from either; it runs ResNet-20 on 28x28 / 32x32 inputs and the table 7
# layers. fit_hw grows it.
HLS_DEFAULT = HwConfig(lanes=16, num_pe=8, max_k=3, log2_act_depth=11, log2_wgt_depth=11,
                       log2_max_n=8, log2_max_pix=11)

SOURCES = {  # rendered file -> template
    "pesto_accel.h": "pesto_accel.h.j2",
    "pesto_accel.cpp": "pesto_accel.cpp.j2",
    "pesto_tb.cpp": "pesto_tb.cpp.j2",
    "run_hls.tcl": "run_hls.tcl.j2",
}


def check_hw(hw: HwConfig) -> None:
    """Refuse build parameters the HLS engine cannot be built with."""
    if hw.lanes not in (4, 8, 16, 32):
        raise ConfigError(f"HLS build: LANES={hw.lanes}; the HLS engine takes 4, 8, 16 or 32 lanes "
                          f"(a kernel tap's codes must fit in one 64-bit word)")
    if hw.num_pe < 4 or hw.num_pe & (hw.num_pe - 1) or hw.num_pe > 64:
        raise ConfigError(f"HLS build: NUM_PE={hw.num_pe}; use a power of two from 4 to 64")
    if not 1 <= hw.max_k <= 15:
        raise ConfigError(f"HLS build: MAX_K={hw.max_k} must be 1..15 (a 4-bit KERNEL field)")
    if (1 << hw.log2_max_pix) < hw.num_pe:
        raise ConfigError(f"HLS build: 2**LOG2_MAX_PIX must hold one block of NUM_PE={hw.num_pe} pixels")
    for name in ("log2_act_depth", "log2_wgt_depth", "log2_max_n", "log2_max_pix"):
        if not 1 <= getattr(hw, name) <= 20:
            raise ConfigError(f"HLS build: {name}={getattr(hw, name)} outside 1..20")


def layer_needs(layer: TernaryConv, h: int, w: int, lanes: int) -> dict:
    """What one layer on an h x w input needs from a build (the driver's check_fits limits)."""
    kh, kw = layer.kernel
    ho, wo = layer.out_hw(h, w)
    g = math.ceil(layer.in_channels / channels_per_group(layer.cg, lanes))
    nnz = layer_registers(layer, h, w, lanes)["NNZ"]
    return {"max_k": max(kh, kw), "n": layer.out_channels, "pix": ho * wo, "act": g * h * w,
            "wgt": nnz * kh * kw, "g": g}


def fit_hw(shapes, base: HwConfig = HLS_DEFAULT) -> HwConfig:
    """The smallest build at least as large as ``base`` that runs every (layer, h, w) in ``shapes``."""
    hw = base
    for layer, h, w in shapes:
        need = layer_needs(layer, h, w, hw.lanes)
        if need["g"] > MAX_G:
            raise ConfigError(f"layer {layer.name!r}: {need['g']} groups per output channel, the HLS engine "
                              f"takes at most {MAX_G}; split the layer's input channels")
        if need["max_k"] > hw.max_k:
            raise ConfigError(f"layer {layer.name!r}: kernel side {need['max_k']} > MAX_K={hw.max_k}")
        bits = lambda v: max(1, math.ceil(math.log2(max(v, 1))))  # noqa: E731
        hw = replace(hw, log2_act_depth=max(hw.log2_act_depth, bits(need["act"])),
                     log2_wgt_depth=max(hw.log2_wgt_depth, bits(need["wgt"])),
                     log2_max_n=max(hw.log2_max_n, bits(need["n"])),
                     log2_max_pix=max(hw.log2_max_pix, bits(need["pix"])))
    check_hw(hw)
    return hw


def top_arguments(network: bool = False) -> list[dict]:
    """One top-function argument per register after the ap_ctrl_hs block (0x00-0x0C), in
    offset order: read-only registers are outputs, the rest are inputs. The layer-mode engine
    has no network mode: the network-only registers (regmap.json) are arguments of the
    per-model network engine (``network=True``, pesto.hls.network) only."""
    args = []
    regs = REGMAP.registers.values() if network else REGMAP.layer_registers.values()
    for r in sorted(regs, key=lambda r: r.offset):
        if r.offset < 0x10:
            continue
        args.append({"name": r.name, "port": r.name.lower(), "offset": r.offset, "access": r.access,
                     "fields": r.fields})
    return args


def _trip_counts(hw: HwConfig) -> dict:
    """LOOP_TRIPCOUNT bounds (reports only) for the largest layer the build takes."""
    kk = hw.max_k * hw.max_k
    max_n, max_pix = 1 << hw.log2_max_n, 1 << hw.log2_max_pix
    blocks = max_pix // hw.num_pe
    return {"params": 2 * max_n, "indexer": math.ceil(max_n * MAX_G / 64),
            "codes": 1 << hw.log2_wgt_depth, "acts": (1 << hw.log2_act_depth) * hw.lanes // 4,
            "blocks": blocks, "channels": max_n, "schedule": MAX_G, "pe_array": blocks * MAX_G * kk,
            "pack": max_n * max_pix // 4}


def render_sources(hw: HwConfig = HLS_DEFAULT, source: str = "layer configurations",
                   axis_sideband: int = 0, network: dict | None = None) -> dict[str, str]:
    """The HLS sources, testbench and TCL of one build, as {file name: text}. ``network``: the
    context of one model's network program (``pesto.hls.network.network_context``): the top is
    then that model's network engine, with the layer-mode engine inside it."""
    check_hw(hw)
    if not (HLS_DIR / "pesto_accel.cpp.j2").is_file():
        raise ConfigError(f"HLS templates not found in {HLS_DIR}: the pesto installation is incomplete; "
                          f"reinstall pesto")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HLS_DIR)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    vendor, library, name, version = VLNV.split(":")
    ctx = {
        "hw": hw, "max_g": MAX_G, "regmap": REGMAP, "registers": sorted(REGMAP.registers.values(),
                                                                       key=lambda r: r.offset),
        "args": top_arguments(network is not None), "layer_args": top_arguments(),
        "network": network, "source": source, "tool": TOOL_VERSIONS, "axis_sideband": axis_sideband,
        "trip": _trip_counts(hw), "part": PART, "clock_ns": CLOCK_NS,
        "vlnv": {"vendor": vendor, "library": library, "name": name, "version": version},
        "fifo_depth": 2 * (1 << hw.log2_max_pix) // hw.num_pe,   # two channels of output blocks
    }
    sources = dict(SOURCES, **({"pesto_accel.cpp": "pesto_net.cpp.j2"} if network is not None else {}))
    return {out: env.get_template(tpl).render(**ctx) for out, tpl in sources.items()}


def render_project(out_dir, cases=(), hw: HwConfig = HLS_DEFAULT, source: str = "layer configurations",
                   layers: list[dict] | None = None, network: dict | None = None) -> Path:
    """Write a complete Vitis HLS project to ``out_dir``: sources, the C testbench with one vector
    file per case (``pesto.hls.vectors``), run_hls.tcl and pesto_hls.json (the build record)."""
    from .vectors import write_vectors

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_sources(hw, source, network=network).items():
        atomic_write_text(out / name, text)
    names = []
    for i, case in enumerate(cases):
        fname = f"tb_{i:02d}_{case.name}.vec"
        write_vectors(out / fname, [case])
        names.append(fname)
    atomic_write_text(out / "tb_vectors.lst", "".join(n + "\n" for n in names))
    record = {"top": "pesto_accel", "vlnv": VLNV, "part": PART, "clock_ns": CLOCK_NS, "tools": TOOL_VERSIONS,
              "hw": asdict(hw), "max_g": MAX_G, "source": source, "layers": layers or [],
              "vectors": names}
    if network is not None:
        record["network"] = network["record"]
    atomic_write_text(out / "pesto_hls.json", json.dumps(record, indent=2) + "\n")
    return out
