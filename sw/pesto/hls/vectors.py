"""Test vectors for the HLS testbench: register writes, input beats with TLAST, and what the
engine must answer (output beats from ``pesto.reference``, STATUS, GROUPS_ISSUED, unread beats).

File format (text, one case after another; the testbench runs them in order)::

    pesto-vectors 1
    case NAME
    reg OFFSET VALUE          (one line per register write, decimal)
    in COUNT                  then COUNT lines: BEAT_HEX TLAST
    out COUNT                 then COUNT lines: BEAT_HEX (expected output packet)
    status ERR_CODE
    groups GROUPS_ISSUED      (-1: not checked)
    unread BEATS              (input beats the engine must leave unread)
    end
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

from ..hwspec import REGMAP, input_stream, layer_registers, pack_outputs
from ..ir import TernaryConv
from ..reference.layer import run_conv
from ..util import atomic_write_text

ERR = REGMAP.error_codes


@dataclass
class VectorCase:
    name: str
    writes: dict            # register name -> value
    beats: np.ndarray       # uint64 input beats
    expected: np.ndarray    # uint64 output beats (empty when the run must fail)
    lasts: np.ndarray | None = None   # bool per input beat; None = TLAST on the last beat only
    status: int = 0
    groups: int = -1
    unread: int = 0
    meta: dict = field(default_factory=dict)

    def tlast(self) -> np.ndarray:
        if self.lasts is not None:
            return np.asarray(self.lasts, dtype=bool)
        t = np.zeros(len(self.beats), dtype=bool)
        if len(t):
            t[-1] = True
        return t


def layer_case(layer: TernaryConv, x: np.ndarray, lanes: int = 16, skip: bool = True,
               load_weights: bool = True, name: str | None = None) -> VectorCase:
    """One run of ``layer`` on int16 x (C, H, W), answered by the integer reference."""
    _, h, w = x.shape
    regs = layer_registers(layer, h, w, lanes, skip=skip, load_weights=load_weights)
    expected = pack_outputs(run_conv(x, layer))
    groups = regs["NNZ"] if skip else regs["N"] * regs["G"]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name or f"{layer.name}_{'skip' if skip else 'dense'}")
    return VectorCase(name, regs,
                      input_stream(layer, x, lanes, load_weights), expected, groups=groups,
                      meta={"layer": layer.name, "shape": [int(v) for v in x.shape], "skip": skip,
                            "n": layer.out_channels, "out_hw": list(layer.out_hw(h, w))})


def error_cases(layer: TernaryConv, x: np.ndarray, lanes: int = 16) -> list[VectorCase]:
    """A good run, weight reuse, then one case per error code, in the order the testbench must
    run them (each failing load invalidates the stored weights, which the last case checks).
    ``layer`` needs at least one non-zero group and one all-zero group."""
    good = layer_case(layer, x, lanes, name="good_load")
    x2 = np.flip(x, axis=2).copy()
    reuse = layer_case(layer, x2, lanes, load_weights=False, name="reuse_weights")
    regs, beats = good.writes, good.beats
    n_words = len(beats)
    fail = dict(expected=np.zeros(0, dtype=np.uint64), groups=0)
    cases = [good, reuse]
    # TLAST halfway: the engine stops on it, consuming nothing after.
    half = n_words // 2
    lasts = np.zeros(n_words, dtype=bool)
    lasts[half - 1] = lasts[-1] = True
    cases.append(replace(good, name="stream_short", lasts=lasts, status=ERR["STREAM_SHORT"],
                         unread=n_words - half, **fail))
    # Three beats too many: dropped through TLAST.
    cases.append(replace(good, name="stream_long", beats=np.concatenate([beats, beats[:3]]),
                         status=ERR["STREAM_LONG"], **fail))
    nnz = regs["NNZ"]
    wrong = nnz - 1 if nnz > 0 else nnz + 1
    cases.append(replace(good, name="nnz_mismatch", writes={**regs, "NNZ": wrong},
                         status=ERR["NNZ_MISMATCH"], **fail))
    first_code = 2 * regs["N"] + -(-regs["N"] * regs["G"] // 64)
    bad = beats.copy()
    bad[first_code] = (bad[first_code] & ~np.uint64(3)) | np.uint64(2)
    cases.append(replace(good, name="bad_code", beats=bad, status=ERR["BAD_CODE"], **fail))
    # CONFIG: the input is dropped through TLAST, as for the other errors.
    cases.append(replace(good, name="config_no_channels", writes={**regs, "N": 0}, status=ERR["CONFIG"], **fail))
    cases.append(replace(good, name="config_out_h", writes={**regs, "OUT_H": regs["OUT_H"] + 1},
                         status=ERR["CONFIG"], **fail))
    cases.append(replace(good, name="config_huge", writes={**regs, "N": 1 << 31, "IN_H": 100000, "IN_W": 100000,
                                                           "NNZ": 0xFFFFFFFF}, status=ERR["CONFIG"], **fail))
    cases.append(replace(reuse, name="reuse_after_failed_load", status=ERR["CONFIG"], **fail))
    # The identity probe: a run with N=0 and a single beat (TLAST) fails with CONFIG but leaves
    # ID/VERSION/HWCFG readable, which an HLS engine's output registers are not before a run.
    cases.append(VectorCase("identity_probe", {**regs, "N": 0}, np.zeros(1, dtype=np.uint64),
                            np.zeros(0, dtype=np.uint64), status=ERR["CONFIG"], groups=0))
    cases.append(replace(good, name="good_again"))
    return cases


def write_vectors(path, cases) -> None:
    lines = ["pesto-vectors 1"]
    for c in cases:
        lines.append(f"case {c.name}")
        for reg, value in c.writes.items():
            lines.append(f"reg {REGMAP.offset(reg)} {int(value)}")
        lines.append(f"in {len(c.beats)}")
        lines += [f"{int(b):016x} {int(t)}" for b, t in zip(c.beats, c.tlast())]
        lines.append(f"out {len(c.expected)}")
        lines += [f"{int(b):016x}" for b in c.expected]
        lines += [f"status {c.status}", f"groups {c.groups}", f"unread {c.unread}", "end"]
    atomic_write_text(path, "\n".join(lines) + "\n")
