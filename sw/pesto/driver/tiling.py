"""Layers larger than the accelerator build, split across runs -- bit for bit the whole layer.

A build holds at most 2**LOG2_MAX_N output channels, 2**LOG2_WGT_DEPTH weight words (and N x G
indexer bits), 2**LOG2_MAX_PIX output pixels and 2**LOG2_ACT_DEPTH activation words per run
(``protocol.check_fits``). A layer over those limits runs as several engine runs:

* output-channel tiles: consecutive output channels whose codes, indexer and count fit. Each
  output is computed from its own channel's codes only, so the tiles' outputs, stacked, are the
  layer's outputs exactly.
* spatial tiles, where the activation buffer or the output-pixel count is the limit: the host
  zero-pads the input once (what the engine's PAD does), then each tile of output pixels gets
  the input window it reads -- its own rows and columns plus the halo of Kh-1 / Kw-1 rows and
  columns its kernel taps reach -- and runs with PAD 0. Every output sees exactly the inputs it
  sees in the whole layer.

A layer whose single output channel or single output pixel already exceeds the build (a kernel
wider than MAX_K, one channel's weights deeper than the weight buffer, one pixel's receptive
field larger than the activation buffer) cannot be split without changing the arithmetic; it
is placed on the host (the integer reference) with a warning that names the build parameter
that would bring it onto the engine.

The spatial tiles of one channel tile reuse its weights on the engine (MODE.LOAD_WEIGHTS = 0),
so the weights cross the bus once per channel tile and image, never once per spatial tile.
numpy only (runs on the board).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import UnsupportedLayerError
from ..hwspec import HwConfig
from ..hwspec.protocol import channels_per_group, hw_codes, words_per_group
from ..ir import TernaryConv


@dataclass(frozen=True)
class Tile:
    """One engine run: output channels [n0, n1), output rows [y0, y1), columns [x0, x1)."""

    n0: int
    n1: int
    y0: int
    y1: int
    x0: int
    x1: int


@dataclass
class Plan:
    """How ``layer`` on an h x w input runs on a build: ``tiles`` (one run each), or on the host
    (``host_reason`` says why, with the parameter to enlarge)."""

    layer: TernaryConv
    h: int
    w: int
    channel_tiles: list[tuple[int, int]]
    spatial_tiles: list[tuple[int, int, int, int]]
    host_reason: str | None = None

    @property
    def on_host(self) -> bool:
        return self.host_reason is not None

    @property
    def runs(self) -> int:
        return len(self.channel_tiles) * len(self.spatial_tiles)

    @property
    def tiled(self) -> bool:
        return self.runs > 1

    @property
    def spatial(self) -> bool:
        return len(self.spatial_tiles) > 1

    def describe(self) -> str:
        if self.on_host:
            return f"on the host ({self.host_reason})"
        return (f"{len(self.channel_tiles)} output-channel x {len(self.spatial_tiles)} spatial tile(s) "
                f"= {self.runs} runs")


def _group_words(layer: TernaryConv, lanes: int) -> tuple[np.ndarray, int]:
    """(non-zero hardware groups per output channel, G_hw)."""
    codes = hw_codes(layer, lanes)
    n, g = codes.shape[:2]
    return (codes != 0).reshape(n, g, -1).any(axis=2).sum(axis=1), g


def channel_tiles(layer: TernaryConv, hw: HwConfig) -> list[tuple[int, int]]:
    """Consecutive output channels packed greedily into runs whose count, N x G indexer bits and
    code words fit the build. Raises UnsupportedLayerError when one channel alone does not fit."""
    nnz, g = _group_words(layer, hw.lanes)
    wpg = words_per_group(layer.kernel, hw.lanes)
    max_n, depth = 1 << hw.log2_max_n, 1 << hw.log2_wgt_depth
    if g > depth or int(nnz.max(initial=0)) * wpg > depth:
        raise UnsupportedLayerError(
            f"one output channel of layer {layer.name!r} needs {g} indexer bits and "
            f"{int(nnz.max(initial=0)) * wpg} weight words, the build holds {depth}; raise LOG2_WGT_DEPTH to "
            f"{max(math.ceil(math.log2(max(g, int(nnz.max(initial=0)) * wpg))), hw.log2_wgt_depth + 1)}")
    tiles, start, words = [], 0, 0
    for n in range(layer.out_channels):
        count = n - start + 1
        if count > max_n or count * g > depth or words + int(nnz[n]) * wpg > depth:
            tiles.append((start, n))
            start, words = n, 0
        words += int(nnz[n]) * wpg
    tiles.append((start, layer.out_channels))
    return tiles


def spatial_tiles(layer: TernaryConv, h: int, w: int, hw: HwConfig) -> list[tuple[int, int, int, int]]:
    """Output windows (y0, y1, x0, x1) whose input window (with its halo) fits the activation
    buffer and whose pixels fit 2**LOG2_MAX_PIX; the whole map when it fits as is. Raises
    UnsupportedLayerError when not even one output pixel fits."""
    kh, kw = layer.kernel
    s, p = layer.stride, layer.padding
    ho, wo = layer.out_hw(h, w)
    g = math.ceil(layer.in_channels / channels_per_group(layer.cg, hw.lanes))
    act, pix = 1 << hw.log2_act_depth, 1 << hw.log2_max_pix
    if g * h * w <= act and ho * wo <= pix:
        return [(0, ho, 0, wo)]
    if g * kh * kw > act:
        raise UnsupportedLayerError(
            f"one output pixel of layer {layer.name!r} reads {g} x {kh} x {kw} = {g * kh * kw} activation words, "
            f"the build holds {act}; raise LOG2_ACT_DEPTH to {math.ceil(math.log2(g * kh * kw))}")
    best = None
    for tw in range(wo, 0, -1):          # widest tiles first: fewer halo columns
        in_w = (tw - 1) * s + kw
        rows_in = act // (g * in_w)       # input rows the buffer holds at this width
        th = min(ho, (rows_in - kh) // s + 1 if rows_in >= kh else 0, pix // tw)
        if th < 1:
            continue
        count = math.ceil(ho / th) * math.ceil(wo / tw)
        if best is None or count < best[0]:
            best = (count, th, tw)
        if th == ho:                     # narrower tiles cannot need fewer runs
            break
    _, th, tw = best
    return [(y, min(y + th, ho), x, min(x + tw, wo)) for y in range(0, ho, th) for x in range(0, wo, tw)]


def plan(layer: TernaryConv, h: int, w: int, hw: HwConfig) -> Plan:
    """The runs ``layer`` needs on an h x w input on build ``hw``."""
    try:
        if max(layer.kernel) > hw.max_k:
            raise UnsupportedLayerError(f"kernel {layer.kernel[0]}x{layer.kernel[1]} is larger than the "
                                        f"build's MAX_K={hw.max_k}; rebuild with MAX_K={max(layer.kernel)}")
        channels = channel_tiles(layer, hw)
        spatial = spatial_tiles(layer, h, w, hw)
    except UnsupportedLayerError as e:
        return Plan(layer, h, w, [], [], host_reason=str(e))
    return Plan(layer, h, w, channels, spatial)


def sub_layer(layer: TernaryConv, n0: int, n1: int, padding: int | None = None) -> TernaryConv:
    """Output channels [n0, n1) of ``layer`` as a layer of their own."""
    if (n0, n1) == (0, layer.out_channels) and padding in (None, layer.padding):
        return layer
    return replace(layer, name=f"{layer.name}[{n0}:{n1}]", codes=layer.codes[n0:n1], mult=layer.mult[n0:n1],
                   shift=layer.shift[n0:n1], bias=layer.bias[n0:n1],
                   padding=layer.padding if padding is None else padding, meta=dict(layer.meta))


def input_window(plan_: Plan, x_padded: np.ndarray, tile: tuple[int, int, int, int]) -> np.ndarray:
    """The input rows and columns (halo included) that output window ``tile`` reads, from the
    zero-padded input (C, H + 2P, W + 2P)."""
    y0, y1, x0, x1 = tile
    kh, kw = plan_.layer.kernel
    s = plan_.layer.stride
    return np.ascontiguousarray(x_padded[:, y0 * s:(y1 - 1) * s + kh, x0 * s:(x1 - 1) * s + kw])


def run_tiled(plan_: Plan, x: np.ndarray, run, reuse_weights: bool = True):
    """Run int16 images x (B, C, H, W) as ``plan_`` says. ``run(sub_layer, x_tile, load_weights)``
    runs one engine pass and returns (int16 (n, th, tw), stats). Channel tiles go outermost, so
    each channel tile's weights are streamed in once and reused by every image and spatial tile
    after it (reuse_weights=False streams them for every pass). Returns the int16
    (B, N, Ho, Wo) outputs and, per image, the list of its passes' stats."""
    layer = plan_.layer
    ho, wo = layer.out_hw(plan_.h, plan_.w)
    out = np.empty((len(x), layer.out_channels, ho, wo), dtype=np.int16)
    stats: list[list] = [[] for _ in range(len(x))]
    if plan_.spatial:
        p = layer.padding
        x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))   # zeros: exactly what the engine's PAD adds
    for n0, n1 in plan_.channel_tiles:
        sub = sub_layer(layer, n0, n1, padding=0 if plan_.spatial else None)
        first = True
        for b, img in enumerate(x):
            for tile in plan_.spatial_tiles:
                xin = input_window(plan_, img, tile) if plan_.spatial else img
                y0, y1, x0, x1 = tile
                y, s = run(sub, xin, first or not reuse_weights)
                first = False
                if y.shape != (n1 - n0, y1 - y0, x1 - x0):
                    raise UnsupportedLayerError(f"layer {layer.name!r}: tile {tile} came back with shape {y.shape}")
                out[b, n0:n1, y0:y1, x0:x1] = y
                stats[b].append(s)
    return out, stats
