"""AXI4-Stream packet layouts between host and accelerator (docs/hardware-interface.md).

All words are 64 bits, little endian: value k of a packed sequence sits at bits
[w*(k % per_word) + w - 1 : w*(k % per_word)] of word k // per_word.

Hardware groups: the engine's PE group word holds LANES channels. A layer whose cg equals
LANES maps 1:1; cg < LANES puts one artifact group in the low cg lanes (the rest are zero);
cg > LANES (a multiple) splits each artifact group into cg / LANES hardware groups, each
with its own indexer bit computed from its codes. ``hw_codes`` does this mapping once and
every packer uses it, so weights and activations always agree.

Input stream of one run = [weight packet, if MODE.LOAD_WEIGHTS] + activation packet,
TLAST on the final beat. Output stream = output packet, TLAST on the final beat.

weight packet:
  1. per output channel n: word bias[n] (int64, low 48 bits used), then word
     mult[n] (bits 15:0, int16) | shift[n] (bits 21:16)
  2. indexer: bit n*G + g set if hardware group (n, g) is non-zero, 64 bits per word
  3. per non-zero group in (n, g) order: Kh*Kw*LANES 2-bit codes in (ky, kx, lane) order
     (code: 0 = 0, 1 = +1, 3 = -1), each group padded to whole words
activation packet: int16 in (g, y, x, lane) order, channel = g*cpg + lane (zero past C or cpg)
output packet: int16 in (n, y, x) order, zero padded to a whole word
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import ConfigError, HardwareError
from ..ir import TernaryConv
from .regmap import REGMAP

WORD_BITS = 64
ACTS_PER_WORD = WORD_BITS // 16


@dataclass(frozen=True)
class HwConfig:
    """Build parameters of one accelerator instance (read from HWCFG0/1 on the board)."""

    lanes: int = 16
    num_pe: int = 8
    max_k: int = 3
    log2_act_depth: int = 12
    log2_wgt_depth: int = 12
    log2_max_n: int = 9
    log2_max_pix: int = 10
    # network mode (accelerator v2, docs/accelerator-v2.md); an engine without it reports caps 0
    caps: int = 0
    code_depth: int = 6144       # code memory: stored hardware groups
    param_depth: int = 4096      # parameter memory: output-stage entries (channels x sub-nets)
    prog_depth: int = 16384      # program memory: 32-bit words
    bank_depth: int = 1024       # activation words per bank (4 banks)
    max_n: int = 512             # output channels per conv step (accumulator depth)
    max_subnets: int = 16
    group_cycles: int = 2        # cycles the network-mode PE array spends per issued group (the v2 default build)

    @classmethod
    def from_registers(cls, hwcfg0: int, hwcfg1: int, hwcfg2: int = 0, hwcfg3: int = 0) -> "HwConfig":
        r0, r1 = REGMAP["HWCFG0"], REGMAP["HWCFG1"]
        base = cls(r0.field(hwcfg0, "LANES"), r0.field(hwcfg0, "NUM_PE"), r0.field(hwcfg0, "MAX_K"),
                   r1.field(hwcfg1, "LOG2_ACT_DEPTH"), r1.field(hwcfg1, "LOG2_WGT_DEPTH"),
                   r1.field(hwcfg1, "LOG2_MAX_N"), r1.field(hwcfg1, "LOG2_MAX_PIX"))
        if "CAPS" not in r0.fields or not r0.field(hwcfg0, "CAPS"):
            return base
        r2, r3 = REGMAP["HWCFG2"], REGMAP["HWCFG3"]
        return replace(base, caps=r0.field(hwcfg0, "CAPS"), code_depth=r2.field(hwcfg2, "CODE_DEPTH"),
                       param_depth=r2.field(hwcfg2, "PARAM_DEPTH"), prog_depth=4 * r3.field(hwcfg3, "PROG_DEPTH"),
                       bank_depth=r3.field(hwcfg3, "BANK_DEPTH"), max_n=1 << base.log2_max_n,
                       group_cycles=r0.field(hwcfg0, "GROUP_CYCLES") or 1)

    @property
    def network(self) -> bool:
        """The engine runs loaded network programs (HWCFG0.CAPS bit 0)."""
        return bool(self.caps & 1)


def channels_per_group(cg: int, lanes: int) -> int:
    if cg > lanes and cg % lanes:
        raise ConfigError(f"Cg={cg} is neither <= nor a multiple of the engine's {lanes} lanes; "
                          f"export with a Cg that divides or is divided by {lanes}")
    return min(cg, lanes)


def hw_codes(layer: TernaryConv, lanes: int) -> np.ndarray:
    """Codes regrouped for the engine: int8 (N, G_hw, Kh, Kw, lanes)."""
    cpg = channels_per_group(layer.cg, lanes)
    n, c, kh, kw = layer.codes.shape
    g_hw = math.ceil(c / cpg)
    padded = np.zeros((n, g_hw * cpg, kh, kw), dtype=np.int8)
    padded[:, :c] = layer.codes
    grouped = padded.reshape(n, g_hw, cpg, kh, kw).transpose(0, 1, 3, 4, 2)  # (N, G, Kh, Kw, cpg)
    out = np.zeros((n, g_hw, kh, kw, lanes), dtype=np.int8)
    out[..., :cpg] = grouped
    return out


def encode_codes(codes: np.ndarray) -> np.ndarray:
    """Ternary values -> 2-bit codes (0 -> 0, +1 -> 1, -1 -> 3)."""
    return (np.asarray(codes).astype(np.int64) & 3).astype(np.uint8)


def _pack(values: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned values of `bits` each into little-endian 64-bit words (zero padded)."""
    per = WORD_BITS // bits
    v = np.asarray(values, dtype=np.uint64).reshape(-1)
    nwords = max(1, math.ceil(v.size / per)) if v.size else 0
    padded = np.zeros(nwords * per, dtype=np.uint64)
    padded[:v.size] = v
    shifts = (np.arange(per, dtype=np.uint64) * np.uint64(bits))
    return np.bitwise_or.reduce(padded.reshape(nwords, per) << shifts, axis=1).astype(np.uint64) \
        if nwords else np.zeros(0, dtype=np.uint64)


def _unpack(words: np.ndarray, bits: int, count: int) -> np.ndarray:
    per = WORD_BITS // bits
    w = np.asarray(words, dtype=np.uint64).reshape(-1, 1)
    shifts = (np.arange(per, dtype=np.uint64) * np.uint64(bits))
    mask = np.uint64((1 << bits) - 1)
    return ((w >> shifts) & mask).reshape(-1)[:count]


def words_per_group(kernel: tuple[int, int], lanes: int) -> int:
    return math.ceil(kernel[0] * kernel[1] * lanes * 2 / WORD_BITS)


def pack_weights(layer: TernaryConv, lanes: int) -> np.ndarray:
    """The weight packet of ``layer`` for an engine with ``lanes`` lanes."""
    hw = hw_codes(layer, lanes)
    n, g = hw.shape[:2]
    params = np.zeros((n, 2), dtype=np.uint64)
    params[:, 0] = layer.bias.astype(np.int64).view(np.uint64)
    params[:, 1] = (layer.mult.astype(np.int64) & 0xFFFF).astype(np.uint64) | \
        (layer.shift.astype(np.uint64) << np.uint64(16))
    indexer = (hw != 0).reshape(n, g, -1).any(axis=2)
    idx_words = _pack(indexer.reshape(-1).astype(np.uint64), 1)
    wpg = words_per_group(layer.kernel, lanes)
    nz = hw[indexer]  # (nnz, Kh, Kw, lanes) in (n, g) order
    per_group = [_pack(encode_codes(grp.reshape(-1)), 2) for grp in nz]
    code_words = np.concatenate(per_group) if per_group else np.zeros(0, dtype=np.uint64)
    assert code_words.size == nz.shape[0] * wpg
    return np.concatenate([params.reshape(-1), idx_words, code_words]).astype(np.uint64)


def pack_activations(x: np.ndarray, layer: TernaryConv, lanes: int) -> np.ndarray:
    """The activation packet of int16 x (C, H, W)."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[0] != layer.in_channels or x.dtype != np.int16:
        raise ConfigError(f"layer {layer.name!r}: activations must be int16 ({layer.in_channels}, H, W), "
                          f"got {x.dtype} {x.shape}")
    cpg = channels_per_group(layer.cg, lanes)
    c, h, w = x.shape
    g_hw = math.ceil(c / cpg)
    padded = np.zeros((g_hw * cpg, h, w), dtype=np.int16)
    padded[:c] = x
    grouped = padded.reshape(g_hw, cpg, h, w).transpose(0, 2, 3, 1)  # (G, H, W, cpg)
    words = np.zeros((g_hw, h, w, lanes), dtype=np.int16)
    words[..., :cpg] = grouped
    return _pack(words.reshape(-1).view(np.uint16), 16)


def pack_outputs(y: np.ndarray) -> np.ndarray:
    """int16 (N, Ho, Wo) -> the output packet (what the engine emits for those outputs)."""
    return _pack(np.asarray(y, dtype=np.int16).reshape(-1).view(np.uint16), 16)


def unpack_outputs(words: np.ndarray, n: int, ho: int, wo: int) -> np.ndarray:
    """Output packet -> int16 (N, Ho, Wo)."""
    count = n * ho * wo
    if len(words) != output_words(n, ho, wo):
        raise HardwareError(f"output stream has {len(words)} words, expected {output_words(n, ho, wo)}")
    return _unpack(words, 16, count).astype(np.uint16).view(np.int16).reshape(n, ho, wo)


def output_words(n: int, ho: int, wo: int) -> int:
    return math.ceil(n * ho * wo / ACTS_PER_WORD)


def weight_words(layer: TernaryConv, lanes: int) -> int:
    hw = hw_codes(layer, lanes)
    n, g = hw.shape[:2]
    nnz = int((hw != 0).reshape(n, g, -1).any(axis=2).sum())
    return 2 * n + math.ceil(n * g / WORD_BITS) + nnz * words_per_group(layer.kernel, lanes)


def activation_words(layer: TernaryConv, h: int, w: int, lanes: int) -> int:
    g_hw = math.ceil(layer.in_channels / channels_per_group(layer.cg, lanes))
    return g_hw * h * w * lanes // ACTS_PER_WORD


def input_stream(layer: TernaryConv, x: np.ndarray, lanes: int, load_weights: bool = True) -> np.ndarray:
    """The full input stream of one run (TLAST goes on its last word)."""
    acts = pack_activations(x, layer, lanes)
    return np.concatenate([pack_weights(layer, lanes), acts]) if load_weights else acts


def layer_registers(layer: TernaryConv, h: int, w: int, lanes: int, skip: bool = True,
                    load_weights: bool = True) -> dict[str, int]:
    """Register values (name -> value) that configure one run of ``layer`` on an h x w input."""
    hw = hw_codes(layer, lanes)
    n, g, kh, kw, _ = hw.shape
    ho, wo = layer.out_hw(h, w)
    nnz = int((hw != 0).reshape(n, g, -1).any(axis=2).sum())
    return {
        "MODE": REGMAP["MODE"].encode(SKIP_EN=int(skip), LOAD_WEIGHTS=int(load_weights)),
        "N": n, "G": g, "IN_H": h, "IN_W": w,
        "KERNEL": REGMAP["KERNEL"].encode(KH=kh, KW=kw, STRIDE=layer.stride, PAD=layer.padding),
        "OUT_H": ho, "OUT_W": wo, "NNZ": nnz,
        "FLAGS": REGMAP["FLAGS"].encode(RELU=int(layer.relu)),
    }
